"""The one place where errors become HTTP responses: RFC 9457 problem details.

Routes raise domain errors (:class:`~shardvault.service.errors.ServiceError` and its
categories); this module maps each category to a status, renders
``application/problem+json`` with a ``type`` of ``urn:shardvault:problem:<slug>``, and
writes the audit event every refused request gets (in its own transaction, after the
request's own transaction rolled back, so the refusal changes nothing else). Unexpected
exceptions become a 500 whose body says nothing about the cause; the cause is logged.
"""

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Scope

from shardvault.audit import Actor
from shardvault.service.auth import PendingNonce
from shardvault.service.context import Principal
from shardvault.service.errors import (
    AuthenticationError,
    BodyTooLarge,
    Conflict,
    Forbidden,
    NotFound,
    ServiceError,
    Unavailable,
    ValidationError,
)
from shardvault.service.platform import Platform

PROBLEM_TYPE_PREFIX = "urn:shardvault:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"

_log = logging.getLogger("shardvault.api")

STATUS_OF: tuple[tuple[type[ServiceError], int], ...] = (
    (ValidationError, 400),
    (AuthenticationError, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (BodyTooLarge, 413),
    (Unavailable, 503),
)
"""Each domain error category and its HTTP status (first match wins)."""


DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
)
"""Driver errors that mean "the database cannot be reached or is locked": a 503 the
client may retry, never a 500."""


def status_of(exc: ServiceError) -> int:
    for category, status in STATUS_OF:
        if isinstance(exc, category):
            return status
    return 500


def problem_response(
    status: int,
    slug: str,
    detail: str,
    instance: str,
    errors: list[dict[str, object]] | None = None,
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, object] = {
        "type": PROBLEM_TYPE_PREFIX + slug,
        "title": slug.replace("-", " ").capitalize(),
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors is not None:
        body["errors"] = errors
    headers = {"WWW-Authenticate": 'Bearer realm="shardvault"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _refusal_auditor(
    platform: Platform,
) -> Callable[[Request, int, str, str, Exception | None], Awaitable[None]]:
    """Records a refused request in the audit log (and a refused change's nonce)."""

    async def audit_refusal(
        request: Request, status: int, slug: str, detail: str, exc: Exception | None
    ) -> None:
        pending = getattr(request.state, "pending_nonce", None)
        if isinstance(pending, PendingNonce) and not pending.recorded:
            # A refused change's token is used up like any other (see api.deps).
            try:
                await run_in_threadpool(pending.consume_alone)
            except Exception:
                _log.exception("could not record a refused request's nonce")
        principal = getattr(request.state, "principal", None)
        claimed = (request.headers.get("x-api-key") or "")[:64] or None
        workspace_id: str | None
        if isinstance(principal, Principal):
            workspace_id, actor = principal.workspace_id, principal.actor
        elif isinstance(exc, AuthenticationError):
            workspace_id, actor = exc.workspace_id, Actor.anonymous(exc.api_key_id or claimed)
        else:
            workspace_id, actor = None, Actor.anonymous(claimed)
        try:
            await run_in_threadpool(
                platform.record_refusal,
                workspace_id=workspace_id,
                actor=actor,
                method=request.method,
                path=request.url.path,
                status=status,
                problem=slug,
                detail=detail,
            )
        except Exception:
            _log.exception("could not record a refused request in the audit log")

    return audit_refusal


def _service_error_handler(
    platform: Platform,
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    audit_refusal = _refusal_auditor(platform)

    async def on_service_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        status = status_of(exc)
        detail = str(exc) or HTTPStatus(status).phrase
        await audit_refusal(request, status, exc.problem, detail, exc)
        return problem_response(status, exc.problem, detail, request.url.path)

    return on_service_error


def body_refusal(platform: Platform) -> Callable[[Scope, int], Awaitable[ASGIApp]]:
    """The answer of :class:`~shardvault.body_limit.BodyLimitMiddleware` to a body over
    its limit: :class:`BodyTooLarge` through the same handler as every domain error (a
    413 problem, audited as a refusal). The middleware runs outside the application's
    exception handling, before any route, so it asks for the response directly."""
    on_service_error = _service_error_handler(platform)

    async def refuse(scope: Scope, limit: int) -> ASGIApp:
        return await on_service_error(Request(scope), BodyTooLarge(limit))

    return refuse


def install_problem_handlers(app: FastAPI, platform: Platform) -> None:
    """Register the exception handlers on ``app``."""
    audit_refusal = _refusal_auditor(platform)
    on_service_error = _service_error_handler(platform)

    async def on_request_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors: list[dict[str, object]] = [
            {"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors) or "invalid request"
        await audit_refusal(request, 400, "invalid-request", detail, None)
        return problem_response(400, "invalid-request", detail, request.url.path, errors)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        slug = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "-")
        return problem_response(exc.status_code, slug, str(exc.detail), request.url.path)

    async def on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # The cause (host, driver message) goes to the log, not to the client.
        _log.warning(
            "database unavailable serving %s %s: %s", request.method, request.url.path, exc
        )
        return problem_response(
            503, Unavailable.problem, "the database is unavailable; retry later", request.url.path
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log.error(
            "unhandled error serving %s %s",
            request.method,
            request.url.path,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        return problem_response(500, "internal-error", "internal server error", request.url.path)

    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, on_database_unavailable)
    app.add_exception_handler(Exception, on_unexpected)
