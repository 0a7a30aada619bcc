"""Wallets (a vault's holding of one asset), their derived addresses, and what the
co-signers attest about each address (docs/cosigner.md, "Attested addresses")."""

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from shardvault.api.deps import (
    Mutation,
    already_answered,
    authorized,
    get_platform,
    mutation,
    run_mutation,
)
from shardvault.api.schemas_vaults import AddressOut, WalletIn, WalletList, WalletOut
from shardvault.service import address_attestations as attest_svc
from shardvault.service import wallets as svc
from shardvault.service.context import Principal
from shardvault.service.idempotency import validate_key
from shardvault.service.pipeline import PipelineRuntime
from shardvault.service.platform import Platform
from shardvault.service.rbac import Permission
from shardvault.service.signing import SigningBackend
from shardvault.service.uow import UnitOfWork

router = APIRouter()

PlatformDep = Annotated[Platform, Depends(get_platform)]


def _backend(request: Request) -> SigningBackend | None:
    """The server's signing backend, if it has one (it may have co-signers to attest)."""
    runtime = getattr(request.app.state, "pipeline_runtime", None)
    return runtime.backend if isinstance(runtime, PipelineRuntime) else None


def _attested(response: Response, body: str) -> Response:
    """``response`` with ``body`` (the same resource, now with its attestations)."""
    return Response(
        content=body,
        status_code=response.status_code,
        media_type="application/json",
        headers={"Idempotent-Replayed": response.headers.get("Idempotent-Replayed", "false")},
    )


def _fresh(response: Response) -> bool:
    return response.status_code < 300 and response.headers.get("Idempotent-Replayed") != "true"


@router.post("/wallets", status_code=201, response_model=WalletOut, tags=["wallets"])
def create_wallet(
    body: WalletIn,
    request: Request,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.VAULTS_MANAGE))],
) -> Response:
    """Add a wallet for an asset to a vault; its first address (index 0) is derived and,
    with co-signers, attested by each of them (those that answer within the timeout)."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = svc.create_wallet(uow, change.principal, vault_id=body.vault_id, asset=body.asset)
        return 201, WalletOut.model_validate(view).model_dump(mode="json")

    response = run_mutation(platform, change, operation)
    if not _fresh(response):
        return response
    created = WalletOut.model_validate_json(bytes(response.body))
    first = created.addresses[0]
    if (
        attest_svc.attest_new_address(
            platform, change.principal, _backend(request), created.id, first.id
        )
        is None
    ):
        return response
    with platform.unit_of_work(read_only=True) as uow:
        view = svc.get_wallet(uow, change.principal, created.id)
    return _attested(response, WalletOut.model_validate(view).model_dump_json())


@router.get("/wallets", response_model=WalletList, tags=["wallets"])
def list_wallets(
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(authorized(Permission.VAULTS_READ))],
    vault_id: Annotated[str | None, Query(max_length=64)] = None,
) -> WalletList:
    """The workspace's wallets (of one vault with ``vault_id``)."""
    with platform.unit_of_work(read_only=True) as uow:
        rows = svc.list_wallets(uow, principal, vault_id=vault_id)
    return WalletList(data=[WalletOut.model_validate(w) for w in rows])


@router.get("/wallets/{wallet_id}", response_model=WalletOut, tags=["wallets"])
def get_wallet(
    wallet_id: str,
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(authorized(Permission.VAULTS_READ))],
) -> WalletOut:
    """One wallet with its addresses and their attestations."""
    with platform.unit_of_work(read_only=True) as uow:
        return WalletOut.model_validate(svc.get_wallet(uow, principal, wallet_id))


@router.post(
    "/wallets/{wallet_id}/addresses", status_code=201, response_model=AddressOut, tags=["wallets"]
)
def new_address(
    wallet_id: str,
    request: Request,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.VAULTS_MANAGE))],
) -> Response:
    """Derive the wallet's next address (``m/44/<coin>/<vault>/0/<index>``); with
    co-signers, each of them attests it (those that answer within the timeout)."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = svc.new_address(uow, change.principal, wallet_id)
        return 201, AddressOut.model_validate(view).model_dump(mode="json")

    response = run_mutation(platform, change, operation)
    if not _fresh(response):
        return response
    created = json.loads(bytes(response.body))
    view = attest_svc.attest_new_address(
        platform, change.principal, _backend(request), wallet_id, str(created["id"])
    )
    if view is None:
        return response
    return _attested(response, AddressOut.model_validate(view).model_dump_json())


@router.post(
    "/wallets/{wallet_id}/addresses/{address_id}/attest",
    response_model=AddressOut,
    tags=["wallets"],
)
def attest_address(
    wallet_id: str,
    address_id: str,
    request: Request,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.VAULTS_MANAGE))],
) -> Response:
    """Ask the key's co-signers to attest an address again (one made before attestations
    existed, or when a co-signer did not answer): each answering co-signer's attestation
    replaces its earlier one. 409 ``attestation-unavailable`` when this server's signer
    has no co-signers or cannot reach them."""
    validate_key(change.idempotency_key)
    # Recorded before the co-signers are asked: a copy of the request sent meanwhile is
    # refused as a replay.
    change.nonce.consume_now()
    if already_answered(platform, change):
        return run_mutation(platform, change, _answered_before)
    with platform.unit_of_work(read_only=True) as uow:
        wanted = attest_svc.attestation_request(uow, change.principal, wallet_id, address_id)
    backend = _backend(request)
    if backend is None:
        raise attest_svc.AttestationUnavailable("this server has no signing backend")
    attestations = attest_svc.ask_cosigners(backend, wanted)

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = attest_svc.record_attestations(uow, change.principal, wanted, attestations)
        return 200, AddressOut.model_validate(view).model_dump(mode="json")

    return run_mutation(platform, change, operation)


def _answered_before(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
    raise AssertionError("run_mutation answers a stored result without running this")
