"""Networks, assets and vaults (custody mode ``mpc``; key generation through the
configured signing backend)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
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
from shardvault.service import vaults as svc
from shardvault.service.context import Principal
from shardvault.service.destinations import DestinationPolicy
from shardvault.service.errors import NotFound, Unavailable
from shardvault.service.idempotency import validate_key
from shardvault.service.keygen_progress import KeygenBoard
from shardvault.service.pagination import MAX_PAGE_SIZE
from shardvault.service.pipeline import PipelineRuntime
from shardvault.service.platform import Platform
from shardvault.service.rbac import Permission
from shardvault.service.uow import UnitOfWork

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


@router.post("/vaults", status_code=201, response_model=VaultOut, tags=["vaults"])
async def create_vault(
    body: VaultIn,
    # Authentication and authorisation first: a request without credentials is a 401
    # whatever the server's configuration.
    change: Annotated[Mutation, Depends(mutation(Permission.VAULTS_MANAGE))],
    platform: PlatformDep,
    runtime: RuntimeDep,
    board: BoardDep,
) -> Response:
    """Create an MPC vault: one distributed key generation per scheme (slow: seconds with
    the embedded backend), then the vault record with the public keys. While it runs,
    ``GET /v1/vault-creations/{Idempotency-Key}`` tells how far it has come.

    A retry with the same Idempotency-Key returns the first vault without a new key
    generation."""
    # Refuse a missing or malformed key before spending a key generation on the request,
    # and record the token's nonce before it: a copy of the request sent during the key
    # generation is then refused as a replay instead of generating keys too.
    validate_key(change.idempotency_key)
    await run_in_threadpool(change.nonce.consume_now)
    schemes = svc.check_vault_request(
        change.principal,
        name=body.name,
        schemes=list(body.schemes),
        min_signers=body.min_signers,
        max_signers=body.max_signers,
        max_signers_choices=runtime.backend.max_signers_choices,
    )

    def initiator() -> str:
        with platform.unit_of_work(read_only=True) as uow:
            return svc.initiator_email(uow, change.principal)

    vault_id = str(uuid.uuid4())
    workspace_id, key = change.principal.workspace_id, change.idempotency_key or ""
    keys = []
    generating = not await run_in_threadpool(already_answered, platform, change)
    ok = False
    try:
        if generating:
            email = await run_in_threadpool(initiator)
            board.start(
                workspace_id, key, vault_id=vault_id, schemes=schemes, parties=body.max_signers
            )
            keys = await run_in_threadpool(
                lambda: svc.generate_vault_keys(
                    runtime.backend,
                    workspace_id=workspace_id,
                    vault_id=vault_id,
                    schemes=schemes,
                    min_signers=body.min_signers,
                    max_signers=body.max_signers,
                    initiator=email,
                    progress=lambda scheme, done, _total: board.report(
                        workspace_id, key, scheme, done
                    ),
                )
            )

        def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
            view = svc.record_vault(
                uow,
                change.principal,
                vault_id=vault_id,
                name=body.name,
                keys=keys,
                backend_name=runtime.backend.name,
            )
            return 201, VaultOut.model_validate(view).model_dump(mode="json")

        response = await run_in_threadpool(run_mutation, platform, change, operation)
        ok = response.status_code < 300
        return response
    finally:
        if generating:
            board.end(workspace_id, key, ok=ok)


@router.get("/vault-creations/{idempotency_key}", response_model=VaultCreationOut, tags=["vaults"])
def get_vault_creation(
    idempotency_key: str,
    board: BoardDep,
    principal: Annotated[Principal, Depends(authorized(Permission.VAULTS_READ))],
) -> VaultCreationOut:
    """How far the key generations of a vault request (named by its Idempotency-Key)
    have come: running, or ended in the last five minutes, on this server. A 404 for a
    request this server is not running or has forgotten (it may be finished: read the
    vault, or send the request again with its key)."""
    view = board.get(principal.workspace_id, idempotency_key)
    if view is None:
        raise NotFound("vault creation", idempotency_key)
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
