"""Workspaces, users and API keys at the service layer, on SQLite and PostgreSQL: each
change is audited in its own transaction, bad input changes nothing, roles are enforced."""

import pytest
from sqlalchemy import func, select

from shardvault.audit import Actor, verify_chain
from shardvault.sdk import generate_key_pair
from shardvault.service import workspaces as svc
from shardvault.service.context import Principal
from shardvault.service.errors import Conflict, Forbidden, NotFound, ValidationError
from shardvault.service.platform import Platform
from shardvault.store import Database
from shardvault.store.models import AuditEvent, KeyAlgorithm, PrincipalStatus, Role, User, Workspace
from tests.api.support import Tenant, bootstrap, make_platform


@pytest.fixture
def platform(database: Database) -> Platform:
    return make_platform(database)


@pytest.fixture
def tenant(platform: Platform) -> Tenant:
    return bootstrap(platform)


def _owner(tenant: Tenant) -> Principal:
    return Principal(tenant.workspace_id, tenant.owner.api_key_id, tenant.owner_user_id, Role.OWNER)


def _counts(platform: Platform) -> tuple[int, int, int]:
    with platform.unit_of_work() as uow:
        session = uow.session
        return (
            int(session.scalar(select(func.count()).select_from(Workspace)) or 0),
            int(session.scalar(select(func.count()).select_from(User)) or 0),
            int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0),
        )


def test_bootstrap_writes_three_audited_rows(platform: Platform, tenant: Tenant) -> None:
    with platform.unit_of_work() as uow:
        actions = uow.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.chain == tenant.workspace_id)
            .order_by(AuditEvent.seq)
        ).all()
        verify_chain(uow.session, tenant.workspace_id, platform.keyring())
    assert actions == ["workspace.create", "user.create", "api_key.create"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": " "}, "name"),
        ({"owner_email": "nope"}, "email"),
        ({"owner_name": "bad\x07name"}, "owner_name"),
        ({"owner_public_key_pem": "garbage"}, "public_key_pem"),
        ({"owner_key_algorithm": KeyAlgorithm.ES256}, "public_key_pem"),
    ],
)
def test_bad_bootstrap_input_changes_nothing(
    platform: Platform, changes: dict[str, object], field: str
) -> None:
    before = _counts(platform)
    arguments: dict[str, object] = {
        "name": "acme",
        "owner_name": "Olivia",
        "owner_email": "o@acme.example",
        "owner_key_algorithm": KeyAlgorithm.ED25519,
        "owner_public_key_pem": generate_key_pair()[1],
        "actor": Actor.cli(),
    }
    arguments.update(changes)

    def attempt() -> None:
        with platform.unit_of_work() as uow:
            svc.create_workspace(uow, **arguments)  # type: ignore[arg-type]

    with pytest.raises(ValidationError) as caught:
        attempt()
    assert caught.value.field == field
    assert _counts(platform) == before


def test_duplicate_email_is_a_conflict(platform: Platform, tenant: Tenant) -> None:
    owner = _owner(tenant)
    with platform.unit_of_work() as uow:
        svc.create_user(uow, owner, name="A", email="a@acme.example", role=Role.VIEWER)
    before = _counts(platform)
    with pytest.raises(Conflict), platform.unit_of_work() as uow:
        svc.create_user(uow, owner, name="A2", email="A@ACME.example", role=Role.VIEWER)
    assert _counts(platform) == before


@pytest.mark.parametrize(
    ("granter", "granted", "allowed"),
    [
        (Role.OWNER, Role.OWNER, True),
        (Role.OWNER, Role.ADMIN, True),
        (Role.ADMIN, Role.OWNER, False),
        (Role.ADMIN, Role.ADMIN, True),
        (Role.ADMIN, Role.AUDITOR, True),
    ],
)
def test_grant_rules(
    platform: Platform, tenant: Tenant, granter: Role, granted: Role, allowed: bool
) -> None:
    principal = Principal(
        tenant.workspace_id, tenant.owner.api_key_id, tenant.owner_user_id, granter
    )

    def attempt() -> None:
        with platform.unit_of_work() as uow:
            svc.create_user(uow, principal, name="N", email="n@acme.example", role=granted)

    if allowed:
        attempt()
    else:
        with pytest.raises(Forbidden):
            attempt()


@pytest.mark.parametrize("role", [Role.SIGNER, Role.APPROVER, Role.VIEWER, Role.AUDITOR])
def test_non_admins_cannot_manage(platform: Platform, tenant: Tenant, role: Role) -> None:
    principal = Principal(tenant.workspace_id, "k", tenant.owner_user_id, role)
    with pytest.raises(Forbidden), platform.unit_of_work() as uow:
        svc.create_user(uow, principal, name="N", email="n@acme.example", role=Role.VIEWER)
    with platform.unit_of_work() as uow:
        assert svc.get_workspace(uow, principal).id == tenant.workspace_id


def test_disabling_a_user_revokes_their_keys(platform: Platform, tenant: Tenant) -> None:
    owner = _owner(tenant)
    with platform.unit_of_work() as uow:
        user = svc.create_user(uow, owner, name="S", email="s@acme.example", role=Role.SIGNER)
        keys = [
            svc.create_api_key(
                uow,
                owner,
                user_id=user.id,
                name=f"k{i}",
                algorithm=KeyAlgorithm.ED25519,
                public_key_pem=generate_key_pair()[1],
            )
            for i in range(2)
        ]
    with platform.unit_of_work() as uow:
        disabled = svc.disable_user(uow, owner, user.id)
    assert disabled.status is PrincipalStatus.DISABLED
    with platform.unit_of_work() as uow:
        page = svc.list_api_keys(uow, owner)
        statuses = {k.id: k.status for k in page.items}
        revoke_event = uow.session.scalar(
            select(AuditEvent.details).where(AuditEvent.action == "user.disable")
        )
    assert all(statuses[k.id] is PrincipalStatus.DISABLED for k in keys)
    assert revoke_event is not None
    assert all(k.id in revoke_event for k in keys)


def test_last_owner_is_protected(platform: Platform, tenant: Tenant) -> None:
    owner = _owner(tenant)
    before = _counts(platform)
    with pytest.raises(Conflict), platform.unit_of_work() as uow:
        svc.revoke_api_key(uow, owner, tenant.owner.api_key_id)
    with pytest.raises(Conflict), platform.unit_of_work() as uow:
        svc.disable_user(uow, owner, tenant.owner_user_id)
    assert _counts(platform) == before


def test_other_workspaces_ids_are_not_found(platform: Platform, tenant: Tenant) -> None:
    other = bootstrap(platform, "globex")
    owner = _owner(tenant)
    for call in (
        lambda uow: svc.get_user(uow, owner, other.owner_user_id),
        lambda uow: svc.disable_user(uow, owner, other.owner_user_id),
        lambda uow: svc.revoke_api_key(uow, owner, other.owner.api_key_id),
        lambda uow: svc.create_api_key(
            uow,
            owner,
            user_id=other.owner_user_id,
            name="x",
            algorithm=KeyAlgorithm.ED25519,
            public_key_pem=generate_key_pair()[1],
        ),
    ):
        with pytest.raises(NotFound), platform.unit_of_work() as uow:
            call(uow)


@pytest.mark.parametrize(("limit", "cursor"), [(0, None), (201, None), (10, "!!!"), (10, "")])
def test_bad_pagination_is_refused(
    platform: Platform, tenant: Tenant, limit: int, cursor: str | None
) -> None:
    with pytest.raises(ValidationError), platform.unit_of_work() as uow:
        svc.list_users(uow, _owner(tenant), limit=limit, cursor=cursor)


def test_concurrent_revocations_cannot_remove_every_owner_key(
    platform: Platform, tenant: Tenant
) -> None:
    """Two owner keys revoked at the same moment: exactly one revocation wins."""
    import threading

    owner = _owner(tenant)
    with platform.unit_of_work() as uow:
        second = svc.create_api_key(
            uow,
            owner,
            user_id=tenant.owner_user_id,
            name="second owner key",
            algorithm=KeyAlgorithm.ED25519,
            public_key_pem=generate_key_pair()[1],
        )
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def revoke(key_id: str) -> None:
        barrier.wait()
        try:
            with platform.unit_of_work() as uow:
                svc.revoke_api_key(uow, owner, key_id)
            outcomes.append("revoked")
        except Conflict:
            outcomes.append("conflict")

    threads = [
        threading.Thread(target=revoke, args=(k,)) for k in (tenant.owner.api_key_id, second.id)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict", "revoked"]
    with platform.unit_of_work() as uow:
        assert uow.api_keys(tenant.workspace_id).count_active_with_role(Role.OWNER) == 1


def test_concurrent_duplicate_emails_are_conflicts_not_crashes(
    platform: Platform, tenant: Tenant
) -> None:
    import threading

    owner = _owner(tenant)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        try:
            with platform.unit_of_work() as uow:
                svc.create_user(
                    uow, owner, name="Twin", email="twin@acme.example", role=Role.VIEWER
                )
            outcomes.append("created")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 7 + ["created"]
