"""What the webhook service answers about endpoints, events, deliveries and attempts:
frozen views built from the stored rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from shardvault.store.models_webhooks import (
    AttemptOutcome,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)


@dataclass(frozen=True, slots=True)
class EndpointView:
    id: str
    workspace_id: str
    url: str
    description: str
    event_types: tuple[str, ...]
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: WebhookEndpoint) -> EndpointView:
        return cls(
            id=row.id,
            workspace_id=row.workspace_id,
            url=row.url,
            description=row.description,
            event_types=tuple(json.loads(row.event_types)),
            enabled=row.enabled,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@dataclass(frozen=True, slots=True)
class EventView:
    """An event; ``body`` is the exact JSON text every delivery of it sends."""

    id: str
    workspace_id: str
    event_type: str
    resource_type: str
    resource_id: str
    sequence: int
    created_at: datetime
    body: str

    @classmethod
    def of(cls, row: WebhookEvent) -> EventView:
        return cls(
            id=row.id,
            workspace_id=row.workspace_id,
            event_type=row.event_type,
            resource_type=row.resource_type,
            resource_id=row.resource_id,
            sequence=row.seq,
            created_at=row.created_at,
            body=row.body,
        )


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: str
    event_id: str
    endpoint_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: WebhookDelivery) -> DeliveryView:
        return cls(
            id=row.id,
            event_id=row.event_id,
            endpoint_id=row.endpoint_id,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at if row.status is DeliveryStatus.PENDING else None,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            delivered_at=row.delivered_at,
            created_at=row.created_at,
        )


@dataclass(frozen=True, slots=True)
class AttemptView:
    """One entry of the delivery log."""

    id: str
    delivery_id: str
    event_id: str
    endpoint_id: str
    attempt: int
    outcome: AttemptOutcome
    started_at: datetime
    finished_at: datetime | None
    status_code: int | None
    latency_ms: int | None
    error: str | None

    @classmethod
    def of(cls, row: WebhookAttempt) -> AttemptView:
        return cls(
            id=row.id,
            delivery_id=row.delivery_id,
            event_id=row.event_id,
            endpoint_id=row.endpoint_id,
            attempt=row.attempt,
            outcome=row.outcome,
            started_at=row.started_at,
            finished_at=row.finished_at,
            status_code=row.status_code,
            latency_ms=row.latency_ms,
            error=row.error,
        )
