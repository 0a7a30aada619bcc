"""Wallets (a vault's holding of one asset) and their derived addresses."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from shardvault.api.deps import Mutation, authorized, get_platform, mutation, run_mutation
from shardvault.api.schemas_vaults import AddressOut, WalletIn, WalletList, WalletOut
from shardvault.service import wallets as svc
from shardvault.service.context import Principal
from shardvault.service.platform import Platform
from shardvault.service.rbac import Permission
from shardvault.service.uow import UnitOfWork

router = APIRouter()

PlatformDep = Annotated[Platform, Depends(get_platform)]


@router.post("/wallets", status_code=201, response_model=WalletOut, tags=["wallets"])
def create_wallet(
    body: WalletIn,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.VAULTS_MANAGE))],
) -> Response:
    """Add a wallet for an asset to a vault; its first address (index 0) is derived."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = svc.create_wallet(uow, change.principal, vault_id=body.vault_id, asset=body.asset)
        return 201, WalletOut.model_validate(view).model_dump(mode="json")

    return run_mutation(platform, change, operation)


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
    """One wallet with its addresses."""
    with platform.unit_of_work(read_only=True) as uow:
        return WalletOut.model_validate(svc.get_wallet(uow, principal, wallet_id))


@router.post(
    "/wallets/{wallet_id}/addresses", status_code=201, response_model=AddressOut, tags=["wallets"]
)
def new_address(
    wallet_id: str,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.VAULTS_MANAGE))],
) -> Response:
    """Derive the wallet's next address (``m/44/<coin>/<vault>/0/<index>``)."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = svc.new_address(uow, change.principal, wallet_id)
        return 201, AddressOut.model_validate(view).model_dump(mode="json")

    return run_mutation(platform, change, operation)
