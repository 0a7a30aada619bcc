"""The relay protocol over HTTP: a FastAPI router around a :class:`RelayCore`.

Mount it in another app with ``app.include_router(relay_router(core))``, or run the
standalone app from :func:`create_relay_app`. Routes (see :mod:`.link` for the bodies):

* ``POST /v1/relay/{cosigner_id}/poll``
* ``POST /v1/relay/{cosigner_id}/send``

:func:`relay_hub_router` serves one relay per workspace under
``/cosigners/{workspace_id}`` (the embedded co-signers of ``shardvault server``).

Both are authenticated by the co-signer's identity signature over the raw body; a
refused signature is a 401 with a problem+json body that names no secret. Bodies are
bounded by the application the routes are mounted in, before they are read
(:mod:`shardvault.body_limit`): :data:`MAX_BODY_BYTES` in :func:`create_relay_app`, and
the same under :data:`HUB_PATH_PREFIX` in the API server's application.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Scope

from shardvault.body_limit import BodyLimitMiddleware, BodyLimits
from shardvault.cosigner.errors import RelayAuthError
from shardvault.cosigner.relay_core import MAX_STATUS_BYTES, RelayCore

MAX_BODY_BYTES = 16 * 1024 * 1024
"""The largest request body the relay reads (the applications that mount its routes
enforce it, see the module docstring)."""

MAX_WAITING_POLLS = 1024
"""Co-signer polls that may wait at once, each in a thread of their own pool: a long poll
must not hold one of the threads the API's requests run in (with every workspace's
co-signers polling, they would take them all)."""


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


def _add_routes(
    router: APIRouter, prefix: str, resolve: Callable[[dict[str, str]], RelayCore | None]
) -> None:
    """The poll and send routes under ``prefix``; ``resolve`` finds the relay of a
    request from its path parameters (``None``: no such relay, a 404)."""
    polls = CapacityLimiter(MAX_WAITING_POLLS)

    async def _authenticated(
        request: Request, core: RelayCore, cosigner_id: int
    ) -> bytes | JSONResponse:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            core.authenticate(cosigner_id, "POST", request.url.path, body, headers)
        except RelayAuthError as exc:
            return _problem(401, "Unauthorized", str(exc))
        return body

    def _core(request: Request) -> RelayCore | JSONResponse:
        core = resolve(dict(request.path_params))
        if core is None:
            return _problem(404, "Not Found", "no relay serves this path")
        return core

    @router.post(prefix + "/v1/relay/{cosigner_id}/poll")
    async def poll(cosigner_id: int, request: Request) -> JSONResponse:
        core = _core(request)
        if isinstance(core, JSONResponse):
            return core
        body = await _authenticated(request, core, cosigner_id)
        if isinstance(body, JSONResponse):
            return body
        try:
            document = json.loads(body)
            wait = float(document.get("wait", 0.0))
            status = document.get("status")
            if status is not None and (
                not isinstance(status, dict) or len(json.dumps(status)) > MAX_STATUS_BYTES
            ):
                raise TypeError("status must be a small object")
        except (ValueError, TypeError, AttributeError):
            return _problem(
                400, "Bad Request", "poll body must be {'wait': seconds, 'status'?: {...}}"
            )
        items = await anyio.to_thread.run_sync(core.poll, cosigner_id, wait, status, limiter=polls)
        return JSONResponse({"items": items})

    @router.post(prefix + "/v1/relay/{cosigner_id}/send")
    async def send(cosigner_id: int, request: Request) -> JSONResponse:
        core = _core(request)
        if isinstance(core, JSONResponse):
            return core
        body = await _authenticated(request, core, cosigner_id)
        if isinstance(body, JSONResponse):
            return body
        try:
            document = json.loads(body)
            envelopes = [base64.b64decode(e, validate=True) for e in document["envelopes"]]
            results = document.get("results", [])
            events = document.get("events", [])
            if not all(isinstance(r, dict) for r in results + events):
                raise TypeError("results and events must be objects")
        except (ValueError, TypeError, KeyError, AttributeError, binascii.Error):
            return _problem(400, "Bad Request", "send body must hold envelopes, results, events")
        routed = core.send(cosigner_id, envelopes, results, events)
        return JSONResponse({"routed": routed})


def relay_router(core: RelayCore) -> APIRouter:
    """The two relay routes, bound to ``core``."""
    router = APIRouter()
    _add_routes(router, "", lambda _params: core)
    return router


WORKSPACE_PREFIX = "/cosigners/{workspace_id}"
"""Where :func:`relay_hub_router` serves each workspace's relay: a co-signer of
workspace ``W`` uses ``{server}/cosigners/W`` as its coordinator URL."""

HUB_PATH_PREFIX = "/cosigners/"
"""The path prefix of every route of :func:`relay_hub_router`, for body limits."""


def relay_hub_router(lookup: Callable[[str], RelayCore | None]) -> APIRouter:
    """The relay routes of many workspaces, each with its own co-signers and relay:
    ``/cosigners/{workspace_id}/v1/relay/{cosigner_id}/poll`` and ``.../send``.
    ``lookup(workspace_id)`` answers the workspace's relay, or ``None`` (a 404)."""
    router = APIRouter()

    def resolve(params: dict[str, str]) -> RelayCore | None:
        workspace = params.get("workspace_id", "")
        if not 1 <= len(workspace) <= 64:
            return None
        return lookup(workspace)

    _add_routes(router, WORKSPACE_PREFIX, resolve)
    return router


async def _refuse_large_body(_scope: Scope, limit: int) -> ASGIApp:
    return _problem(413, "Payload Too Large", f"relay request body is over {limit} bytes")


def create_relay_app(core: RelayCore) -> FastAPI:
    """A standalone relay application (tests, or a relay on its own host); bodies over
    :data:`MAX_BODY_BYTES` are refused before they are read."""
    app = FastAPI(title="shardvault relay", docs_url=None, redoc_url=None)
    app.include_router(relay_router(core))
    app.add_middleware(
        BodyLimitMiddleware, limits=BodyLimits(MAX_BODY_BYTES), refuse=_refuse_large_body
    )
    return app
