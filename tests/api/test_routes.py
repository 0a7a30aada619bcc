"""The /v1 routes through the SDK over a real loopback server: users, API keys, the
workspace, audit events and verification, RBAC, validation and idempotency refusals."""

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from shardvault.sdk import ApiError, ApiKeyCredentials, ShardvaultClient, generate_key_pair
from shardvault.service.platform import Platform
from tests.api.support import Tenant


@pytest.fixture
def owner(server_url: str, tenant: Tenant) -> Iterator[ShardvaultClient]:
    with ShardvaultClient(server_url, tenant.owner, max_attempts=1) as client:
        yield client


def _client_for(server_url: str, owner: ShardvaultClient, role: str) -> ShardvaultClient:
    user = owner.create_user(name=f"{role} user", email=f"{role}@acme.example", role=role)  # type: ignore[arg-type]
    private_pem, public_pem = generate_key_pair("ES256")
    key = owner.create_api_key(
        user_id=user.id, name=f"{role} key", public_key_pem=public_pem, algorithm="ES256"
    )
    assert key.role == role
    return ShardvaultClient(
        server_url, ApiKeyCredentials.from_pem(key.id, private_pem), max_attempts=1
    )


_PUBLIC_PATHS = {"/v1/health", "/v1/webhooks/jwks", "/v1/openapi.json", "/v1/docs"}
# Pairing carries a one-time token and the co-signer's signature instead of an API key
# (tests/api/test_cosigner_pairing.py refuses each bad one with a 401).
_PUBLIC_PATHS.add("/v1/cosigners/pair")


def test_every_route_but_health_requires_authentication(app: FastAPI, server_url: str) -> None:
    """RBAC on every route: every operation in the OpenAPI document except the public ones
    answers 401 to a request without credentials, over a real loopback server."""
    checked = 0
    placeholder = "00000000-0000-4000-8000-000000000000"
    with httpx.Client(base_url=server_url, timeout=10) as client:
        for path, operations in app.openapi()["paths"].items():
            if path in _PUBLIC_PATHS:
                continue
            url = re.sub(r"\{[^}]+\}", placeholder, path)
            for method in operations:
                response = client.request(method.upper(), url, json={})
                assert response.status_code == 401, (method, path, response.status_code)
                assert response.headers["content-type"].startswith("application/problem+json")
                checked += 1
    # The document lists the platform's whole surface; an empty walk would prove nothing.
    assert checked >= 20


def test_workspace_users_and_keys(owner: ShardvaultClient, tenant: Tenant) -> None:
    workspace = owner.get_workspace()
    assert (workspace.id, workspace.name) == (tenant.workspace_id, "acme")
    user = owner.create_user(name="Sam Signer", email="Sam@Acme.example", role="signer")
    assert (user.email, user.role, user.status) == ("sam@acme.example", "signer", "active")
    assert owner.get_user(user.id) == user
    _, public_pem = generate_key_pair()
    key = owner.create_api_key(user_id=user.id, name="sam's laptop", public_key_pem=public_pem)
    assert (key.role, key.algorithm, key.status) == ("signer", "EdDSA", "active")
    assert key.id in {k.id for k in owner.list_api_keys().data}
    revoked = owner.revoke_api_key(key.id)
    assert (revoked.status, revoked.revoked_at is not None) == ("disabled", True)
    disabled = owner.disable_user(user.id)
    assert disabled.status == "disabled"


def test_pagination_walks_every_item_once(owner: ShardvaultClient) -> None:
    for index in range(7):
        owner.create_user(name=f"u{index}", email=f"u{index}@acme.example", role="viewer")
    seen: list[str] = []
    cursor = None
    while True:
        page = owner.list_users(limit=3, cursor=cursor)
        seen.extend(u.id for u in page.data)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 8
    events = list(owner.iter_audit_events(page_size=2))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].action == "workspace.create"
    assert events[-1].details == {"email": "u6@acme.example", "role": "viewer"}


def test_audit_verify_reports_a_clean_chain_and_then_tampering(
    owner: ShardvaultClient, platform: Platform, tenant: Tenant
) -> None:
    owner.create_user(name="Ann", email="ann@acme.example", role="auditor")
    clean = owner.verify_audit()
    assert (clean.valid, clean.events, clean.chain) == (True, 4, tenant.workspace_id)
    events = list(owner.iter_audit_events())
    with platform.database.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_events SET action = 'user.delete' WHERE id = :i"),
            {"i": events[3].id},
        )
    broken = owner.verify_audit()
    assert (broken.valid, broken.broken_at_seq, broken.broken_event_id, broken.problem) == (
        False,
        4,
        events[3].id,
        "edited",
    )


def test_role_rules(server_url: str, owner: ShardvaultClient, tenant: Tenant) -> None:
    with _client_for(server_url, owner, "admin") as admin:
        with pytest.raises(ApiError) as caught:
            admin.create_user(name="New Owner", email="o2@acme.example", role="owner")
        assert (caught.value.status, caught.value.slug) == (403, "forbidden")
        with pytest.raises(ApiError) as caught:
            admin.revoke_api_key(tenant.owner.api_key_id)
        assert caught.value.status == 403
        assert admin.create_user(name="Al", email="al@acme.example", role="approver").role == (
            "approver"
        )
    with _client_for(server_url, owner, "auditor") as auditor:
        assert auditor.verify_audit().valid
        with pytest.raises(ApiError) as caught:
            auditor.create_user(name="X", email="x@acme.example", role="viewer")
        assert caught.value.status == 403
    viewer_user = owner.create_user(name="V", email="v@acme.example", role="viewer")
    _, public_pem = generate_key_pair()
    with pytest.raises(ApiError) as caught:
        owner.create_api_key(
            user_id=viewer_user.id, name="too wide", public_key_pem=public_pem, role="admin"
        )
    assert caught.value.status == 403


def test_last_owner_key_cannot_be_revoked(owner: ShardvaultClient, tenant: Tenant) -> None:
    with pytest.raises(ApiError) as caught:
        owner.revoke_api_key(tenant.owner.api_key_id)
    assert (caught.value.status, caught.value.slug) == (409, "conflict")
    with pytest.raises(ApiError) as caught:
        owner.disable_user(tenant.owner_user_id)
    assert caught.value.status == 409
    assert owner.get_workspace().id == tenant.workspace_id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "A", "email": "a@b.c", "role": "emperor"}, "body.role"),
        ({"name": "A", "email": "a@b.c"}, "body.role"),
        ({"name": "A", "email": "a@b.c", "role": "viewer", "extra": 1}, "body.extra"),
        ({"name": "", "email": "a@b.c", "role": "viewer"}, "body.name"),
    ],
)
def test_invalid_bodies_are_400_problems(
    owner: ShardvaultClient, body: dict[str, object], field: str
) -> None:
    with pytest.raises(ApiError) as caught:
        # The typed SDK cannot send malformed bodies; go one level down (still signed).
        owner.request("POST", "/v1/users", json_body=body, idempotency_key="raw-1")
    assert (caught.value.status, caught.value.slug) == (400, "invalid-request")
    assert field in {e["location"] for e in caught.value.errors}


@pytest.mark.parametrize(
    ("email", "public_key", "field"),
    [
        ("not-an-email", None, "email"),
        ("ok@acme.example", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "pem"),
        ("ok@acme.example", "es256", "Ed25519"),
    ],
)
def test_service_validation_errors_are_400_problems(
    owner: ShardvaultClient, tenant: Tenant, email: str, public_key: str | None, field: str
) -> None:
    pem = generate_key_pair("ES256")[1] if public_key == "es256" else public_key

    def attempt() -> None:
        if pem is None:
            owner.create_user(name="A", email=email, role="viewer")
        else:
            owner.create_api_key(user_id=tenant.owner_user_id, name="k", public_key_pem=pem)

    with pytest.raises(ApiError) as caught:
        attempt()
    assert (caught.value.status, caught.value.slug) == (400, "invalid-request")
    assert field in caught.value.detail


def test_idempotency_key_rules(owner: ShardvaultClient) -> None:
    first = owner.create_user(name="I", email="i@acme.example", role="viewer", idempotency_key="k")
    again = owner.create_user(name="I", email="i@acme.example", role="viewer", idempotency_key="k")
    assert again == first
    with pytest.raises(ApiError) as caught:
        owner.create_user(name="J", email="j@acme.example", role="viewer", idempotency_key="k")
    assert (caught.value.status, caught.value.slug) == (409, "idempotency-key-reused")
    body = {"name": "K", "email": "k@acme.example", "role": "viewer"}
    with pytest.raises(ApiError) as caught:
        owner.request("POST", "/v1/users", json_body=body)
    assert caught.value.status == 400
    assert "Idempotency-Key" in caught.value.detail


def test_unknown_route_and_method_are_problems(owner: ShardvaultClient) -> None:
    with pytest.raises(ApiError) as caught:
        owner.request("GET", "/v1/nothing-here")
    assert (caught.value.status, caught.value.problem_type) == (
        404,
        "urn:shardvault:problem:not-found",
    )
