"""The FastAPI application factory: everything under ``/v1``, one exception mapper."""

from fastapi import APIRouter, FastAPI

from shardvault import __version__
from shardvault.api.problems import install_problem_handlers
from shardvault.api.routes import audit, health, workspaces
from shardvault.api.schemas import Problem
from shardvault.service.auth import Authenticator
from shardvault.service.platform import Platform

API_PREFIX = "/v1"

_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}}, "description": text}
    for status, text in (
        (400, "Invalid request"),
        (401, "Missing, invalid, expired or replayed credentials"),
        (403, "The API key's role does not allow this"),
        (404, "Not found in this workspace"),
        (409, "Conflict (including an idempotency key reused with another body)"),
    )
}


def create_app(platform: Platform) -> FastAPI:
    """Build the API around ``platform`` (its database must already be migrated)."""
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
    install_problem_handlers(app, platform)
    v1 = APIRouter(prefix=API_PREFIX)
    v1.include_router(health.router)
    v1.include_router(workspaces.router, responses=_ERRORS)
    v1.include_router(audit.router, responses=_ERRORS)
    app.include_router(v1)
    return app
