"""``GET /v1/health``: readiness, unauthenticated (for load balancers)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from shardvault import __version__
from shardvault.api.deps import get_platform
from shardvault.api.schemas import HealthOut, SignerOut
from shardvault.observability import check_readiness
from shardvault.service.platform import Platform

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "Not ready"}},
)
async def health(
    request: Request, platform: Annotated[Platform, Depends(get_platform)]
) -> JSONResponse:
    """Whether the server can serve: database reachable and schema at this code's head.

    ``signer`` says how it signs; a one-host development mode is marked
    ``single_host`` and ``development_only``, with its warning.
    """
    mode = request.app.state.signer_mode
    readiness = await run_in_threadpool(check_readiness, platform.database.engine)
    body = HealthOut(
        status="ok" if readiness.ready else "unavailable",
        database=readiness.database,
        schema_revision=readiness.schema_revision,
        expected_revision=readiness.expected_revision,
        version=__version__,
        signer=SignerOut.of(mode) if mode is not None else None,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if readiness.ready else 503)
