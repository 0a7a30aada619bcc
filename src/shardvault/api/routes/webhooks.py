"""Webhooks: endpoints (CRUD), events, resend, deliveries, the delivery log, the JWKS.

``GET /v1/webhooks/jwks`` is unauthenticated: receivers fetch the public key that signs
deliveries from it. Everything else needs ``webhooks:read`` or ``webhooks:manage``.
"""

import json
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from shardvault.api.deps import Mutation, authorized, get_platform, mutation, run_mutation
from shardvault.service import webhooks as svc
from shardvault.service.context import Principal
from shardvault.service.pagination import MAX_PAGE_SIZE
from shardvault.service.platform import Platform
from shardvault.service.rbac import Permission
from shardvault.service.uow import UnitOfWork
from shardvault.service.webhook_delivery import WebhookRuntime
from shardvault.store.models_webhooks import DeliveryStatus

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

PlatformDep = Annotated[Platform, Depends(get_platform)]
Reader = Annotated[Principal, Depends(authorized(Permission.WEBHOOKS_READ))]
Manager = Annotated[Mutation, Depends(mutation(Permission.WEBHOOKS_MANAGE))]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(max_length=200)]
Id = Annotated[str | None, Query(max_length=64)]

DeliveryStatusName = Literal["pending", "delivered", "failed", "cancelled"]
AttemptOutcomeName = Literal["in_progress", "delivered", "failed", "abandoned"]


def get_runtime(request: Request) -> WebhookRuntime:
    runtime = getattr(request.app.state, "webhooks", None)
    return runtime if isinstance(runtime, WebhookRuntime) else WebhookRuntime()


RuntimeDep = Annotated[WebhookRuntime, Depends(get_runtime)]


# Bodies.


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateEndpointIn(_In):
    url: str = Field(min_length=1, max_length=2048)
    event_types: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=50)
    description: str = Field(default="", max_length=200)
    enabled: bool = True


class UpdateEndpointIn(_In):
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=200)
    enabled: bool | None = None


class ResendIn(_In):
    endpoint_id: str | None = Field(default=None, max_length=64)


class EndpointOut(BaseModel):
    id: str
    workspace_id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: svc.EndpointView) -> "EndpointOut":
        return cls(
            id=view.id,
            workspace_id=view.workspace_id,
            url=view.url,
            description=view.description,
            event_types=list(view.event_types),
            enabled=view.enabled,
            created_at=view.created_at,
            updated_at=view.updated_at,
        )


class EndpointPage(BaseModel):
    data: list[EndpointOut]
    next_cursor: str | None


class EventOut(BaseModel):
    id: str
    type: str
    resource_type: str
    resource_id: str
    sequence: int
    created_at: datetime
    data: dict[str, object]

    @classmethod
    def of(cls, view: svc.EventView) -> "EventOut":
        envelope = json.loads(view.body)
        return cls(
            id=view.id,
            type=view.event_type,
            resource_type=view.resource_type,
            resource_id=view.resource_id,
            sequence=view.sequence,
            created_at=view.created_at,
            data=envelope.get("data", {}),
        )


class EventPage(BaseModel):
    data: list[EventOut]
    next_cursor: str | None


class DeliveryOut(BaseModel):
    id: str
    event_id: str
    endpoint_id: str
    status: DeliveryStatusName
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, view: svc.DeliveryView) -> "DeliveryOut":
        return cls(
            id=view.id,
            event_id=view.event_id,
            endpoint_id=view.endpoint_id,
            status=view.status.value,
            attempts=view.attempts,
            next_attempt_at=view.next_attempt_at,
            last_status_code=view.last_status_code,
            last_error=view.last_error,
            delivered_at=view.delivered_at,
            created_at=view.created_at,
        )


class DeliveryPage(BaseModel):
    data: list[DeliveryOut]
    next_cursor: str | None


class DeliveryList(BaseModel):
    data: list[DeliveryOut]


class TestEventOut(BaseModel):
    event: EventOut
    delivery: DeliveryOut


class AttemptOut(BaseModel):
    id: str
    delivery_id: str
    event_id: str
    endpoint_id: str
    attempt: int
    outcome: AttemptOutcomeName
    started_at: datetime
    finished_at: datetime | None
    status_code: int | None
    latency_ms: int | None
    error: str | None

    @classmethod
    def of(cls, view: svc.AttemptView) -> "AttemptOut":
        return cls(
            id=view.id,
            delivery_id=view.delivery_id,
            event_id=view.event_id,
            endpoint_id=view.endpoint_id,
            attempt=view.attempt,
            outcome=view.outcome.value,
            started_at=view.started_at,
            finished_at=view.finished_at,
            status_code=view.status_code,
            latency_ms=view.latency_ms,
            error=view.error,
        )


class AttemptPage(BaseModel):
    data: list[AttemptOut]
    next_cursor: str | None


class Jwk(BaseModel):
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    use: Literal["sig"]
    alg: Literal["EdDSA"]


class JwksOut(BaseModel):
    keys: list[Jwk]


# The key set.


@router.get("/jwks", response_model=JwksOut, openapi_extra={"security": []})
def jwks(runtime: RuntimeDep) -> JSONResponse:
    """The public keys that sign webhook deliveries (RFC 7517 key set of Ed25519 OKP keys);
    match a delivery's ``X-Shardvault-Key-Id`` header to a key's ``kid``. No credentials."""
    return JSONResponse(
        dict(runtime.jwks()),
        media_type="application/jwk-set+json",
        headers={"Cache-Control": "public, max-age=300"},
    )


# Endpoints.


@router.post("/endpoints", status_code=201, response_model=EndpointOut)
def create_endpoint(
    body: CreateEndpointIn, change: Manager, platform: PlatformDep, runtime: RuntimeDep
) -> Response:
    """Add an endpoint (owners and admins). Only http(s) URLs; loopback, private,
    link-local and metadata addresses are refused unless the server allows them."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = svc.create_endpoint(
            uow,
            change.principal,
            url=body.url,
            event_types=body.event_types,
            description=body.description,
            enabled=body.enabled,
            policy=runtime.policy,
        )
        return 201, EndpointOut.of(view).model_dump(mode="json")

    return run_mutation(platform, change, operation)


@router.get("/endpoints", response_model=EndpointPage)
def list_endpoints(
    platform: PlatformDep, principal: Reader, limit: Limit = 50, cursor: Cursor = None
) -> EndpointPage:
    """The workspace's endpoints, oldest first."""
    with platform.unit_of_work(read_only=True) as uow:
        page = svc.list_endpoints(uow, principal, limit=limit, cursor=cursor)
    return EndpointPage(data=[EndpointOut.of(e) for e in page.items], next_cursor=page.next_cursor)


@router.get("/endpoints/{endpoint_id}", response_model=EndpointOut)
def get_endpoint(endpoint_id: str, platform: PlatformDep, principal: Reader) -> EndpointOut:
    """One endpoint."""
    with platform.unit_of_work(read_only=True) as uow:
        return EndpointOut.of(svc.get_endpoint(uow, principal, endpoint_id))


@router.patch("/endpoints/{endpoint_id}", response_model=EndpointOut)
def update_endpoint(
    endpoint_id: str,
    body: UpdateEndpointIn,
    change: Manager,
    platform: PlatformDep,
    runtime: RuntimeDep,
) -> Response:
    """Change an endpoint's URL, event types, description or enabled flag."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = svc.update_endpoint(
            uow,
            change.principal,
            endpoint_id,
            url=body.url,
            event_types=body.event_types,
            description=body.description,
            enabled=body.enabled,
            policy=runtime.policy,
        )
        return 200, EndpointOut.of(view).model_dump(mode="json")

    return run_mutation(platform, change, operation)


@router.delete("/endpoints/{endpoint_id}", response_model=EndpointOut)
def delete_endpoint(endpoint_id: str, platform: PlatformDep, change: Manager) -> Response:
    """Delete an endpoint; its pending deliveries are cancelled, its log stays."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = svc.delete_endpoint(uow, change.principal, endpoint_id)
        return 200, EndpointOut.of(view).model_dump(mode="json")

    return run_mutation(platform, change, operation)


@router.post("/endpoints/{endpoint_id}/test", status_code=201, response_model=TestEventOut)
def send_test_event(endpoint_id: str, platform: PlatformDep, change: Manager) -> Response:
    """Queue a ``webhook.test`` event for this endpoint."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        event, delivery = svc.send_test_event(uow, change.principal, endpoint_id)
        out = TestEventOut(event=EventOut.of(event), delivery=DeliveryOut.of(delivery))
        return 201, out.model_dump(mode="json")

    return run_mutation(platform, change, operation)


# Events.


@router.get("/events", response_model=EventPage)
def list_events(
    platform: PlatformDep,
    principal: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
    resource_type: Annotated[str | None, Query(max_length=64)] = None,
    resource_id: Annotated[str | None, Query(max_length=255)] = None,
) -> EventPage:
    """The workspace's events, oldest first, optionally of one resource."""
    with platform.unit_of_work(read_only=True) as uow:
        page = svc.list_events(
            uow,
            principal,
            limit=limit,
            cursor=cursor,
            resource_type=resource_type,
            resource_id=resource_id,
        )
    return EventPage(data=[EventOut.of(e) for e in page.items], next_cursor=page.next_cursor)


@router.get("/events/{event_id}", response_model=EventOut)
def get_event(event_id: str, platform: PlatformDep, principal: Reader) -> EventOut:
    """One event."""
    with platform.unit_of_work(read_only=True) as uow:
        return EventOut.of(svc.get_event(uow, principal, event_id))


@router.post("/events/{event_id}/resend", status_code=202, response_model=DeliveryList)
def resend_event(
    event_id: str, platform: PlatformDep, change: Manager, body: ResendIn | None = None
) -> Response:
    """Deliver an event again (same id and body) to one endpoint or to those that had it."""
    endpoint_id = body.endpoint_id if body is not None else None

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        views = svc.resend_event(uow, change.principal, event_id, endpoint_id=endpoint_id)
        out = DeliveryList(data=[DeliveryOut.of(v) for v in views])
        return 202, out.model_dump(mode="json")

    return run_mutation(platform, change, operation)


class ResendFailedIn(_In):
    endpoint_id: str | None = Field(default=None, max_length=64)
    resource_type: str | None = Field(default=None, max_length=64)
    resource_id: str | None = Field(default=None, max_length=255)


@router.post("/resend-failed", status_code=202, response_model=DeliveryList)
def resend_failed(
    platform: PlatformDep, change: Manager, body: ResendFailedIn | None = None
) -> Response:
    """Resend every failed delivery (of one endpoint or resource, if given) not delivered
    since; at most 1000 per call."""
    wanted = body or ResendFailedIn()

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        views = svc.resend_failed(
            uow,
            change.principal,
            endpoint_id=wanted.endpoint_id,
            resource_type=wanted.resource_type,
            resource_id=wanted.resource_id,
        )
        return 202, DeliveryList(data=[DeliveryOut.of(v) for v in views]).model_dump(mode="json")

    return run_mutation(platform, change, operation)


# Deliveries and the delivery log.


@router.get("/deliveries", response_model=DeliveryPage)
def list_deliveries(
    platform: PlatformDep,
    principal: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
    endpoint_id: Id = None,
    event_id: Id = None,
    status: DeliveryStatusName | None = None,
) -> DeliveryPage:
    """Deliveries (one per event and endpoint, plus one per resend), oldest first."""
    with platform.unit_of_work(read_only=True) as uow:
        page = svc.list_deliveries(
            uow,
            principal,
            limit=limit,
            cursor=cursor,
            endpoint_id=endpoint_id,
            event_id=event_id,
            status=DeliveryStatus(status) if status is not None else None,
        )
    return DeliveryPage(data=[DeliveryOut.of(d) for d in page.items], next_cursor=page.next_cursor)


@router.get("/attempts", response_model=AttemptPage)
def list_attempts(
    platform: PlatformDep,
    principal: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
    endpoint_id: Id = None,
    event_id: Id = None,
    delivery_id: Id = None,
) -> AttemptPage:
    """The delivery log: every HTTP attempt with its time, status code, latency and error."""
    with platform.unit_of_work(read_only=True) as uow:
        page = svc.list_attempts(
            uow,
            principal,
            limit=limit,
            cursor=cursor,
            endpoint_id=endpoint_id,
            event_id=event_id,
            delivery_id=delivery_id,
        )
    return AttemptPage(data=[AttemptOut.of(a) for a in page.items], next_cursor=page.next_cursor)
