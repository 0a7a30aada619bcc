"""Webhooks: endpoint configuration, event emission (the outbox), resend, delivery log.

Other services call :func:`emit_event` inside the unit of work that makes a change; the
event, its per-resource sequence number and one pending delivery per subscribed endpoint
are written in that same transaction (the transactional outbox), so an event exists if
and only if its change committed. The dispatcher (:mod:`shardvault.service.webhook_delivery`)
sends them later, at least once.

Each event has a stable id (a random UUID) that every delivery and redelivery carries, so
receivers deduplicate on it, and a sequence number per resource (1, 2, 3 ... per
``(workspace, resource_type, resource_id)``) so receivers can order and detect gaps.

Configuration changes (create, update, delete of an endpoint, resend, test event) write
an audit event in the same transaction; reading needs ``webhooks:read``, changing needs
``webhooks:manage`` (owners and admins).
"""

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from shardvault.audit import Actor, JsonValue
from shardvault.service.context import Principal
from shardvault.service.destinations import DestinationPolicy
from shardvault.service.errors import Conflict, NotFound, ValidationError
from shardvault.service.pagination import page_of, page_size
from shardvault.service.rbac import Permission, require
from shardvault.service.uow import UnitOfWork
from shardvault.service.views import Page
from shardvault.service.webhook_views import AttemptView as AttemptView
from shardvault.service.webhook_views import DeliveryView as DeliveryView
from shardvault.service.webhook_views import EndpointView as EndpointView
from shardvault.service.webhook_views import EventView as EventView
from shardvault.store.models import new_id
from shardvault.store.models_webhooks import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from shardvault.store.repositories_webhooks import DeliveryQueue, TimeCursor, WebhookRepository
from shardvault.store.types import as_utc, utcnow

API_VERSION = "v1"
"""The version of the event envelope (``api_version`` in every body)."""

MAX_BODY_BYTES = 256 * 1024
"""The largest event body (envelope and payload) accepted."""

MAX_ENDPOINTS_PER_WORKSPACE = 50
MAX_EVENT_TYPES = 50

TEST_EVENT_TYPE = "webhook.test"
"""The type of the event :func:`send_test_event` sends."""

# Event types the platform emits (docs/webhooks.md lists what each carries).
TRANSACTION_CREATED = "transaction.created"
TRANSACTION_STATUS_CHANGED = "transaction.status_changed"

_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,40}(\.[a-z][a-z0-9_]{0,40}){1,3}$")
_FILTER = re.compile(r"^(\*|[a-z][a-z0-9_]{0,40}(\.[a-z][a-z0-9_]{0,40}){0,3}\.\*)$")
_RESOURCE_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


# Validation helpers.


def _repo(uow: UnitOfWork, workspace_id: str) -> WebhookRepository:
    return WebhookRepository(uow.session, workspace_id)


def _event_types(values: Sequence[str]) -> list[str]:
    if not 1 <= len(values) <= MAX_EVENT_TYPES:
        raise ValidationError("event_types", f"must list 1 to {MAX_EVENT_TYPES} event types")
    cleaned: list[str] = []
    for value in values:
        if not isinstance(value, str) or not (_EVENT_TYPE.match(value) or _FILTER.match(value)):
            raise ValidationError(
                "event_types",
                f"{value!r} is not an event type, a 'prefix.*' pattern or '*'",
            )
        if value not in cleaned:
            cleaned.append(value)
    return cleaned


def _description(value: str) -> str:
    cleaned = value.strip()
    if len(cleaned) > 200 or any(ord(c) < 32 for c in cleaned):
        raise ValidationError("description", "must be at most 200 characters, no control ones")
    return cleaned


def subscribes(event_types: Sequence[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to ``event_types`` receives ``event_type``."""
    for pattern in event_types:
        if pattern in ("*", event_type):
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def _redacted_url(url: str) -> str:
    # Audit details keep where events go, not the query string (which may hold a token).
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _encode_cursor(at: datetime, row_id: str) -> str:
    text = f"{as_utc(at).strftime('%Y-%m-%dT%H:%M:%S.%f')}|{row_id}"
    return base64.urlsafe_b64encode(text.encode("ascii")).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str | None) -> TimeCursor | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        stamp, _, row_id = text.partition("|")
        at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f")
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("cursor", "not a cursor this server issued") from None
    if not 1 <= len(row_id) <= 36:
        raise ValidationError("cursor", "not a cursor this server issued")
    return as_utc(at), row_id


# Endpoints.


def create_endpoint(
    uow: UnitOfWork,
    principal: Principal,
    *,
    url: str,
    event_types: Sequence[str] = ("*",),
    description: str = "",
    enabled: bool = True,
    policy: DestinationPolicy,
) -> EndpointView:
    """Add a webhook endpoint to the caller's workspace.

    Raises:
        Forbidden: the role may not manage webhooks.
        ValidationError: the URL (scheme, SSRF guard), event types or description.
        Conflict: the workspace already has the maximum number of endpoints.
    """
    require(principal, Permission.WEBHOOKS_MANAGE)
    clean_url = policy.check_url(url)
    types = _event_types(event_types)
    text = _description(description)
    repo = _repo(uow, principal.workspace_id)
    # Serialize endpoint creation per workspace so the limit holds under concurrency.
    uow.workspaces().lock(principal.workspace_id)
    if (
        len(repo.list_endpoints(limit=MAX_ENDPOINTS_PER_WORKSPACE + 1))
        >= MAX_ENDPOINTS_PER_WORKSPACE
    ):
        raise Conflict(f"a workspace may have at most {MAX_ENDPOINTS_PER_WORKSPACE} endpoints")
    now = utcnow()
    endpoint = repo.add_endpoint(
        WebhookEndpoint(
            id=new_id(),
            url=clean_url,
            description=text,
            event_types=json.dumps(types),
            enabled=enabled,
            created_at=now,
            updated_at=now,
        )
    )
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="webhook_endpoint.create",
        resource_type="webhook_endpoint",
        resource_id=endpoint.id,
        details={"url": _redacted_url(clean_url), "event_types": list(types), "enabled": enabled},
    )
    return EndpointView.of(endpoint)


def get_endpoint(uow: UnitOfWork, principal: Principal, endpoint_id: str) -> EndpointView:
    """One endpoint of the caller's workspace.

    Raises:
        Forbidden: the role may not read webhooks.
        NotFound: no such endpoint in this workspace.
    """
    require(principal, Permission.WEBHOOKS_READ)
    endpoint = _repo(uow, principal.workspace_id).get_endpoint(endpoint_id)
    if endpoint is None:
        raise NotFound("webhook_endpoint", endpoint_id)
    return EndpointView.of(endpoint)


def list_endpoints(
    uow: UnitOfWork, principal: Principal, *, limit: int = 50, cursor: str | None = None
) -> Page[EndpointView]:
    """A page of the workspace's endpoints, oldest first.

    Raises:
        Forbidden: the role may not read webhooks.
        ValidationError: a bad limit or cursor.
    """
    require(principal, Permission.WEBHOOKS_READ)
    size = page_size(limit)
    rows = _repo(uow, principal.workspace_id).list_endpoints(
        limit=size + 1, cursor=_decode_cursor(cursor)
    )
    return page_of(
        rows, size, EndpointView.of, lambda item: _encode_cursor(item.created_at, item.id)
    )


def update_endpoint(
    uow: UnitOfWork,
    principal: Principal,
    endpoint_id: str,
    *,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
    policy: DestinationPolicy,
) -> EndpointView:
    """Change an endpoint's URL, event types, description or enabled flag.

    Pending deliveries keep going to the endpoint (to its new URL); a disabled endpoint's
    deliveries wait until it is enabled again.

    Raises:
        Forbidden: the role may not manage webhooks.
        NotFound: no such endpoint in this workspace.
        ValidationError: a new value is not acceptable.
    """
    require(principal, Permission.WEBHOOKS_MANAGE)
    endpoint = _repo(uow, principal.workspace_id).get_endpoint(endpoint_id, for_update=True)
    if endpoint is None:
        raise NotFound("webhook_endpoint", endpoint_id)
    changes: dict[str, JsonValue] = {}
    if url is not None:
        clean_url = policy.check_url(url)
        if clean_url != endpoint.url:
            endpoint.url = clean_url
            changes["url"] = _redacted_url(clean_url)
    if event_types is not None:
        types = _event_types(event_types)
        if types != json.loads(endpoint.event_types):
            endpoint.event_types = json.dumps(types)
            changes["event_types"] = list(types)
    if description is not None:
        text = _description(description)
        if text != endpoint.description:
            endpoint.description = text
            changes["description"] = text
    if enabled is not None and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        changes["enabled"] = enabled
    if changes:
        endpoint.updated_at = utcnow()
        uow.session.flush()
        uow.audit.append(
            workspace_id=principal.workspace_id,
            actor=principal.actor,
            action="webhook_endpoint.update",
            resource_type="webhook_endpoint",
            resource_id=endpoint.id,
            details={"changes": changes},
        )
    return EndpointView.of(endpoint)


def delete_endpoint(uow: UnitOfWork, principal: Principal, endpoint_id: str) -> EndpointView:
    """Delete an endpoint: it receives nothing more and its pending deliveries are
    cancelled; its delivery log stays readable.

    Raises:
        Forbidden: the role may not manage webhooks.
        NotFound: no such endpoint in this workspace.
    """
    require(principal, Permission.WEBHOOKS_MANAGE)
    repo = _repo(uow, principal.workspace_id)
    endpoint = repo.get_endpoint(endpoint_id, for_update=True)
    if endpoint is None:
        raise NotFound("webhook_endpoint", endpoint_id)
    now = utcnow()
    cancelled = 0
    for delivery in repo.pending_for_endpoint(endpoint.id):
        delivery.status = DeliveryStatus.CANCELLED
        delivery.claim_token = None
        delivery.updated_at = now
        cancelled += 1
    endpoint.deleted_at = now
    endpoint.enabled = False
    endpoint.updated_at = now
    uow.session.flush()
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="webhook_endpoint.delete",
        resource_type="webhook_endpoint",
        resource_id=endpoint.id,
        details={"cancelled_deliveries": cancelled},
    )
    return EndpointView.of(endpoint)


# Events.


_FLAT_JSON = (str, int, bool, type(None))


def _json_payload(payload: Mapping[str, object]) -> object:
    if not isinstance(payload, Mapping):
        raise ValidationError("payload", "must be a JSON object")
    if all(type(k) is str and type(v) in _FLAT_JSON for k, v in payload.items()):
        return dict(payload)  # already plain JSON (a state change's payload)
    try:
        # Round-trip so what is stored is plain JSON (no tuples, no subclasses).
        return json.loads(json.dumps(dict(payload), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationError("payload", f"not JSON-serializable: {exc}") from None


def _record_event(
    uow: UnitOfWork,
    workspace_id: str,
    resource_type: str,
    resource_id: str,
    event_type: str,
    payload: Mapping[str, object],
    endpoints: Sequence[WebhookEndpoint] | None,
    *,
    new_resource: bool = False,
) -> tuple[WebhookEvent, list[WebhookDelivery]]:
    if not _EVENT_TYPE.match(event_type):
        raise ValidationError("event_type", f"{event_type!r} is not a dotted lower-case name")
    if not _RESOURCE_TYPE.match(resource_type):
        raise ValidationError("resource_type", f"{resource_type!r} is not a lower-case name")
    if not 1 <= len(resource_id) <= 255 or any(ord(c) < 32 for c in resource_id):
        raise ValidationError("resource_id", "must be 1 to 255 printable characters")
    data = _json_payload(payload)
    repo = _repo(uow, workspace_id)
    if new_resource:
        repo.new_resource(resource_type, resource_id)
    seq = repo.next_sequence(resource_type, resource_id)
    event_id = new_id()
    now = utcnow()
    envelope = {
        "id": event_id,
        "type": event_type,
        "api_version": API_VERSION,
        "created_at": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "workspace_id": workspace_id,
        "resource": {"type": resource_type, "id": resource_id},
        "sequence": seq,
        "data": data,
    }
    body = json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if len(body.encode("utf-8")) > MAX_BODY_BYTES:
        raise ValidationError("payload", f"the event body exceeds {MAX_BODY_BYTES} bytes")
    event = repo.add_event(
        WebhookEvent(
            id=event_id,
            event_type=event_type,
            resource_type=resource_type,
            resource_id=resource_id,
            seq=seq,
            body=body,
            created_at=now,
        )
    )
    targets = (
        endpoints
        if endpoints is not None
        else [
            e for e in repo.enabled_endpoints() if subscribes(json.loads(e.event_types), event_type)
        ]
    )
    if targets:
        uow.session.flush()  # the event's row before its deliveries' (foreign key)
    deliveries = [_new_delivery(repo, event, endpoint.id, now) for endpoint in targets]
    return event, deliveries


def _new_delivery(
    repo: WebhookRepository, event: WebhookEvent, endpoint_id: str, now: datetime
) -> WebhookDelivery:
    return repo.add_delivery(
        WebhookDelivery(
            id=new_id(),
            event_id=event.id,
            endpoint_id=endpoint_id,
            resource_type=event.resource_type,
            resource_id=event.resource_id,
            seq=event.seq,
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
    )


def emit_event(
    uow: UnitOfWork,
    workspace_id: str,
    resource_type: str,
    resource_id: str,
    event_type: str,
    payload: Mapping[str, object],
    *,
    new_resource: bool = False,
) -> EventView:
    """Record an event in the outbox, in the caller's transaction, with one pending
    delivery per enabled endpoint of the workspace that subscribes to ``event_type``.
    ``new_resource``: the caller creates the resource in this transaction (with a fresh
    id), so its sequence starts at 1 without a look at the counters.

    Call it from the unit of work that makes the change the event reports (a transaction
    changing state, say), after the caller's own permission checks: it checks none.
    Events of one resource get sequence numbers 1, 2, 3 ... in commit order (a concurrent
    emitter for the same resource waits for this transaction to end).

    Raises:
        ValidationError: a malformed event type, resource type or id, a payload that is
            not a JSON object (floats must be finite), or a body over 256 KiB.
    """
    event, _ = _record_event(
        uow,
        workspace_id,
        resource_type,
        resource_id,
        event_type,
        payload,
        None,
        new_resource=new_resource,
    )
    return EventView.of(event)


def send_test_event(
    uow: UnitOfWork, principal: Principal, endpoint_id: str
) -> tuple[EventView, DeliveryView]:
    """Send a ``webhook.test`` event to one endpoint (whatever its filter says).

    Raises:
        Forbidden: the role may not manage webhooks.
        NotFound: no such endpoint in this workspace.
        Conflict: the endpoint is disabled.
    """
    require(principal, Permission.WEBHOOKS_MANAGE)
    endpoint = _repo(uow, principal.workspace_id).get_endpoint(endpoint_id)
    if endpoint is None:
        raise NotFound("webhook_endpoint", endpoint_id)
    if not endpoint.enabled:
        raise Conflict(f"webhook endpoint {endpoint_id!r} is disabled")
    event, deliveries = _record_event(
        uow,
        principal.workspace_id,
        "webhook_endpoint",
        endpoint.id,
        TEST_EVENT_TYPE,
        {"message": "a test event sent on request"},
        [endpoint],
    )
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="webhook_endpoint.test",
        resource_type="webhook_endpoint",
        resource_id=endpoint.id,
        details={"event_id": event.id},
    )
    return EventView.of(event), DeliveryView.of(deliveries[0])


def get_event(uow: UnitOfWork, principal: Principal, event_id: str) -> EventView:
    """One event of the caller's workspace.

    Raises:
        Forbidden: the role may not read webhooks.
        NotFound: no such event in this workspace.
    """
    require(principal, Permission.WEBHOOKS_READ)
    event = _repo(uow, principal.workspace_id).get_event(event_id)
    if event is None:
        raise NotFound("webhook_event", event_id)
    return EventView.of(event)


def list_events(
    uow: UnitOfWork,
    principal: Principal,
    *,
    limit: int = 50,
    cursor: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
) -> Page[EventView]:
    """A page of the workspace's events, oldest first, optionally of one resource.

    Raises:
        Forbidden: the role may not read webhooks.
        ValidationError: a bad limit or cursor.
    """
    require(principal, Permission.WEBHOOKS_READ)
    size = page_size(limit)
    rows = _repo(uow, principal.workspace_id).list_events(
        limit=size + 1,
        cursor=_decode_cursor(cursor),
        resource_type=resource_type,
        resource_id=resource_id,
    )
    return page_of(rows, size, EventView.of, lambda item: _encode_cursor(item.created_at, item.id))


def resend_event(
    uow: UnitOfWork, principal: Principal, event_id: str, *, endpoint_id: str | None = None
) -> tuple[DeliveryView, ...]:
    """Deliver an event again (same event id and body), as a new delivery.

    With ``endpoint_id``, to that endpoint; otherwise to every live, enabled endpoint that
    received a delivery of it before (or, if none did, to every endpoint subscribed to its
    type now). An endpoint that still has a pending delivery of the event gets no second
    one: the pending one is returned instead.

    Raises:
        Forbidden: the role may not manage webhooks.
        NotFound: no such event or endpoint in this workspace.
        Conflict: the named endpoint is disabled, or no endpoint can receive the event.
    """
    require(principal, Permission.WEBHOOKS_MANAGE)
    repo = _repo(uow, principal.workspace_id)
    # Locked so that a concurrent purge of old events cannot remove it under us.
    event = repo.get_event(event_id, for_update=True)
    if event is None:
        raise NotFound("webhook_event", event_id)
    previous = repo.deliveries_of_event(event.id)
    targets: list[WebhookEndpoint] = []
    if endpoint_id is not None:
        endpoint = repo.get_endpoint(endpoint_id)
        if endpoint is None:
            raise NotFound("webhook_endpoint", endpoint_id)
        if not endpoint.enabled:
            raise Conflict(f"webhook endpoint {endpoint_id!r} is disabled")
        targets.append(endpoint)
    else:
        seen = {d.endpoint_id for d in previous}
        enabled = repo.enabled_endpoints()
        targets = [e for e in enabled if e.id in seen] or [
            e for e in enabled if subscribes(json.loads(e.event_types), event.event_type)
        ]
    if not targets:
        raise Conflict(f"no enabled endpoint can receive webhook event {event_id!r}")
    now = utcnow()
    results: list[WebhookDelivery] = []
    for endpoint in targets:
        pending = next(
            (
                d
                for d in previous
                if d.endpoint_id == endpoint.id and d.status is DeliveryStatus.PENDING
            ),
            None,
        )
        results.append(pending or _new_delivery(repo, event, endpoint.id, now))
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="webhook_event.resend",
        resource_type="webhook_event",
        resource_id=event.id,
        details={"deliveries": [d.id for d in results]},
    )
    return tuple(DeliveryView.of(d) for d in results)


MAX_RESEND_FAILED = 1000
"""The most deliveries one "resend failed" call creates (call again for more)."""


def resend_failed(
    uow: UnitOfWork,
    principal: Principal,
    *,
    endpoint_id: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
) -> tuple[DeliveryView, ...]:
    """Resend every failed delivery (optionally of one endpoint or one resource) whose event
    was not delivered to that endpoint since, to live enabled endpoints; at most 1000 per
    call, oldest first. Events of one resource keep their order.

    Raises:
        Forbidden: the role may not manage webhooks.
        NotFound: ``endpoint_id`` names no endpoint of this workspace.
    """
    require(principal, Permission.WEBHOOKS_MANAGE)
    repo = _repo(uow, principal.workspace_id)
    if endpoint_id is not None and repo.get_endpoint(endpoint_id) is None:
        raise NotFound("webhook_endpoint", endpoint_id)
    live = {e.id for e in repo.enabled_endpoints()}
    failed = repo.failed_without_retry(
        limit=MAX_RESEND_FAILED,
        endpoint_id=endpoint_id,
        resource_type=resource_type,
        resource_id=resource_id,
    )
    now = utcnow()
    created: list[WebhookDelivery] = []
    seen: set[tuple[str, str]] = set()
    for old in failed:
        pair = (old.event_id, old.endpoint_id)
        if old.endpoint_id not in live or pair in seen:
            continue
        seen.add(pair)
        event = repo.get_event(old.event_id, for_update=True)
        if event is None:  # Purged since the failed delivery was read.
            continue
        created.append(_new_delivery(repo, event, old.endpoint_id, now))
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="webhook_event.resend_failed",
        resource_type="webhook_endpoint" if endpoint_id is not None else None,
        resource_id=endpoint_id,
        details={
            "resource_type": resource_type,
            "resource_id": resource_id,
            "deliveries": len(created),
        },
    )
    return tuple(DeliveryView.of(d) for d in created)


# Deliveries and the delivery log.


def list_deliveries(
    uow: UnitOfWork,
    principal: Principal,
    *,
    limit: int = 50,
    cursor: str | None = None,
    endpoint_id: str | None = None,
    event_id: str | None = None,
    status: DeliveryStatus | None = None,
) -> Page[DeliveryView]:
    """A page of deliveries, oldest first, filtered by endpoint, event or status.

    Raises:
        Forbidden: the role may not read webhooks.
        ValidationError: a bad limit or cursor.
    """
    require(principal, Permission.WEBHOOKS_READ)
    size = page_size(limit)
    rows = _repo(uow, principal.workspace_id).list_deliveries(
        limit=size + 1,
        cursor=_decode_cursor(cursor),
        endpoint_id=endpoint_id,
        event_id=event_id,
        status=status,
    )
    return page_of(
        rows, size, DeliveryView.of, lambda item: _encode_cursor(item.created_at, item.id)
    )


def list_attempts(
    uow: UnitOfWork,
    principal: Principal,
    *,
    limit: int = 50,
    cursor: str | None = None,
    endpoint_id: str | None = None,
    event_id: str | None = None,
    delivery_id: str | None = None,
) -> Page[AttemptView]:
    """A page of the delivery log (every HTTP attempt), oldest first.

    Raises:
        Forbidden: the role may not read webhooks.
        ValidationError: a bad limit or cursor.
    """
    require(principal, Permission.WEBHOOKS_READ)
    size = page_size(limit)
    rows = _repo(uow, principal.workspace_id).list_attempts(
        limit=size + 1,
        cursor=_decode_cursor(cursor),
        endpoint_id=endpoint_id,
        event_id=event_id,
        delivery_id=delivery_id,
    )
    return page_of(
        rows, size, AttemptView.of, lambda item: _encode_cursor(item.started_at, item.id)
    )


# Retention.


@dataclass(frozen=True, slots=True)
class PurgeReport:
    events: int
    deliveries: int
    attempts: int


def purge_history(
    uow: UnitOfWork, *, before: datetime, actor: Actor, limit: int = 5000
) -> PurgeReport:
    """Delete up to ``limit`` events (of every workspace) created before ``before`` that
    have no pending delivery, with their deliveries and delivery log; one audit event in
    the system chain records the counts. An operator's maintenance call (the command line's
    ``webhook purge``), not an API route. Per-resource sequence numbers keep counting up.

    Raises:
        ValidationError: ``limit`` is not positive.
    """
    if limit < 1:
        raise ValidationError("limit", "must be positive")
    events, deliveries, attempts = DeliveryQueue(uow.session).purge_finished(as_utc(before), limit)
    report = PurgeReport(events, deliveries, attempts)
    uow.audit.append(
        workspace_id=None,
        actor=actor,
        action="webhook.purge",
        details={
            "before": as_utc(before).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "events": events,
            "deliveries": deliveries,
            "attempts": attempts,
        },
    )
    return report
