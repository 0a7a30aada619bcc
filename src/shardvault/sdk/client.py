"""The Python client of the REST API: async first, with a synchronous wrapper.

Every request is signed (:meth:`ApiKeyCredentials.sign_request`) over its method and the
exact path, query and body bytes sent. Mutating calls always carry an ``Idempotency-Key``
(a fresh UUID unless the caller passes one), so the client can retry them safely:
connection failures and 429/502/503/504 answers are retried with exponential backoff,
each attempt with a newly signed token (new nonce) and the same key and body.
"""

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel

from shardvault.sdk.addresses import AddressesMixin, AsyncAddressesMixin
from shardvault.sdk.auth import Algorithm, ApiKeyCredentials
from shardvault.sdk.cosigners import AsyncCosignersMixin, CosignersMixin
from shardvault.sdk.errors import SdkError, TransportError, error_from_response
from shardvault.sdk.models import (
    ApiKey,
    AuditEvent,
    AuditVerification,
    Health,
    Page,
    Role,
    User,
    Workspace,
)
from shardvault.sdk.policies import AsyncPoliciesMixin, PoliciesMixin
from shardvault.sdk.prices import AsyncPricesMixin, PricesMixin
from shardvault.sdk.replacements import AsyncReplacementsMixin, ReplacementsMixin
from shardvault.sdk.webhooks import AsyncWebhooksMixin, WebhooksMixin

RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Answers worth retrying: the request did not run (or ran idempotently)."""

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")


class AsyncShardvaultClient(
    AsyncWebhooksMixin,
    AsyncCosignersMixin,
    AsyncAddressesMixin,
    AsyncPricesMixin,
    AsyncReplacementsMixin,
    AsyncPoliciesMixin,
):
    """Async client. Use as ``async with AsyncShardvaultClient(...) as client:``."""

    def __init__(
        self,
        base_url: str,
        credentials: ApiKeyCredentials | None = None,
        *,
        timeout_s: float = 30.0,
        max_attempts: int = 4,
        backoff_s: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._credentials = credentials
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _pause(self, attempt: int) -> None:
        # Exponential backoff with up to 50% jitter, so retrying clients spread out.
        base = self._backoff_s * (2**attempt)
        await asyncio.sleep(base * (1 + secrets.randbelow(500) / 1000))

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Mapping[str, object] | None = None,
        idempotency_key: str | None = None,
        authenticated: bool = True,
        timeout_s: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one signed request, retrying as described in the module docstring.
        ``timeout_s`` overrides the client's timeout for this call (key generation);
        ``headers`` are sent as given (``Prefer``, say), outside the signature.

        Raises:
            ApiError: the server answered with a problem (after retries for 429/5xx).
            TransportError: the server could not be reached after all attempts.
        """
        body = b"" if json_body is None else json.dumps(json_body, separators=(",", ":")).encode()
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        last_error: Exception | None = None
        for attempt in range(self._max_attempts):
            request = self._http.build_request(
                method,
                path,
                params=clean_params,
                content=body,
                timeout=timeout_s if timeout_s is not None else httpx.USE_CLIENT_DEFAULT,
            )
            if body:
                request.headers["Content-Type"] = "application/json"
            for name, value in (headers or {}).items():
                request.headers[name] = value
            if idempotency_key is not None:
                request.headers["Idempotency-Key"] = idempotency_key
            if authenticated:
                if self._credentials is None:
                    raise SdkError("this call needs API key credentials")
                uri = request.url.raw_path.decode("ascii")
                request.headers["X-API-Key"] = self._credentials.api_key_id
                token = self._credentials.sign_request(request.method, uri, body)
                request.headers["Authorization"] = f"Bearer {token}"
            final = attempt == self._max_attempts - 1
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                last_error = exc
                if final:
                    break
                await self._pause(attempt)
                continue
            if response.status_code in RETRY_STATUSES and not final:
                await self._pause(attempt)
                continue
            if response.status_code >= 400:
                raise error_from_response(response)
            return response
        raise TransportError(f"{method} {path}: {last_error}") from last_error

    async def _get(self, path: str, model: type[M], **params: str | int | None) -> M:
        response = await self.request(
            "GET", path, params={k: v for k, v in params.items() if v is not None}
        )
        return model.model_validate(response.json())

    async def _mutate(
        self,
        path: str,
        model: type[M],
        body: Mapping[str, object] | None,
        idempotency_key: str | None,
    ) -> M:
        response = await self.request(
            "POST", path, json_body=body or {}, idempotency_key=idempotency_key or str(uuid.uuid4())
        )
        return model.model_validate(response.json())

    async def health(self) -> Health:
        """Readiness of the server (no credentials needed); raises ApiError if not ready."""
        response = await self.request("GET", "/v1/health", authenticated=False)
        return Health.model_validate(response.json())

    async def get_workspace(self) -> Workspace:
        return await self._get("/v1/workspace", Workspace)

    async def create_user(
        self, *, name: str, email: str, role: Role, idempotency_key: str | None = None
    ) -> User:
        body = {"name": name, "email": email, "role": role}
        return await self._mutate("/v1/users", User, body, idempotency_key)

    async def get_user(self, user_id: str) -> User:
        return await self._get(f"/v1/users/{user_id}", User)

    async def list_users(self, *, limit: int = 50, cursor: str | None = None) -> Page[User]:
        return await self._get("/v1/users", Page[User], limit=limit, cursor=cursor)

    async def iter_users(self, *, page_size: int = 100) -> AsyncIterator[User]:
        cursor: str | None = None
        while True:
            page = await self.list_users(limit=page_size, cursor=cursor)
            for user in page.data:
                yield user
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def disable_user(self, user_id: str, *, idempotency_key: str | None = None) -> User:
        return await self._mutate(f"/v1/users/{user_id}/disable", User, None, idempotency_key)

    async def create_api_key(
        self,
        *,
        user_id: str,
        name: str,
        public_key_pem: str,
        algorithm: Algorithm = "EdDSA",
        role: Role | None = None,
        idempotency_key: str | None = None,
    ) -> ApiKey:
        body: dict[str, object] = {
            "user_id": user_id,
            "name": name,
            "algorithm": algorithm,
            "public_key_pem": public_key_pem,
        }
        if role is not None:
            body["role"] = role
        return await self._mutate("/v1/api-keys", ApiKey, body, idempotency_key)

    async def list_api_keys(self, *, limit: int = 50, cursor: str | None = None) -> Page[ApiKey]:
        return await self._get("/v1/api-keys", Page[ApiKey], limit=limit, cursor=cursor)

    async def revoke_api_key(self, key_id: str, *, idempotency_key: str | None = None) -> ApiKey:
        return await self._mutate(f"/v1/api-keys/{key_id}/revoke", ApiKey, None, idempotency_key)

    async def list_audit_events(
        self, *, limit: int = 100, cursor: str | None = None
    ) -> Page[AuditEvent]:
        return await self._get("/v1/audit/events", Page[AuditEvent], limit=limit, cursor=cursor)

    async def iter_audit_events(self, *, page_size: int = 200) -> AsyncIterator[AuditEvent]:
        cursor: str | None = None
        while True:
            page = await self.list_audit_events(limit=page_size, cursor=cursor)
            for event in page.data:
                yield event
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def verify_audit(self) -> AuditVerification:
        """Ask the server to verify this workspace's audit chain."""
        return await self._get("/v1/audit/verify", AuditVerification)


class ShardvaultClient(
    WebhooksMixin, CosignersMixin, AddressesMixin, PricesMixin, ReplacementsMixin, PoliciesMixin
):
    """Synchronous wrapper: each method runs the async client's on a private event loop.

    Not for use from inside a running event loop (use :class:`AsyncShardvaultClient`
    there) nor from several threads at once.
    """

    def __init__(
        self,
        base_url: str,
        credentials: ApiKeyCredentials | None = None,
        **options: Any,
    ) -> None:
        self._runner = asyncio.Runner()
        self._client = AsyncShardvaultClient(base_url, credentials, **options)

    def _run(self, coroutine: Coroutine[Any, Any, R]) -> R:
        return self._runner.run(coroutine)

    def close(self) -> None:
        try:
            self._run(self._client.aclose())
        finally:
            self._runner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Mapping[str, object] | None = None,
        idempotency_key: str | None = None,
        authenticated: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one signed request (see :meth:`AsyncShardvaultClient.request`)."""
        return self._run(
            self._client.request(
                method,
                path,
                params=params,
                json_body=json_body,
                idempotency_key=idempotency_key,
                authenticated=authenticated,
                headers=headers,
            )
        )

    def health(self) -> Health:
        return self._run(self._client.health())

    def get_workspace(self) -> Workspace:
        return self._run(self._client.get_workspace())

    def create_user(
        self, *, name: str, email: str, role: Role, idempotency_key: str | None = None
    ) -> User:
        return self._run(
            self._client.create_user(
                name=name, email=email, role=role, idempotency_key=idempotency_key
            )
        )

    def get_user(self, user_id: str) -> User:
        return self._run(self._client.get_user(user_id))

    def list_users(self, *, limit: int = 50, cursor: str | None = None) -> Page[User]:
        return self._run(self._client.list_users(limit=limit, cursor=cursor))

    def disable_user(self, user_id: str, *, idempotency_key: str | None = None) -> User:
        return self._run(self._client.disable_user(user_id, idempotency_key=idempotency_key))

    def create_api_key(
        self,
        *,
        user_id: str,
        name: str,
        public_key_pem: str,
        algorithm: Algorithm = "EdDSA",
        role: Role | None = None,
        idempotency_key: str | None = None,
    ) -> ApiKey:
        return self._run(
            self._client.create_api_key(
                user_id=user_id,
                name=name,
                public_key_pem=public_key_pem,
                algorithm=algorithm,
                role=role,
                idempotency_key=idempotency_key,
            )
        )

    def list_api_keys(self, *, limit: int = 50, cursor: str | None = None) -> Page[ApiKey]:
        return self._run(self._client.list_api_keys(limit=limit, cursor=cursor))

    def revoke_api_key(self, key_id: str, *, idempotency_key: str | None = None) -> ApiKey:
        return self._run(self._client.revoke_api_key(key_id, idempotency_key=idempotency_key))

    def list_audit_events(self, *, limit: int = 100, cursor: str | None = None) -> Page[AuditEvent]:
        return self._run(self._client.list_audit_events(limit=limit, cursor=cursor))

    def iter_audit_events(self, *, page_size: int = 200) -> Iterator[AuditEvent]:
        cursor: str | None = None
        while True:
            page = self.list_audit_events(limit=page_size, cursor=cursor)
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def verify_audit(self) -> AuditVerification:
        return self._run(self._client.verify_audit())
