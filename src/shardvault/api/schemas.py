"""Request and response bodies of the REST API (pydantic, the API edge only)."""

import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shardvault.service.audit_trail import AuditEventView, VerificationOutcome
from shardvault.service.signer_mode import SignerMode
from shardvault.service.views import ApiKeyView, UserView, WorkspaceView

RoleName = Literal["owner", "admin", "signer", "approver", "viewer", "auditor"]
AlgorithmName = Literal["EdDSA", "ES256"]
StatusName = Literal["active", "disabled"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """An RFC 9457 problem details object (``application/problem+json``)."""

    type: str = Field(examples=["urn:shardvault:problem:replayed-request"])
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, object]] | None = None


class SignerOut(BaseModel):
    """How the server signs; ``single_host`` and ``development_only`` mark a mode where
    one host holds every key share (``warning`` says what that means)."""

    mode: str = Field(examples=["embedded-cosigners"])
    single_host: bool
    development_only: bool
    warning: str | None

    @classmethod
    def of(cls, mode: SignerMode) -> "SignerOut":
        return cls(
            mode=mode.mode,
            single_host=mode.single_host,
            development_only=mode.development_only,
            warning=mode.warning,
        )


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    database: str
    schema_revision: str | None
    expected_revision: str
    version: str
    signer: SignerOut | None = Field(
        default=None, description="The signing backend; null when the server runs none."
    )


class WorkspaceOut(BaseModel):
    id: str
    name: str
    created_at: datetime

    @classmethod
    def of(cls, view: WorkspaceView) -> "WorkspaceOut":
        return cls(id=view.id, name=view.name, created_at=view.created_at)


class CreateUserIn(_In):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320)
    role: RoleName


class UserOut(BaseModel):
    id: str
    workspace_id: str
    name: str
    email: str
    role: RoleName
    status: StatusName
    created_at: datetime
    disabled_at: datetime | None

    @classmethod
    def of(cls, view: UserView) -> "UserOut":
        return cls(
            id=view.id,
            workspace_id=view.workspace_id,
            name=view.name,
            email=view.email,
            role=view.role.value,
            status=view.status.value,
            created_at=view.created_at,
            disabled_at=view.disabled_at,
        )


class UserPage(BaseModel):
    data: list[UserOut]
    next_cursor: str | None


class CreateApiKeyIn(_In):
    user_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    algorithm: AlgorithmName
    public_key_pem: str = Field(min_length=1, max_length=4096)
    role: RoleName | None = None


class ApiKeyOut(BaseModel):
    id: str
    workspace_id: str
    user_id: str
    name: str
    algorithm: AlgorithmName
    role: RoleName
    status: StatusName
    public_key_pem: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, view: ApiKeyView) -> "ApiKeyOut":
        return cls(
            id=view.id,
            workspace_id=view.workspace_id,
            user_id=view.user_id,
            name=view.name,
            algorithm=view.algorithm.value,
            role=view.role.value,
            status=view.status.value,
            public_key_pem=view.public_key_pem,
            created_at=view.created_at,
            revoked_at=view.revoked_at,
        )


class ApiKeyPage(BaseModel):
    data: list[ApiKeyOut]
    next_cursor: str | None


class AuditEventOut(BaseModel):
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

    @classmethod
    def of(cls, view: AuditEventView) -> "AuditEventOut":
        return cls(
            id=view.id,
            seq=view.seq,
            occurred_at=view.occurred_at,
            actor_type=view.actor_type,
            actor_id=view.actor_id,
            action=view.action,
            outcome="refused" if view.outcome == "refused" else "success",
            resource_type=view.resource_type,
            resource_id=view.resource_id,
            details=json.loads(view.details),
            prev_hash=view.prev_hash,
            hash=view.hash,
        )


class AuditEventPage(BaseModel):
    data: list[AuditEventOut]
    next_cursor: str | None


class AuditVerificationOut(BaseModel):
    chain: str
    valid: bool
    events: int
    checkpoints: int
    last_seq: int
    broken_at_seq: int | None
    broken_event_id: str | None
    problem: str | None
    detail: str | None

    @classmethod
    def of(cls, outcome: VerificationOutcome) -> "AuditVerificationOut":
        return cls(
            chain=outcome.chain,
            valid=outcome.valid,
            events=outcome.events,
            checkpoints=outcome.checkpoints,
            last_seq=outcome.last_seq,
            broken_at_seq=outcome.broken_at_seq,
            broken_event_id=outcome.broken_event_id,
            problem=outcome.problem,
            detail=outcome.detail,
        )
