"""Repositories never cross tenants; the schema refuses cross-tenant links by itself."""

import pytest
from sqlalchemy.exc import IntegrityError

from shardvault.sdk import generate_key_pair
from shardvault.store import Database
from shardvault.store.models import ApiKey, KeyAlgorithm, Role
from shardvault.store.repositories import (
    ApiKeyRepository,
    CredentialLookup,
    IdempotencyRepository,
    NonceRepository,
    UserRepository,
    WorkspaceRepository,
    purge_expired_nonces,
)
from shardvault.store.types import utcnow


def _two_tenants(database: Database) -> tuple[str, str, str, str]:
    with database.transaction() as session:
        first = WorkspaceRepository(session).add("first").id
        second = WorkspaceRepository(session).add("second").id
        u1 = UserRepository(session, first).add(name="A", email="a@x.io", role=Role.OWNER).id
        u2 = UserRepository(session, second).add(name="B", email="b@x.io", role=Role.OWNER).id
    return first, second, u1, u2


def test_repositories_see_only_their_workspace(database: Database) -> None:
    first, second, u1, u2 = _two_tenants(database)
    with database.transaction() as session:
        assert UserRepository(session, first).get(u1) is not None
        assert UserRepository(session, first).get(u2) is None
        assert [u.id for u in UserRepository(session, second).list(limit=10)] == [u2]
        key = ApiKeyRepository(session, second).add(
            user_id=u2,
            name="k",
            algorithm=KeyAlgorithm.ED25519,
            public_key_pem=generate_key_pair()[1],
            role=Role.OWNER,
        )
        assert ApiKeyRepository(session, first).get(key.id) is None
        assert ApiKeyRepository(session, second).get(key.id) is not None
        # Authentication's lookup is the one deliberate cross-tenant read.
        found = CredentialLookup(session).api_key(key.id)
        assert found is not None
        assert found.workspace_id == second


def test_an_api_key_cannot_point_at_another_workspaces_user(database: Database) -> None:
    first, _, _, u2 = _two_tenants(database)
    with pytest.raises(IntegrityError), database.transaction() as session:  # noqa: PT012
        session.add(
            ApiKey(
                workspace_id=first,
                user_id=u2,
                name="cross",
                algorithm=KeyAlgorithm.ED25519,
                public_key_pem="-",
                role=Role.VIEWER,
            )
        )
        session.flush()


def test_emails_are_unique_per_workspace_only(database: Database) -> None:
    first, second, _, _ = _two_tenants(database)
    with database.transaction() as session:
        UserRepository(session, second).add(name="A again", email="a@x.io", role=Role.VIEWER)
    with pytest.raises(IntegrityError), database.transaction() as session:
        UserRepository(session, first).add(name="dup", email="a@x.io", role=Role.VIEWER)


def test_nonces_are_single_use_and_purged(database: Database) -> None:
    from datetime import timedelta

    first, _, u1, _ = _two_tenants(database)
    with database.transaction() as session:
        key = ApiKeyRepository(session, first).add(
            user_id=u1,
            name="k",
            algorithm=KeyAlgorithm.ED25519,
            public_key_pem=generate_key_pair()[1],
            role=Role.OWNER,
        )
        nonces = NonceRepository(session, first)
        past = utcnow() - timedelta(seconds=5)
        assert nonces.remember(api_key_id=key.id, nonce="n1", expires_at=past)
        assert not nonces.remember(api_key_id=key.id, nonce="n1", expires_at=past)
        assert nonces.remember(api_key_id=key.id, nonce="n2", expires_at=utcnow() + timedelta(60))
    with database.transaction() as session:
        assert purge_expired_nonces(session, utcnow()) == 1
        assert NonceRepository(session, first).remember(
            api_key_id=key.id, nonce="n1", expires_at=utcnow()
        )


def test_idempotency_claims_are_per_workspace(database: Database) -> None:
    first, second, _, _ = _two_tenants(database)
    with database.transaction() as session:
        one = IdempotencyRepository(session, first)
        assert one.claim(key="k", method="POST", path="/v1/users", request_hash="a" * 64)
        assert not one.claim(key="k", method="POST", path="/v1/users", request_hash="b" * 64)
        assert IdempotencyRepository(session, second).claim(
            key="k", method="POST", path="/v1/users", request_hash="c" * 64
        )
        one.complete("k", response_status=201, response_body="{}")
        stored = one.get("k")
        assert stored is not None
        assert (stored.response_status, stored.request_hash) == (201, "a" * 64)
