"""The address book (effective through the next signed policy bundle)."""

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from shardvault.api.deps import Mutation, authorized, get_platform, mutation, run_mutation
from shardvault.api.schemas_vaults import AddressBookEntryOut, AddressBookIn, AddressBookList
from shardvault.service import addressbook as svc
from shardvault.service.context import Principal
from shardvault.service.platform import Platform
from shardvault.service.rbac import Permission
from shardvault.service.uow import UnitOfWork

router = APIRouter()

PlatformDep = Annotated[Platform, Depends(get_platform)]


@router.post(
    "/address-book", status_code=201, response_model=AddressBookEntryOut, tags=["address-book"]
)
def add_entry(
    body: AddressBookIn,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.POLICIES_MANAGE))],
) -> Response:
    """Add a named address, optionally on whitelists."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = svc.add_entry(
            uow,
            change.principal,
            name=body.name,
            network=body.network,
            address=body.address,
            whitelists=body.whitelists,
        )
        return 201, AddressBookEntryOut.model_validate(view).model_dump(mode="json")

    return run_mutation(platform, change, operation)


@router.get("/address-book", response_model=AddressBookList, tags=["address-book"])
def list_entries(
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(authorized(Permission.POLICIES_READ))],
) -> AddressBookList:
    """The working address book."""
    with platform.unit_of_work(read_only=True) as uow:
        rows = svc.list_entries(uow, principal)
    return AddressBookList(data=[AddressBookEntryOut.model_validate(r) for r in rows])


@router.delete(
    "/address-book/{entry_id}", response_model=AddressBookEntryOut, tags=["address-book"]
)
def remove_entry(
    entry_id: str,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.POLICIES_MANAGE))],
) -> Response:
    """Remove an entry."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = svc.remove_entry(uow, change.principal, entry_id)
        return 200, AddressBookEntryOut.model_validate(view).model_dump(mode="json")

    return run_mutation(platform, change, operation)
