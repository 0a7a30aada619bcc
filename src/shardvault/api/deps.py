"""Dependencies every route uses: authentication, RBAC and the idempotency envelope.

``authorized(permission)`` authenticates the request (API key + signed JWT, see
:mod:`shardvault.service.auth`), remembers the principal on ``request.state`` (so a later
refusal is attributed to it) and checks the permission. ``mutation(permission)`` does the
same checks, adds the ``Idempotency-Key`` header and the request fingerprint, and leaves
the token's nonce to be recorded in the change's own write transaction: routes that
change state pass an operation to :func:`run_mutation`, which records the nonce and runs
the operation at most once per key. A request that ends any other way (refused, failed,
or a route that did not call :func:`run_mutation`) has its nonce recorded on its own: by
the error handlers before a refusal is answered, and in any case by this dependency's
clean-up. So no verified token can be used twice.
"""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Header, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from shardvault.service.auth import Authenticator, PendingNonce, SignedRequest
from shardvault.service.context import Principal
from shardvault.service.idempotency import Operation, request_fingerprint, run_idempotently
from shardvault.service.platform import Platform
from shardvault.service.rbac import Permission, require

_log = logging.getLogger("shardvault.api")


def get_platform(request: Request) -> Platform:
    platform = request.app.state.platform
    assert isinstance(platform, Platform)
    return platform


def request_uri(request: Request) -> str:
    """The path and query exactly as the client sent them (what the ``uri`` claim signs)."""
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else request.url.path
    query = request.scope.get("query_string", b"")
    return path + ("?" + query.decode("latin-1") if query else "")


def _authenticator(request: Request) -> Authenticator:
    authenticator = request.app.state.authenticator
    assert isinstance(authenticator, Authenticator)
    return authenticator


async def _signed(request: Request) -> SignedRequest:
    return SignedRequest(
        api_key_id=request.headers.get("x-api-key"),
        authorization=request.headers.get("authorization"),
        method=request.method,
        uri=request_uri(request),
        # The body is within its limit: the application's BodyLimitMiddleware refused
        # any larger one before routing (shardvault.body_limit).
        body=await request.body(),
    )


def authorized(permission: Permission) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that authenticates the request and requires ``permission``."""

    async def dependency(request: Request) -> Principal:
        signed = await _signed(request)
        principal = await run_in_threadpool(_authenticator(request).authenticate, signed)
        request.state.principal = principal
        require(principal, permission)
        return principal

    dependency.__name__ = f"authorized_{permission.name.lower()}"
    return dependency


@dataclass(frozen=True, slots=True)
class Mutation:
    """An authorized state-changing request and its idempotency envelope."""

    principal: Principal
    idempotency_key: str | None
    method: str
    path: str
    fingerprint: str
    nonce: PendingNonce
    """The token's nonce, recorded by :func:`run_mutation` with the change."""
    signed: SignedRequest
    """The request as its caller signed it (token and raw body), for a change that
    keeps it (a transfer's creation, forwarded to the co-signers)."""


def mutation(permission: Permission) -> Callable[..., AsyncIterator[Mutation]]:
    """A dependency for state-changing routes: authorization plus ``Idempotency-Key``."""

    async def dependency(
        request: Request,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                description="Required. The same key and body return the first result; "
                "the same key with another body is refused with 409.",
            ),
        ] = None,
    ) -> AsyncIterator[Mutation]:
        signed = await _signed(request)
        authenticator = _authenticator(request)
        verified = await run_in_threadpool(authenticator.verify, signed)
        principal = verified.principal
        request.state.principal = principal
        nonce = PendingNonce(authenticator, verified)
        # The error handlers record it too, before the refusal is answered (this
        # dependency's clean-up may run after the response has been sent).
        request.state.pending_nonce = nonce
        try:
            require(principal, permission)
            path = request.url.path
            yield Mutation(
                principal=principal,
                idempotency_key=idempotency_key,
                method=request.method,
                path=path,
                fingerprint=request_fingerprint(request.method, path, signed.body),
                nonce=nonce,
                signed=signed,
            )
        finally:
            if not nonce.recorded:
                try:
                    await run_in_threadpool(nonce.consume_alone)
                except Exception:  # the request's own outcome is what the client gets
                    _log.exception("could not record a request's nonce")

    dependency.__name__ = f"mutation_{permission.name.lower()}"
    return dependency


def run_mutation(platform: Platform, change: Mutation, operation: Operation) -> Response:
    """Record ``change``'s nonce and run ``operation`` once for its idempotency key, in
    one write transaction, and return the response.

    Raises:
        ReplayedRequest: the token was used before (nothing else happens).
        The errors of :func:`run_idempotently`.
    """
    with platform.unit_of_work() as uow:
        change.nonce.consume_in(uow)
        stored = run_idempotently(
            uow,
            workspace_id=change.principal.workspace_id,
            key=change.idempotency_key or "",
            method=change.method,
            path=change.path,
            fingerprint=change.fingerprint,
            operation=operation,
        )
    return Response(
        content=stored.body,
        status_code=stored.status,
        media_type="application/json",
        headers={"Idempotent-Replayed": "true" if stored.replayed else "false"},
    )


def already_answered(platform: Platform, change: Mutation) -> bool:
    """Whether ``change``'s Idempotency-Key already has a stored answer (a retry): a
    route that does slow work before its change is written skips that work then, and
    :func:`run_mutation` answers what was stored."""
    with platform.unit_of_work(read_only=True) as uow:
        workspace = uow.idempotency(change.principal.workspace_id)
        return workspace.get(change.idempotency_key or "") is not None
