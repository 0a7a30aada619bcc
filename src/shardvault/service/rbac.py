"""Role-based access control: what each role may do.

Roles come from the store (:class:`~shardvault.store.models.Role`); permissions are the
verbs routes ask for. Two rules beyond the table: only an owner may grant the owner role,
and nobody may grant a role with a permission they do not hold themselves (an API key's
role must also fit within its user's role).
"""

import enum
from collections.abc import Mapping

from shardvault.service.context import Principal
from shardvault.service.errors import Forbidden
from shardvault.store.models import Role


class Permission(enum.StrEnum):
    """Things a request may do."""

    WORKSPACE_READ = "workspace:read"
    USERS_READ = "users:read"
    USERS_MANAGE = "users:manage"
    API_KEYS_READ = "api_keys:read"
    API_KEYS_MANAGE = "api_keys:manage"
    AUDIT_READ = "audit:read"
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_MANAGE = "webhooks:manage"
    VAULTS_READ = "vaults:read"
    VAULTS_MANAGE = "vaults:manage"
    TRANSACTIONS_READ = "transactions:read"
    TRANSACTIONS_CREATE = "transactions:create"
    TRANSACTIONS_APPROVE = "transactions:approve"
    POLICIES_READ = "policies:read"
    POLICIES_MANAGE = "policies:manage"


_READ = frozenset(
    {
        Permission.WORKSPACE_READ,
        Permission.USERS_READ,
        Permission.API_KEYS_READ,
        Permission.VAULTS_READ,
        Permission.TRANSACTIONS_READ,
        Permission.POLICIES_READ,
    }
)

ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.ADMIN: frozenset(Permission),
    Role.SIGNER: _READ | {Permission.TRANSACTIONS_CREATE},
    Role.APPROVER: _READ | {Permission.TRANSACTIONS_APPROVE},
    Role.VIEWER: _READ,
    # Auditors read the audit log and the webhook delivery log (endpoints, events,
    # attempts); they change nothing.
    Role.AUDITOR: _READ | {Permission.AUDIT_READ, Permission.WEBHOOKS_READ},
}
"""The permissions of each role (signer and approver gain transaction verbs later)."""


def permissions_of(role: Role) -> frozenset[Permission]:
    return ROLE_PERMISSIONS[role]


def require(principal: Principal, permission: Permission) -> None:
    """Raise unless ``principal``'s role grants ``permission``.

    Raises:
        Forbidden: the role lacks the permission.
    """
    if permission not in ROLE_PERMISSIONS[principal.role]:
        raise Forbidden(f"role {principal.role.value!r} may not {permission.value}")


def check_grant(granter: Role, granted: Role) -> None:
    """Raise unless a principal with role ``granter`` may hand out role ``granted``.

    Raises:
        Forbidden: ``granted`` is owner and ``granter`` is not, or ``granted`` has a
            permission ``granter`` lacks.
    """
    if granted is Role.OWNER and granter is not Role.OWNER:
        raise Forbidden("only an owner may grant the owner role")
    if not ROLE_PERMISSIONS[granted] <= ROLE_PERMISSIONS[granter]:
        raise Forbidden(f"role {granter.value!r} may not grant role {granted.value!r}")
