"""Webhooks in the SDK: the client methods, typed models, and :func:`verify_webhook`.

A receiver checks a delivery with :func:`verify_webhook` against the server's key set
(``GET /v1/webhooks/jwks``, fetched with :meth:`AsyncWebhooksMixin.get_webhook_jwks` or
any HTTP client, and cached): the ``X-Shardvault-Signature`` header is
``t=<unix seconds>,v1=<base64 Ed25519 signature>`` over ``<t>.<raw body>``, made by the key
whose ``kid`` is in ``X-Shardvault-Key-Id``. Verify the raw bytes as received, before
parsing; deduplicate on the event ``id`` (delivery is at least once); order by
``sequence`` within a resource.
"""

import base64
import binascii
import json
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from pydantic import BaseModel, ConfigDict, ValidationError

from shardvault.sdk.errors import SdkError

SIGNATURE_HEADER = "X-Shardvault-Signature"
KEY_ID_HEADER = "X-Shardvault-Key-Id"
EVENT_ID_HEADER = "X-Shardvault-Event-Id"
DEFAULT_TOLERANCE_S = 300
"""How far a delivery's timestamp may be from the receiver's clock (either way)."""

R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)


class WebhookVerificationError(SdkError):
    """A delivery's signature, key id, timestamp or body does not check out."""


# Models.


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WebhookEndpoint(_Model):
    id: str
    workspace_id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime


class WebhookEvent(_Model):
    id: str
    type: str
    resource_type: str
    resource_id: str
    sequence: int
    created_at: datetime
    data: dict[str, object]


class WebhookDelivery(_Model):
    id: str
    event_id: str
    endpoint_id: str
    status: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class WebhookAttempt(_Model):
    id: str
    delivery_id: str
    event_id: str
    endpoint_id: str
    attempt: int
    outcome: Literal["in_progress", "delivered", "failed", "abandoned"]
    started_at: datetime
    finished_at: datetime | None
    status_code: int | None
    latency_ms: int | None
    error: str | None


class WebhookTest(_Model):
    event: WebhookEvent
    delivery: WebhookDelivery


class Jwk(_Model):
    kty: str
    crv: str
    x: str
    kid: str
    use: str | None = None
    alg: str | None = None


class Jwks(_Model):
    keys: list[Jwk]


class _Page(_Model):
    next_cursor: str | None


class WebhookEndpointPage(_Page):
    data: list[WebhookEndpoint]


class WebhookEventPage(_Page):
    data: list[WebhookEvent]


class WebhookDeliveryPage(_Page):
    data: list[WebhookDelivery]


class WebhookAttemptPage(_Page):
    data: list[WebhookAttempt]


class _DeliveryList(_Model):
    data: list[WebhookDelivery]


# Verification.


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    raise WebhookVerificationError(f"the {name} header is missing")


def _verify_key(jwks: Jwks | Mapping[str, object], kid: str) -> VerifyKey:
    try:
        key_set = jwks if isinstance(jwks, Jwks) else Jwks.model_validate(jwks)
    except ValidationError:
        raise WebhookVerificationError("the key set is not a JWKS") from None
    for jwk in key_set.keys:
        if jwk.kid != kid:
            continue
        if jwk.kty != "OKP" or jwk.crv != "Ed25519":
            raise WebhookVerificationError(f"key {kid!r} is not an Ed25519 OKP key")
        try:
            raw = base64.urlsafe_b64decode(jwk.x + "=" * (-len(jwk.x) % 4))
        except (binascii.Error, ValueError):
            raise WebhookVerificationError(f"key {kid!r} has a malformed x") from None
        if len(raw) != 32:
            raise WebhookVerificationError(f"key {kid!r} is not 32 bytes")
        return VerifyKey(raw)
    raise WebhookVerificationError(f"no key with kid {kid!r} in the key set")


def _parse_signature(value: str) -> tuple[int, list[bytes]]:
    timestamp: int | None = None
    signatures: list[bytes] = []
    for part in value.split(","):
        name, sep, item = part.strip().partition("=")
        if not sep:
            raise WebhookVerificationError(f"malformed {SIGNATURE_HEADER} header")
        if name == "t":
            if not item.isdigit() or len(item) > 12:
                raise WebhookVerificationError("the signature timestamp is not a number")
            timestamp = int(item)
        elif name == "v1":
            try:
                signatures.append(base64.b64decode(item, validate=True))
            except (binascii.Error, ValueError):
                raise WebhookVerificationError("a v1 signature is not base64") from None
    if timestamp is None or not signatures:
        raise WebhookVerificationError(f"{SIGNATURE_HEADER} needs t= and at least one v1=")
    return timestamp, signatures


def verify_webhook(
    body: bytes,
    headers: Mapping[str, str],
    jwks: Jwks | Mapping[str, object],
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> dict[str, object]:
    """Check a delivery and return its parsed event.

    ``body`` must be the raw request body, byte for byte; ``headers`` the request headers
    (any case); ``jwks`` the server's key set.

    Raises:
        WebhookVerificationError: a header is missing or malformed, the key id is unknown,
            the timestamp is outside ``tolerance_s`` of ``now``, no signature verifies, or
            the body is not the event the headers name.
    """
    timestamp, signatures = _parse_signature(_header(headers, SIGNATURE_HEADER))
    key = _verify_key(jwks, _header(headers, KEY_ID_HEADER))
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise WebhookVerificationError(
            f"the delivery's timestamp is more than {tolerance_s} s from now"
        )
    message = str(timestamp).encode("ascii") + b"." + body
    for signature in signatures:
        try:
            key.verify(message, signature)
            break
        except (BadSignatureError, ValueError):
            continue
    else:
        raise WebhookVerificationError("no signature verifies under the named key")
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise WebhookVerificationError("the body is not JSON") from None
    if not isinstance(event, dict):
        raise WebhookVerificationError("the body is not a JSON object")
    named = {k.lower(): v for k, v in headers.items()}.get(EVENT_ID_HEADER.lower())
    if named is not None and event.get("id") != named:
        raise WebhookVerificationError("the body's event id differs from the header's")
    return event


# Client methods.


def _params(**values: str | int | None) -> dict[str, str | int]:
    return {k: v for k, v in values.items() if v is not None}


class AsyncWebhooksMixin:
    """Webhook methods of :class:`~shardvault.sdk.client.AsyncShardvaultClient`."""

    if TYPE_CHECKING:

        async def request(
            self,
            method: str,
            path: str,
            *,
            params: Mapping[str, str | int] | None = None,
            json_body: Mapping[str, object] | None = None,
            idempotency_key: str | None = None,
            authenticated: bool = True,
        ) -> httpx.Response: ...

    async def _webhook_call(
        self,
        method: str,
        path: str,
        model: type[M],
        *,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, object] | None = None,
        idempotency_key: str | None = None,
    ) -> M:
        mutating = method != "GET"
        response = await self.request(
            method,
            path,
            params=params,
            json_body=body if body is not None else ({} if method == "POST" else None),
            idempotency_key=(idempotency_key or str(uuid.uuid4())) if mutating else None,
        )
        return model.model_validate(response.json())

    async def get_webhook_jwks(self) -> Jwks:
        """The server's webhook key set (no credentials needed)."""
        response = await self.request("GET", "/v1/webhooks/jwks", authenticated=False)
        return Jwks.model_validate(response.json())

    async def create_webhook_endpoint(
        self,
        *,
        url: str,
        event_types: list[str] | None = None,
        description: str = "",
        enabled: bool = True,
        idempotency_key: str | None = None,
    ) -> WebhookEndpoint:
        body: dict[str, object] = {
            "url": url,
            "event_types": event_types or ["*"],
            "description": description,
            "enabled": enabled,
        }
        return await self._webhook_call(
            "POST",
            "/v1/webhooks/endpoints",
            WebhookEndpoint,
            body=body,
            idempotency_key=idempotency_key,
        )

    async def list_webhook_endpoints(
        self, *, limit: int = 50, cursor: str | None = None
    ) -> WebhookEndpointPage:
        return await self._webhook_call(
            "GET",
            "/v1/webhooks/endpoints",
            WebhookEndpointPage,
            params=_params(limit=limit, cursor=cursor),
        )

    async def get_webhook_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        return await self._webhook_call(
            "GET", f"/v1/webhooks/endpoints/{endpoint_id}", WebhookEndpoint
        )

    async def update_webhook_endpoint(
        self,
        endpoint_id: str,
        *,
        url: str | None = None,
        event_types: list[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
        idempotency_key: str | None = None,
    ) -> WebhookEndpoint:
        changes = {
            "url": url,
            "event_types": event_types,
            "description": description,
            "enabled": enabled,
        }
        body: dict[str, object] = {k: v for k, v in changes.items() if v is not None}
        return await self._webhook_call(
            "PATCH",
            f"/v1/webhooks/endpoints/{endpoint_id}",
            WebhookEndpoint,
            body=body,
            idempotency_key=idempotency_key,
        )

    async def delete_webhook_endpoint(
        self, endpoint_id: str, *, idempotency_key: str | None = None
    ) -> WebhookEndpoint:
        return await self._webhook_call(
            "DELETE",
            f"/v1/webhooks/endpoints/{endpoint_id}",
            WebhookEndpoint,
            idempotency_key=idempotency_key,
        )

    async def send_webhook_test(
        self, endpoint_id: str, *, idempotency_key: str | None = None
    ) -> WebhookTest:
        return await self._webhook_call(
            "POST",
            f"/v1/webhooks/endpoints/{endpoint_id}/test",
            WebhookTest,
            idempotency_key=idempotency_key,
        )

    async def list_webhook_events(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
    ) -> WebhookEventPage:
        params = _params(
            limit=limit, cursor=cursor, resource_type=resource_type, resource_id=resource_id
        )
        return await self._webhook_call(
            "GET", "/v1/webhooks/events", WebhookEventPage, params=params
        )

    async def get_webhook_event(self, event_id: str) -> WebhookEvent:
        return await self._webhook_call("GET", f"/v1/webhooks/events/{event_id}", WebhookEvent)

    async def resend_webhook_event(
        self,
        event_id: str,
        *,
        endpoint_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> list[WebhookDelivery]:
        body: dict[str, object] = {} if endpoint_id is None else {"endpoint_id": endpoint_id}
        result = await self._webhook_call(
            "POST",
            f"/v1/webhooks/events/{event_id}/resend",
            _DeliveryList,
            body=body,
            idempotency_key=idempotency_key,
        )
        return list(result.data)

    async def resend_failed_webhooks(
        self,
        *,
        endpoint_id: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> list[WebhookDelivery]:
        wanted = {
            "endpoint_id": endpoint_id,
            "resource_type": resource_type,
            "resource_id": resource_id,
        }
        result = await self._webhook_call(
            "POST",
            "/v1/webhooks/resend-failed",
            _DeliveryList,
            body={k: v for k, v in wanted.items() if v is not None},
            idempotency_key=idempotency_key,
        )
        return list(result.data)

    async def list_webhook_deliveries(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        endpoint_id: str | None = None,
        event_id: str | None = None,
        status: str | None = None,
    ) -> WebhookDeliveryPage:
        params = _params(
            limit=limit, cursor=cursor, endpoint_id=endpoint_id, event_id=event_id, status=status
        )
        return await self._webhook_call(
            "GET", "/v1/webhooks/deliveries", WebhookDeliveryPage, params=params
        )

    async def list_webhook_attempts(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        endpoint_id: str | None = None,
        event_id: str | None = None,
        delivery_id: str | None = None,
    ) -> WebhookAttemptPage:
        params = _params(
            limit=limit,
            cursor=cursor,
            endpoint_id=endpoint_id,
            event_id=event_id,
            delivery_id=delivery_id,
        )
        return await self._webhook_call(
            "GET", "/v1/webhooks/attempts", WebhookAttemptPage, params=params
        )

    async def iter_webhook_attempts(
        self, *, page_size: int = 200, **filters: str | None
    ) -> AsyncIterator[WebhookAttempt]:
        cursor: str | None = None
        while True:
            page = await self.list_webhook_attempts(limit=page_size, cursor=cursor, **filters)
            for attempt in page.data:
                yield attempt
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


class WebhooksMixin:
    """Webhook methods of :class:`~shardvault.sdk.client.ShardvaultClient` (synchronous)."""

    if TYPE_CHECKING:

        def _run(self, coroutine: Coroutine[Any, Any, R]) -> R: ...

    @property
    def _webhooks(self) -> AsyncWebhooksMixin:
        # The synchronous client wraps an async one in ``_client``.
        client = getattr(self, "_client")  # noqa: B009
        assert isinstance(client, AsyncWebhooksMixin)
        return client

    def get_webhook_jwks(self) -> Jwks:
        return self._run(self._webhooks.get_webhook_jwks())

    def create_webhook_endpoint(
        self,
        *,
        url: str,
        event_types: list[str] | None = None,
        description: str = "",
        enabled: bool = True,
        idempotency_key: str | None = None,
    ) -> WebhookEndpoint:
        return self._run(
            self._webhooks.create_webhook_endpoint(
                url=url,
                event_types=event_types,
                description=description,
                enabled=enabled,
                idempotency_key=idempotency_key,
            )
        )

    def list_webhook_endpoints(
        self, *, limit: int = 50, cursor: str | None = None
    ) -> WebhookEndpointPage:
        return self._run(self._webhooks.list_webhook_endpoints(limit=limit, cursor=cursor))

    def get_webhook_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        return self._run(self._webhooks.get_webhook_endpoint(endpoint_id))

    def update_webhook_endpoint(
        self,
        endpoint_id: str,
        *,
        url: str | None = None,
        event_types: list[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
        idempotency_key: str | None = None,
    ) -> WebhookEndpoint:
        return self._run(
            self._webhooks.update_webhook_endpoint(
                endpoint_id,
                url=url,
                event_types=event_types,
                description=description,
                enabled=enabled,
                idempotency_key=idempotency_key,
            )
        )

    def delete_webhook_endpoint(
        self, endpoint_id: str, *, idempotency_key: str | None = None
    ) -> WebhookEndpoint:
        return self._run(
            self._webhooks.delete_webhook_endpoint(endpoint_id, idempotency_key=idempotency_key)
        )

    def send_webhook_test(
        self, endpoint_id: str, *, idempotency_key: str | None = None
    ) -> WebhookTest:
        return self._run(
            self._webhooks.send_webhook_test(endpoint_id, idempotency_key=idempotency_key)
        )

    def list_webhook_events(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
    ) -> WebhookEventPage:
        return self._run(
            self._webhooks.list_webhook_events(
                limit=limit, cursor=cursor, resource_type=resource_type, resource_id=resource_id
            )
        )

    def get_webhook_event(self, event_id: str) -> WebhookEvent:
        return self._run(self._webhooks.get_webhook_event(event_id))

    def resend_webhook_event(
        self,
        event_id: str,
        *,
        endpoint_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> list[WebhookDelivery]:
        return self._run(
            self._webhooks.resend_webhook_event(
                event_id, endpoint_id=endpoint_id, idempotency_key=idempotency_key
            )
        )

    def resend_failed_webhooks(
        self,
        *,
        endpoint_id: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> list[WebhookDelivery]:
        return self._run(
            self._webhooks.resend_failed_webhooks(
                endpoint_id=endpoint_id,
                resource_type=resource_type,
                resource_id=resource_id,
                idempotency_key=idempotency_key,
            )
        )

    def list_webhook_deliveries(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        endpoint_id: str | None = None,
        event_id: str | None = None,
        status: str | None = None,
    ) -> WebhookDeliveryPage:
        return self._run(
            self._webhooks.list_webhook_deliveries(
                limit=limit,
                cursor=cursor,
                endpoint_id=endpoint_id,
                event_id=event_id,
                status=status,
            )
        )

    def list_webhook_attempts(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        endpoint_id: str | None = None,
        event_id: str | None = None,
        delivery_id: str | None = None,
    ) -> WebhookAttemptPage:
        return self._run(
            self._webhooks.list_webhook_attempts(
                limit=limit,
                cursor=cursor,
                endpoint_id=endpoint_id,
                event_id=event_id,
                delivery_id=delivery_id,
            )
        )

    def iter_webhook_attempts(
        self, *, page_size: int = 200, **filters: str | None
    ) -> Iterator[WebhookAttempt]:
        cursor: str | None = None
        while True:
            page = self.list_webhook_attempts(limit=page_size, cursor=cursor, **filters)
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor
