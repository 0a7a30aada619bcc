"""Networks, assets and vaults (custody mode ``mpc``; key generation through the
configured signing backend)."""

import asyncio
import time
import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from shardvault.api.deps import (
    Mutation,
    already_answered,
    authorized,
    get_platform,
    mutation,
    run_mutation,
)
from shardvault.api.schemas_vaults import (
    AssetIn,
    AssetOut,
    NetworkIn,
    NetworkOut,
    VaultCreationOut,
    VaultIn,
    VaultOut,
    VaultPage,
)
from shardvault.service import vault_creations as creation_jobs
from shardvault.service import vaults as svc
from shardvault.service.context import Principal
from shardvault.service.destinations import DestinationPolicy
from shardvault.service.errors import Unavailable
from shardvault.service.idempotency import Operation, validate_key
from shardvault.service.keygen_progress import KeygenBoard
from shardvault.service.pagination import MAX_PAGE_SIZE
from shardvault.service.pipeline import PipelineRuntime
from shardvault.service.platform import Platform
from shardvault.service.rbac import Permission
from shardvault.service.signing import SigningError
from shardvault.service.uow import UnitOfWork
from shardvault.service.vault_creations import VaultCreationRunner

router = APIRouter()

PlatformDep = Annotated[Platform, Depends(get_platform)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(max_length=200)]


def get_runtime(request: Request) -> PipelineRuntime:
    """The signing backend and chain access of this server.

    Raises:
        Unavailable: the server was started without a signing backend.
    """
    runtime = getattr(request.app.state, "pipeline_runtime", None)
    if not isinstance(runtime, PipelineRuntime):
        raise Unavailable("this server has no signing backend configured")
    return runtime


RuntimeDep = Annotated[PipelineRuntime, Depends(get_runtime)]


def get_keygen_board(request: Request) -> KeygenBoard:
    """The progress of this server's running vault key generations."""
    board = request.app.state.keygen_board
    assert isinstance(board, KeygenBoard)
    return board


BoardDep = Annotated[KeygenBoard, Depends(get_keygen_board)]


def get_rpc_policy(request: Request) -> DestinationPolicy:
    """Where a network's node may be (the server's SSRF guard for ``rpc_url``)."""
    policy = request.app.state.rpc_policy
    assert isinstance(policy, DestinationPolicy)
    return policy


@router.post("/networks", status_code=201, response_model=NetworkOut, tags=["networks"])
def configure_network(
    body: NetworkIn,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.VAULTS_MANAGE))],
    rpc_policy: Annotated[DestinationPolicy, Depends(get_rpc_policy)],
) -> Response:
    """Add a network: an EVM chain (any EIP-155 chain id, its nodes tried in order, an
    optional private broadcast URL, its native symbol), Bitcoin or Solana. Every URL is
    http(s) to a public node, to this host, or to a network the server allows
    (``--allow-rpc-network``); link-local and cloud metadata addresses are refused, and
    the address its host resolves to is checked again at every connection. The legacy
    fee model is refused (400): the pipeline builds EIP-1559 transactions only."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = svc.configure_network(
            uow,
            change.principal,
            name=body.name,
            kind=body.kind,
            chain_id=body.chain_id,
            rpc_url=body.rpc_url,
            required_confirmations=body.required_confirmations,
            rpc_policy=rpc_policy,
            rpc_urls=body.rpc_urls,
            broadcast_url=body.broadcast_url,
            native_symbol=body.native_symbol,
            fee_model=body.fee_model,
        )
        return 201, NetworkOut.model_validate(view).model_dump(mode="json")

    return run_mutation(platform, change, operation)


@router.get("/networks", response_model=list[NetworkOut], tags=["networks"])
def list_networks(
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(authorized(Permission.VAULTS_READ))],
) -> list[NetworkOut]:
    """The workspace's networks."""
    with platform.unit_of_work(read_only=True) as uow:
        return [NetworkOut.model_validate(n) for n in svc.list_networks(uow, principal)]


@router.post("/assets", status_code=201, response_model=AssetOut, tags=["assets"])
def add_asset(
    body: AssetIn,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.VAULTS_MANAGE))],
) -> Response:
    """Add an asset: a network's native coin, or an ERC-20 token (contract, decimals)."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = svc.add_asset(
            uow,
            change.principal,
            symbol=body.symbol,
            network=body.network,
            kind=body.kind,
            contract=body.contract,
            decimals=body.decimals,
            price=body.price,
        )
        return 201, AssetOut.model_validate(view).model_dump(mode="json")

    return run_mutation(platform, change, operation)


@router.get("/assets", response_model=list[AssetOut], tags=["assets"])
def list_assets(
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(authorized(Permission.VAULTS_READ))],
) -> list[AssetOut]:
    """The workspace's assets."""
    with platform.unit_of_work(read_only=True) as uow:
        return [AssetOut.model_validate(a) for a in svc.list_assets(uow, principal)]


def get_creations(request: Request) -> VaultCreationRunner:
    """The runner of this server's vault creation jobs.

    Raises:
        Unavailable: the server was started without a signing backend.
    """
    runner = getattr(request.app.state, "vault_creations", None)
    if not isinstance(runner, VaultCreationRunner):
        raise Unavailable("this server has no signing backend configured")
    return runner


CreationsDep = Annotated[VaultCreationRunner, Depends(get_creations)]

WAIT_S = 3600.0
"""The longest a request without ``Prefer: respond-async`` waits for its vault."""


def _wants_async(request: Request) -> bool:
    """Whether the client asked for the 202 answer (RFC 7240 ``Prefer: respond-async``)."""
    prefer = request.headers.get("prefer", "")
    return any(p.strip().lower() == "respond-async" for p in prefer.split(","))


@router.post(
    "/vaults",
    status_code=201,
    response_model=VaultOut,
    responses={
        202: {
            "model": VaultCreationOut,
            "description": "With Prefer: respond-async: the key generations run on; read "
            "the Location (GET /v1/vault-creations/{Idempotency-Key}) until finished.",
        }
    },
    tags=["vaults"],
)
async def create_vault(
    body: VaultIn,
    request: Request,
    # Authentication and authorisation first: a request without credentials is a 401
    # whatever the server's configuration.
    change: Annotated[Mutation, Depends(mutation(Permission.VAULTS_MANAGE))],
    platform: PlatformDep,
    runtime: RuntimeDep,
    creations: CreationsDep,
    board: BoardDep,
) -> Response:
    """Create an MPC vault: one distributed key generation per scheme, run by a job of
    the server, then the vault record with the public keys. The request waits for the
    vault (201) unless it sends ``Prefer: respond-async``: then it is answered 202 at
    once with the creation, which ``GET /v1/vault-creations/{Idempotency-Key}`` follows
    (it says how far the key generations have come either way).

    The job is persisted: a server that restarts runs it again (new key generation
    sessions) and the same request, sent again with its Idempotency-Key, waits for it
    or returns its vault. A retry of a failed creation with the same key runs it again;
    a retry of a finished one returns the first vault without a new key generation."""
    # Refuse a missing or malformed key before spending a key generation on the request,
    # and record the token's nonce before it: a copy of the request sent during the key
    # generation is then refused as a replay instead of generating keys too.
    key = validate_key(change.idempotency_key)
    await run_in_threadpool(change.nonce.consume_now)
    principal = change.principal
    schemes = svc.check_vault_request(
        principal,
        name=body.name,
        schemes=list(body.schemes),
        min_signers=body.min_signers,
        max_signers=body.max_signers,
        max_signers_choices=runtime.backend.max_signers_choices,
    )

    def vault_answer(vault_id: str) -> Operation:
        def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
            view = svc.get_vault(uow, principal, vault_id)
            return 201, VaultOut.model_validate(view).model_dump(mode="json")

        return operation

    if await run_in_threadpool(already_answered, platform, change):
        # Answered before: run_mutation replays the stored answer (or refuses a
        # different body with the same key).
        return await run_in_threadpool(run_mutation, platform, change, vault_answer(""))

    def submit() -> creation_jobs.Submitted:
        with platform.unit_of_work() as uow:
            return creation_jobs.submit(
                uow,
                principal,
                key=key,
                fingerprint=change.fingerprint,
                vault_id=str(uuid.uuid4()),
                name=body.name,
                schemes=schemes,
                min_signers=body.min_signers,
                max_signers=body.max_signers,
                initiator=svc.initiator_email(uow, principal),
            )

    submitted = await run_in_threadpool(submit)
    job_id = submitted.job_id
    if submitted.start:
        creations.run(job_id)
    deadline = time.monotonic() + WAIT_S
    while True:
        state, error = await run_in_threadpool(_state_of, platform, job_id)
        if state != creation_jobs.GENERATING:
            break
        if _wants_async(request):
            if not creations.running(job_id):
                creations.run(job_id)  # left by a server that stopped, not resumed yet
            return _accepted(platform, principal.workspace_id, key, board)
        if not creations.running(job_id):
            # Read again: the job may have ended between the read above and now.
            state, error = await run_in_threadpool(_state_of, platform, job_id)
            if state != creation_jobs.GENERATING:
                break
            creations.run(job_id)
        while creations.running(job_id):
            if time.monotonic() > deadline:
                raise Unavailable("the vault's key generation is still running; retry later")
            await asyncio.sleep(_POLL_S)
    if state == creation_jobs.FAILED:
        raise creations.error_of(job_id) or SigningError(error or "the key generation failed")
    return await run_in_threadpool(run_mutation, platform, change, vault_answer(submitted.vault_id))


_POLL_S = 0.02
"""How often a waiting request looks whether its job ended."""


def _state_of(platform: Platform, job_id: str) -> tuple[str, str | None]:
    with platform.unit_of_work(read_only=True) as uow:
        return creation_jobs.state_of(uow, job_id)


def _accepted(platform: Platform, workspace_id: str, key: str, board: KeygenBoard) -> Response:
    with platform.unit_of_work(read_only=True) as uow:
        view = creation_jobs.view(uow, workspace_id, key, board)
    location = f"/v1/vault-creations/{quote(key, safe='')}"
    return JSONResponse(
        VaultCreationOut.model_validate(view).model_dump(mode="json"),
        status_code=202,
        headers={"Location": location, "Preference-Applied": "respond-async"},
    )


@router.get("/vault-creations/{idempotency_key}", response_model=VaultCreationOut, tags=["vaults"])
def get_vault_creation(
    idempotency_key: str,
    platform: PlatformDep,
    board: BoardDep,
    principal: Annotated[Principal, Depends(authorized(Permission.VAULTS_READ))],
) -> VaultCreationOut:
    """How far the key generations of a vault request (named by its Idempotency-Key)
    have come: ``generating`` (with ``attempts``, the runs so far: a restart of the
    server runs them again), ``finished`` (read the vault ``vault_id``) or ``failed``
    (``error`` says why; send the request again with the same key to retry). A 404 for
    a key no vault request of this workspace used."""
    with platform.unit_of_work(read_only=True) as uow:
        view = creation_jobs.view(uow, principal.workspace_id, idempotency_key, board)
    return VaultCreationOut.model_validate(view)


@router.get("/vaults", response_model=VaultPage, tags=["vaults"])
def list_vaults(
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(authorized(Permission.VAULTS_READ))],
    limit: Limit = 50,
    cursor: Cursor = None,
) -> VaultPage:
    """The workspace's vaults, a page at a time."""
    with platform.unit_of_work(read_only=True) as uow:
        page = svc.list_vaults(uow, principal, limit=limit, cursor=cursor)
    return VaultPage(
        data=[VaultOut.model_validate(v) for v in page.items], next_cursor=page.next_cursor
    )


@router.get("/vaults/{vault_id}", response_model=VaultOut, tags=["vaults"])
def get_vault(
    vault_id: str,
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(authorized(Permission.VAULTS_READ))],
) -> VaultOut:
    """One vault with its root public keys."""
    with platform.unit_of_work(read_only=True) as uow:
        return VaultOut.model_validate(svc.get_vault(uow, principal, vault_id))
