"""The FastAPI application factory: everything under ``/v1``, one exception mapper, and
request bodies bounded before anything reads them (:mod:`shardvault.body_limit`)."""

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI

from shardvault import __version__
from shardvault.api.problems import body_refusal, install_problem_handlers
from shardvault.api.routes import (
    addressbook,
    approvals,
    audit,
    cosigners,
    health,
    policies,
    prices,
    transactions,
    vaults,
    wallets,
    workspaces,
)
from shardvault.api.routes import webhooks as webhook_routes
from shardvault.api.schemas import Problem
from shardvault.body_limit import BodyLimitMiddleware, BodyLimits
from shardvault.cosigner import relay_app
from shardvault.service.auth import Authenticator
from shardvault.service.cosigners import StatusLookup
from shardvault.service.destinations import DestinationPolicy
from shardvault.service.keygen_progress import KeygenBoard
from shardvault.service.pipeline import PipelineRuntime
from shardvault.service.platform import Platform
from shardvault.service.signer_mode import SignerMode
from shardvault.service.vault_creations import VaultCreationRunner
from shardvault.service.webhook_delivery import WebhookRuntime

API_PREFIX = "/v1"

MAX_BODY_BYTES = 1 << 20
"""The largest request body the API accepts (1 MiB); nothing in it needs more. The
co-signers' relay routes, mounted beside it, accept ``relay_app.MAX_BODY_BYTES``."""

_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}}, "description": text}
    for status, text in (
        (400, "Invalid request"),
        (401, "Missing, invalid, expired or replayed credentials"),
        (403, "The API key's role does not allow this"),
        (404, "Not found in this workspace"),
        (409, "Conflict (including an idempotency key reused with another body)"),
        (413, "The request body is over 1 MiB (refused before it is read)"),
    )
}


def create_app(
    platform: Platform,
    *,
    webhook_runtime: WebhookRuntime | None = None,
    pipeline_runtime: PipelineRuntime | None = None,
    signer_mode: SignerMode | None = None,
    extra_routers: Sequence[APIRouter] = (),
    cosigner_status: StatusLookup | None = None,
    rpc_policy: DestinationPolicy | None = None,
) -> FastAPI:
    """Build the API around ``platform`` (its database must already be migrated).

    ``webhook_runtime`` carries the webhook signing key (served at ``/v1/webhooks/jwks``)
    and the destination policy endpoint URLs are checked against. ``pipeline_runtime``
    (signing backend, chain access) is needed by vault creation; without it that route
    answers 503. ``signer_mode`` says what that backend is, for ``/v1/health`` (a
    one-host development mode is reported as one). ``cosigner_status`` answers each
    co-signer's live status per workspace (``GET /v1/cosigners``). ``rpc_policy`` says
    where a network's ``rpc_url`` may point (the SSRF guard; default: the pipeline
    runtime's, else public nodes and this host). ``extra_routers`` are mounted outside
    ``/v1`` and outside the OpenAPI document: the co-signers' relay routes, which carry
    their own signatures instead of API keys (docs/cosigner.md); bodies under their prefix
    may be as large as the relay's limit, every other body is at most
    :data:`MAX_BODY_BYTES`.
    """
    app = FastAPI(
        title="shardvault",
        version=__version__,
        summary="Self-hosted digital-asset custody: workspaces, keys, audit.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.platform = platform
    app.state.authenticator = Authenticator(platform)
    app.state.webhooks = webhook_runtime or WebhookRuntime()
    app.state.pipeline_runtime = pipeline_runtime
    app.state.signer_mode = signer_mode
    if rpc_policy is None:
        rpc_policy = (
            pipeline_runtime.rpc_policy
            if pipeline_runtime is not None
            else DestinationPolicy.for_rpc_nodes()
        )
    app.state.rpc_policy = rpc_policy
    app.state.keygen_board = board = KeygenBoard()
    app.state.vault_creations = (
        VaultCreationRunner(platform, pipeline_runtime.backend, board)
        if pipeline_runtime is not None
        else None
    )
    app.state.cosigner_status = cosigner_status
    install_problem_handlers(app, platform)
    v1 = APIRouter(prefix=API_PREFIX)
    v1.include_router(health.router)
    v1.include_router(workspaces.router, responses=_ERRORS)
    v1.include_router(audit.router, responses=_ERRORS)
    v1.include_router(webhook_routes.router, responses=_ERRORS)
    for custody_routes in (
        vaults,
        wallets,
        transactions,
        approvals,
        policies,
        prices,
        addressbook,
        cosigners,
    ):
        v1.include_router(custody_routes.router, responses=_ERRORS)
    app.include_router(v1)
    for extra in extra_routers:
        app.include_router(extra, include_in_schema=False)
    relay_limits = (relay_app.HUB_PATH_PREFIX, relay_app.MAX_BODY_BYTES)
    app.add_middleware(
        BodyLimitMiddleware,
        limits=BodyLimits(MAX_BODY_BYTES, (relay_limits,) if extra_routers else ()),
        refuse=body_refusal(platform),
    )
    _document_security(app)
    return app


def _document_security(app: FastAPI) -> None:
    """Describe the request-signing scheme in the OpenAPI document (the checking itself is
    the ``authorized`` dependency on each route)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        schema.setdefault("components", {})["securitySchemes"] = {
            "ApiKey": {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-Key",
                "description": "The id of the API key that signed the request.",
            },
            "SignedRequest": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "A JWT signed by the API key's private key (EdDSA or ES256) "
                "with claims method (the request's HTTP method), uri (path and query), nonce, "
                "iat, exp (at most 30 s after iat), sub (the key id) and bodyHash (hex SHA-256 "
                "of the raw body), all required. A token is accepted for that method, uri and "
                "body only, and each nonce once.",
            },
        }
        schema["security"] = [{"ApiKey": [], "SignedRequest": []}]
        for path, method in (("/health", "get"), ("/cosigners/pair", "post")):
            # Readiness, and pairing (a one-time token and the co-signer's own signature).
            operation = schema["paths"].get(f"{API_PREFIX}{path}", {}).get(method)
            if operation is not None:
                operation["security"] = []
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
