"""Tables of the webhook subsystem: endpoints, the event outbox, deliveries, attempts.

The outbox pattern: a service that changes state calls
``shardvault.service.webhooks.emit_event`` in the same transaction, which inserts one
:class:`WebhookEvent` (its JSON body frozen at that moment) and one pending
:class:`WebhookDelivery` per subscribed endpoint. Either the change, its event and its
deliveries all commit, or none does. The dispatcher later claims due deliveries, POSTs
them, and writes one :class:`WebhookAttempt` row per try (the delivery log).

Tenancy follows ``shardvault.store.models``: every row carries ``workspace_id`` and links
to its parents through composite foreign keys that include it.
"""

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from shardvault.store.models import Base, new_id
from shardvault.store.types import UTCDateTime, utcnow


class DeliveryStatus(enum.StrEnum):
    """Where one delivery of one event to one endpoint stands."""

    PENDING = "pending"
    """Waiting for its next attempt (or claimed by a dispatcher whose lease runs)."""
    DELIVERED = "delivered"
    """The endpoint answered 2xx."""
    FAILED = "failed"
    """Every allowed attempt failed; only a resend delivers it again."""
    CANCELLED = "cancelled"
    """The endpoint was deleted before the delivery succeeded."""


class AttemptOutcome(enum.StrEnum):
    """The result of one HTTP attempt."""

    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"
    FAILED = "failed"
    ABANDONED = "abandoned"
    """The dispatcher stopped (crash, kill) before it recorded a result; the delivery was
    claimed again after its lease ran out."""


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    # Text with a CHECK constraint on both backends, as in shardvault.store.models.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class WebhookEndpoint(Base):
    """A URL of a workspace that receives the events it subscribes to.

    ``event_types`` is a JSON list of event types, ``prefix.*`` patterns or ``*``.
    Deleting an endpoint sets ``deleted_at`` (its delivery log stays readable).
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (UniqueConstraint("workspace_id", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(200), default="")
    event_types: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class WebhookResourceSequence(Base):
    """The last event sequence number given out for one resource; emitters lock this row
    so that sequence numbers are gap-free and commit in order."""

    __tablename__ = "webhook_resource_sequences"

    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class WebhookEvent(Base):
    """One event (the outbox row). ``body`` holds the exact JSON bytes every delivery and
    redelivery sends, so a receiver sees the same event id and body each time."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("workspace_id", "id"),
        UniqueConstraint("workspace_id", "resource_type", "resource_id", "seq"),
        Index("ix_webhook_events_workspace_created", "workspace_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    event_type: Mapped[str] = mapped_column(String(100))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(255))
    seq: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookDelivery(Base):
    """One event to one endpoint: the unit the dispatcher claims, retries and finishes.

    The resource and sequence number are copied from the event so the dispatcher can hold
    back a delivery while an earlier event of the same resource to the same endpoint is
    still pending. ``claim_token`` names the current claim; a dispatcher whose lease ran
    out (and whose delivery was claimed again) cannot overwrite the newer claim's result.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("workspace_id", "id"),
        ForeignKeyConstraint(
            ["workspace_id", "event_id"], ["webhook_events.workspace_id", "webhook_events.id"]
        ),
        ForeignKeyConstraint(
            ["workspace_id", "endpoint_id"],
            ["webhook_endpoints.workspace_id", "webhook_endpoints.id"],
        ),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index(
            "ix_webhook_deliveries_ordering",
            "endpoint_id",
            "resource_type",
            "resource_id",
            "seq",
        ),
        Index("ix_webhook_deliveries_event", "workspace_id", "event_id"),
        Index("ix_webhook_deliveries_workspace_created", "workspace_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    event_id: Mapped[str] = mapped_column(String(36))
    endpoint_id: Mapped[str] = mapped_column(String(36))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(255))
    seq: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus, "webhook_delivery_status"), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claim_token: Mapped[str | None] = mapped_column(String(36), default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery: the delivery log."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "id"),
        ForeignKeyConstraint(
            ["workspace_id", "delivery_id"],
            ["webhook_deliveries.workspace_id", "webhook_deliveries.id"],
        ),
        Index("ix_webhook_attempts_workspace_started", "workspace_id", "started_at", "id"),
        Index("ix_webhook_attempts_delivery", "delivery_id", "attempt"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    delivery_id: Mapped[str] = mapped_column(String(36))
    event_id: Mapped[str] = mapped_column(String(36))
    endpoint_id: Mapped[str] = mapped_column(String(36))
    attempt: Mapped[int] = mapped_column(Integer)
    claim_token: Mapped[str] = mapped_column(String(36))
    outcome: Mapped[AttemptOutcome] = mapped_column(
        _enum(AttemptOutcome, "webhook_attempt_outcome"), default=AttemptOutcome.IN_PROGRESS
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    latency_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
