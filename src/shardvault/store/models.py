"""The relational schema (SQLAlchemy 2 typed declarative models).

Tenancy: every row a tenant owns carries ``workspace_id``, and tables that reference
another tenant-owned row do so through a composite foreign key that includes
``workspace_id``, so the database itself refuses a link across workspaces. Identifiers are
random UUIDs in text form, the same on both backends and safe to show to users.

Vaults, wallets and transactions come later; they follow the same rules (``workspace_id``
column, composite foreign keys to their parents, a ``(workspace_id, id)`` unique key).
"""

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shardvault.store.types import UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so migrations can refer to them on both backends."""


def new_id() -> str:
    """A fresh random identifier (UUID version 4, text form)."""
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    """Declarative base holding the shared metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Role(enum.StrEnum):
    """What a user or API key may do in its workspace (see ``shardvault.service.rbac``)."""

    OWNER = "owner"
    ADMIN = "admin"
    SIGNER = "signer"
    APPROVER = "approver"
    VIEWER = "viewer"
    AUDITOR = "auditor"


class KeyAlgorithm(enum.StrEnum):
    """Signature algorithms an API key may use for its request JWTs (JOSE names)."""

    ED25519 = "EdDSA"
    ES256 = "ES256"


class PrincipalStatus(enum.StrEnum):
    """Whether a user or API key may still act."""

    ACTIVE = "active"
    DISABLED = "disabled"


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    # Stored as text with a CHECK constraint on both backends: no native PostgreSQL enum
    # types, so adding a member later is a constraint change rather than a type change.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Workspace(Base):
    """A tenant: everything else belongs to exactly one workspace."""

    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class User(Base):
    """A person (or a service identity) in a workspace, with one role."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("workspace_id", "id"),
        UniqueConstraint("workspace_id", "email"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    status: Mapped[PrincipalStatus] = mapped_column(
        _enum(PrincipalStatus, "user_status"), default=PrincipalStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class ApiKey(Base):
    """A public key that authenticates API requests on behalf of a user.

    The private key never reaches the server: a request carries a JWT signed with it
    (see ``shardvault.service.auth``).
    """

    __tablename__ = "api_keys"
    __table_args__ = (
        UniqueConstraint("workspace_id", "id"),
        ForeignKeyConstraint(["workspace_id", "user_id"], ["users.workspace_id", "users.id"]),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    name: Mapped[str] = mapped_column(String(200))
    algorithm: Mapped[KeyAlgorithm] = mapped_column(_enum(KeyAlgorithm, "key_algorithm"))
    public_key_pem: Mapped[str] = mapped_column(Text)
    role: Mapped[Role] = mapped_column(_enum(Role, "key_role"))
    status: Mapped[PrincipalStatus] = mapped_column(
        _enum(PrincipalStatus, "key_status"), default=PrincipalStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class UsedNonce(Base):
    """A request-JWT nonce already seen for an API key, kept until the JWT expires."""

    __tablename__ = "used_nonces"

    api_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class IdempotencyRecord(Base):
    """The first response to a mutating request, stored under its idempotency key.

    The record is inserted in the same transaction as the change it describes, so either
    both exist or neither does; the unique key makes a concurrent duplicate wait for the
    first transaction and then read its result.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(2048))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


SYSTEM_CHAIN = "system"
"""The audit chain for events that belong to no workspace (e.g. an unknown API key)."""


class AuditChainHead(Base):
    """The latest event of one audit chain; appenders lock this row to serialize.

    ``signature`` is the audit key's signature over (chain, last_seq, last_hash), so the
    head itself cannot be moved back without the key.
    """

    __tablename__ = "audit_chain_heads"

    chain: Mapped[str] = mapped_column(String(36), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(16), default=None)
    signature: Mapped[str | None] = mapped_column(String(128), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditEvent(Base):
    """One entry of a hash chain (see ``shardvault.audit.encoding`` for what is hashed)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("chain", "seq"),
        CheckConstraint("outcome IN ('success', 'refused')", name="outcome"),
        Index("ix_audit_events_workspace_seq", "workspace_id", "seq"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    chain: Mapped[str] = mapped_column(String(36))
    seq: Mapped[int] = mapped_column(BigInteger)
    workspace_id: Mapped[str | None] = mapped_column(ForeignKey("workspaces.id"), default=None)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_type: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(16))
    resource_type: Mapped[str | None] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(255))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(128))


class AuditCheckpoint(Base):
    """A signed statement that event ``seq`` of ``chain`` has hash ``hash``."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (UniqueConstraint("chain", "seq"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    chain: Mapped[str] = mapped_column(String(36))
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(128))


# The custody domain's tables live in their own module; importing it here puts them in
# the shared metadata that Alembic and the tests see.
from shardvault.store import models_attestations as _models_attestations  # noqa: E402, F401
from shardvault.store import models_cosigners as _models_cosigners  # noqa: E402, F401
from shardvault.store import models_initiators as _models_initiators  # noqa: E402, F401
from shardvault.store import models_prices as _models_prices  # noqa: E402, F401
from shardvault.store import models_vault_creations as _models_creations  # noqa: E402, F401
from shardvault.store import models_vaults as _models_vaults  # noqa: E402, F401
from shardvault.store import models_webhooks as _models_webhooks  # noqa: E402, F401
