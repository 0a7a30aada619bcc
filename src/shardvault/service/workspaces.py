"""Workspaces (tenants), their users and their API keys.

Every change writes its audit event through ``uow.audit`` in the same transaction. Users
and keys are looked up only through repositories bound to the caller's workspace, so an id
from another workspace is simply "not found".
"""

import base64
import re

from sqlalchemy.exc import IntegrityError

from shardvault.audit import Actor
from shardvault.service.context import Principal
from shardvault.service.errors import Conflict, Forbidden, NotFound, ValidationError
from shardvault.service.keys import normalized_pem
from shardvault.service.pagination import page_of, page_size
from shardvault.service.rbac import Permission, check_grant, permissions_of, require
from shardvault.service.uow import UnitOfWork
from shardvault.service.views import ApiKeyView, Page, UserView, WorkspaceView
from shardvault.store.models import KeyAlgorithm, PrincipalStatus, Role
from shardvault.store.types import utcnow

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


def _name(field: str, value: str) -> str:
    cleaned = value.strip()
    if not 1 <= len(cleaned) <= 200:
        raise ValidationError(field, "must be 1 to 200 characters")
    if any(ord(c) < 32 for c in cleaned):
        raise ValidationError(field, "must not contain control characters")
    return cleaned


def _email(value: str) -> str:
    cleaned = value.strip().lower()
    if not _EMAIL.match(cleaned):
        raise ValidationError("email", "not an email address")
    return cleaned


def encode_cursor(last_id: str) -> str:
    """An opaque cursor pointing after ``last_id``."""
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The id a cursor points after.

    Raises:
        ValidationError: the cursor was not made by :func:`encode_cursor`.
    """
    if cursor is None:
        return None
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("cursor", "not a cursor this server issued") from None
    if not 1 <= len(decoded) <= 64:
        raise ValidationError("cursor", "not a cursor this server issued")
    return decoded


# Workspaces.


def create_workspace(
    uow: UnitOfWork,
    *,
    name: str,
    owner_name: str,
    owner_email: str,
    owner_key_algorithm: KeyAlgorithm,
    owner_public_key_pem: str,
    actor: Actor,
) -> tuple[WorkspaceView, UserView, ApiKeyView]:
    """Create a workspace with its first user (an owner) and that owner's first API key.

    This is the bootstrap path (``shardvault init``), not an API route: there is no
    principal yet, so ``actor`` says who ran it.

    Raises:
        ValidationError: a name, the email or the public key is not acceptable.
    """
    workspace = uow.workspaces().add(_name("name", name))
    users = uow.users(workspace.id)
    owner = users.add(
        name=_name("owner_name", owner_name), email=_email(owner_email), role=Role.OWNER
    )
    key = uow.api_keys(workspace.id).add(
        user_id=owner.id,
        name="owner key",
        algorithm=owner_key_algorithm,
        public_key_pem=normalized_pem(owner_public_key_pem, owner_key_algorithm),
        role=Role.OWNER,
    )
    uow.audit.append(
        workspace_id=workspace.id,
        actor=actor,
        action="workspace.create",
        resource_type="workspace",
        resource_id=workspace.id,
        details={"name": workspace.name},
    )
    uow.audit.append(
        workspace_id=workspace.id,
        actor=actor,
        action="user.create",
        resource_type="user",
        resource_id=owner.id,
        details={"email": owner.email, "role": owner.role.value},
    )
    uow.audit.append(
        workspace_id=workspace.id,
        actor=actor,
        action="api_key.create",
        resource_type="api_key",
        resource_id=key.id,
        details={"user_id": owner.id, "role": key.role.value, "algorithm": key.algorithm.value},
    )
    return WorkspaceView.of(workspace), UserView.of(owner), ApiKeyView.of(key)


def get_workspace(uow: UnitOfWork, principal: Principal) -> WorkspaceView:
    """The caller's workspace.

    Raises:
        Forbidden: the role may not read the workspace.
        NotFound: the workspace is gone (it cannot be deleted, so this means corruption).
    """
    require(principal, Permission.WORKSPACE_READ)
    workspace = uow.workspaces().get(principal.workspace_id)
    if workspace is None:
        raise NotFound("workspace", principal.workspace_id)
    return WorkspaceView.of(workspace)


# Users.


def create_user(
    uow: UnitOfWork, principal: Principal, *, name: str, email: str, role: Role
) -> UserView:
    """Add a user to the caller's workspace.

    Raises:
        Forbidden: the caller may not manage users or may not grant ``role``.
        ValidationError: the name or email is not acceptable.
        Conflict: a user with this email exists.
    """
    require(principal, Permission.USERS_MANAGE)
    check_grant(principal.role, role)
    users = uow.users(principal.workspace_id)
    email = _email(email)
    if users.get_by_email(email) is not None:
        raise Conflict(f"a user with email {email!r} already exists")
    try:
        user = users.add(name=_name("name", name), email=email, role=role)
    except IntegrityError:
        # A concurrent request added the same email between the check and the insert.
        raise Conflict(f"a user with email {email!r} already exists") from None
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="user.create",
        resource_type="user",
        resource_id=user.id,
        details={"email": user.email, "role": role.value},
    )
    return UserView.of(user)


def get_user(uow: UnitOfWork, principal: Principal, user_id: str) -> UserView:
    """One user of the caller's workspace.

    Raises:
        Forbidden: the role may not read users.
        NotFound: no such user in this workspace.
    """
    require(principal, Permission.USERS_READ)
    user = uow.users(principal.workspace_id).get(user_id)
    if user is None:
        raise NotFound("user", user_id)
    return UserView.of(user)


def list_users(
    uow: UnitOfWork, principal: Principal, *, limit: int = 50, cursor: str | None = None
) -> Page[UserView]:
    """A page of the caller's workspace's users, in id order.

    Raises:
        Forbidden: the role may not read users.
        ValidationError: a bad limit or cursor.
    """
    require(principal, Permission.USERS_READ)
    size = page_size(limit)
    rows = uow.users(principal.workspace_id).list(limit=size + 1, after_id=decode_cursor(cursor))
    return page_of(rows, size, UserView.of, lambda item: encode_cursor(item.id))


def _active_owner_keys(uow: UnitOfWork, workspace_id: str) -> int:
    return uow.api_keys(workspace_id).count_active_with_role(Role.OWNER)


def disable_user(uow: UnitOfWork, principal: Principal, user_id: str) -> UserView:
    """Disable a user and revoke all their API keys.

    Raises:
        Forbidden: the caller may not manage users, or the user is an owner and the caller
            is not.
        NotFound: no such user in this workspace.
        Conflict: this would leave the workspace without an active owner key.
    """
    require(principal, Permission.USERS_MANAGE)
    # Serialize with every other owner-changing call of this workspace (see below).
    uow.workspaces().lock(principal.workspace_id)
    users = uow.users(principal.workspace_id)
    user = users.get(user_id)
    if user is None:
        raise NotFound("user", user_id)
    check_grant(principal.role, user.role)
    if user.status is PrincipalStatus.DISABLED:
        return UserView.of(user)
    now = utcnow()
    user.status = PrincipalStatus.DISABLED
    user.disabled_at = now
    revoked = []
    for key in uow.api_keys(principal.workspace_id).list_for_user(user.id):
        if key.status is PrincipalStatus.ACTIVE:
            key.status = PrincipalStatus.DISABLED
            key.revoked_at = now
            revoked.append(key.id)
    uow.session.flush()
    if _active_owner_keys(uow, principal.workspace_id) == 0:
        raise Conflict("disabling this user would leave the workspace without an owner key")
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="user.disable",
        resource_type="user",
        resource_id=user.id,
        details={"revoked_api_keys": list(revoked)},
    )
    return UserView.of(user)


# API keys.


def create_api_key(
    uow: UnitOfWork,
    principal: Principal,
    *,
    user_id: str,
    name: str,
    algorithm: KeyAlgorithm,
    public_key_pem: str,
    role: Role | None = None,
) -> ApiKeyView:
    """Register a public key for a user of the caller's workspace.

    The key's role defaults to the user's; it may be narrower, never wider.

    Raises:
        Forbidden: the caller may not manage keys or grant the role, or the role is wider
            than the user's.
        NotFound: no such user in this workspace.
        Conflict: the user is disabled.
        ValidationError: the name or public key is not acceptable.
    """
    require(principal, Permission.API_KEYS_MANAGE)
    user = uow.users(principal.workspace_id).get(user_id)
    if user is None:
        raise NotFound("user", user_id)
    if user.status is not PrincipalStatus.ACTIVE:
        raise Conflict(f"user {user_id!r} is disabled")
    key_role = role or user.role
    check_grant(principal.role, key_role)
    if not permissions_of(key_role) <= permissions_of(user.role) or (
        key_role is Role.OWNER and user.role is not Role.OWNER
    ):
        raise Forbidden(f"a key of a {user.role.value} user may not have role {key_role.value!r}")
    key = uow.api_keys(principal.workspace_id).add(
        user_id=user.id,
        name=_name("name", name),
        algorithm=algorithm,
        public_key_pem=normalized_pem(public_key_pem, algorithm),
        role=key_role,
    )
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="api_key.create",
        resource_type="api_key",
        resource_id=key.id,
        details={"user_id": user.id, "role": key_role.value, "algorithm": algorithm.value},
    )
    return ApiKeyView.of(key)


def list_api_keys(
    uow: UnitOfWork, principal: Principal, *, limit: int = 50, cursor: str | None = None
) -> Page[ApiKeyView]:
    """A page of the caller's workspace's API keys, in id order.

    Raises:
        Forbidden: the role may not read keys.
        ValidationError: a bad limit or cursor.
    """
    require(principal, Permission.API_KEYS_READ)
    size = page_size(limit)
    rows = uow.api_keys(principal.workspace_id).list(limit=size + 1, after_id=decode_cursor(cursor))
    return page_of(rows, size, ApiKeyView.of, lambda item: encode_cursor(item.id))


def revoke_api_key(uow: UnitOfWork, principal: Principal, key_id: str) -> ApiKeyView:
    """Revoke an API key of the caller's workspace (idempotent on an already revoked key).

    Raises:
        Forbidden: the caller may not manage keys, or the key is an owner's and the caller
            is not an owner.
        NotFound: no such key in this workspace.
        Conflict: this is the last active owner key.
    """
    require(principal, Permission.API_KEYS_MANAGE)
    # Two concurrent revocations of the last two owner keys must not both see the other
    # key still active (READ COMMITTED on PostgreSQL): take the workspace lock first.
    uow.workspaces().lock(principal.workspace_id)
    key = uow.api_keys(principal.workspace_id).get(key_id)
    if key is None:
        raise NotFound("api_key", key_id)
    check_grant(principal.role, key.role)
    if key.status is PrincipalStatus.DISABLED:
        return ApiKeyView.of(key)
    key.status = PrincipalStatus.DISABLED
    key.revoked_at = utcnow()
    uow.session.flush()
    if _active_owner_keys(uow, principal.workspace_id) == 0:
        raise Conflict("revoking this key would leave the workspace without an owner key")
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="api_key.revoke",
        resource_type="api_key",
        resource_id=key.id,
        details={"user_id": key.user_id},
    )
    return ApiKeyView.of(key)
