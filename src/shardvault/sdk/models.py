"""Typed responses of the API, as the SDK returns them."""

from datetime import datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

Role = Literal["owner", "admin", "signer", "approver", "viewer", "auditor"]
Status = Literal["active", "disabled"]

T = TypeVar("T")


class _Model(BaseModel):
    # New server fields must not break old clients.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Signer(_Model):
    mode: str
    single_host: bool
    development_only: bool
    warning: str | None = None


class Health(_Model):
    status: Literal["ok", "unavailable"]
    database: str
    schema_revision: str | None
    expected_revision: str
    version: str
    signer: Signer | None = None


class Workspace(_Model):
    id: str
    name: str
    created_at: datetime


class User(_Model):
    id: str
    workspace_id: str
    name: str
    email: str
    role: Role
    status: Status
    created_at: datetime
    disabled_at: datetime | None


class ApiKey(_Model):
    id: str
    workspace_id: str
    user_id: str
    name: str
    algorithm: Literal["EdDSA", "ES256"]
    role: Role
    status: Status
    public_key_pem: str
    created_at: datetime
    revoked_at: datetime | None


class AuditEvent(_Model):
    id: str
    seq: int
    occurred_at: datetime
    actor_type: str
    actor_id: str | None
    action: str
    outcome: Literal["success", "refused"]
    resource_type: str | None
    resource_id: str | None
    details: dict[str, object]
    prev_hash: str
    hash: str


class AuditVerification(_Model):
    chain: str
    valid: bool
    events: int
    checkpoints: int
    last_seq: int
    broken_at_seq: int | None
    broken_event_id: str | None
    problem: str | None
    detail: str | None


class Page(_Model, Generic[T]):
    data: list[T]
    next_cursor: str | None
