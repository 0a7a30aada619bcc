"""What service functions return: frozen snapshots of stored rows, detached from sessions."""

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from shardvault.store.models import (
    ApiKey,
    KeyAlgorithm,
    PrincipalStatus,
    Role,
    User,
    Workspace,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class WorkspaceView:
    id: str
    name: str
    created_at: datetime

    @classmethod
    def of(cls, row: Workspace) -> "WorkspaceView":
        return cls(id=row.id, name=row.name, created_at=row.created_at)


@dataclass(frozen=True, slots=True)
class UserView:
    id: str
    workspace_id: str
    name: str
    email: str
    role: Role
    status: PrincipalStatus
    created_at: datetime
    disabled_at: datetime | None

    @classmethod
    def of(cls, row: User) -> "UserView":
        return cls(
            id=row.id,
            workspace_id=row.workspace_id,
            name=row.name,
            email=row.email,
            role=row.role,
            status=row.status,
            created_at=row.created_at,
            disabled_at=row.disabled_at,
        )


@dataclass(frozen=True, slots=True)
class ApiKeyView:
    id: str
    workspace_id: str
    user_id: str
    name: str
    algorithm: KeyAlgorithm
    role: Role
    status: PrincipalStatus
    public_key_pem: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> "ApiKeyView":
        return cls(
            id=row.id,
            workspace_id=row.workspace_id,
            user_id=row.user_id,
            name=row.name,
            algorithm=row.algorithm,
            role=row.role,
            status=row.status,
            public_key_pem=row.public_key_pem,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next (``None`` on the last page)."""

    items: tuple[T, ...]
    next_cursor: str | None
