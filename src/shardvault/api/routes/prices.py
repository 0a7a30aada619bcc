"""Signed price reports: submitted by a price key's owner, forwarded to the co-signers."""

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from shardvault.api.deps import Mutation, authorized, get_platform, mutation, run_mutation
from shardvault.api.schemas_vaults import PriceReportIn, PriceReportList, PriceReportOut
from shardvault.service import price_reports as svc
from shardvault.service.context import Principal
from shardvault.service.platform import Platform
from shardvault.service.rbac import Permission
from shardvault.service.uow import UnitOfWork

router = APIRouter()

PlatformDep = Annotated[Platform, Depends(get_platform)]


@router.post("/price-reports", status_code=201, response_model=PriceReportOut, tags=["prices"])
def submit_price_report(
    body: PriceReportIn,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.POLICIES_MANAGE))],
) -> Response:
    """Hold a price report signed by a price key of the active policy's asset registry;
    the co-signers are sent the newest one per asset with every signing request and
    verify it themselves. A report the active policy does not let count is a 400; one
    no newer than the report held for its asset and signer is a 409."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = svc.submit_price_report(
            uow, change.principal, body.model_dump(), now=int(platform.clock())
        )
        return 201, PriceReportOut.model_validate(view).model_dump(mode="json")

    return run_mutation(platform, change, operation)


@router.get("/price-reports", response_model=PriceReportList, tags=["prices"])
def list_price_reports(
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(authorized(Permission.POLICIES_READ))],
) -> PriceReportList:
    """The newest report held per network, asset and signer."""
    with platform.unit_of_work(read_only=True) as uow:
        return PriceReportList(
            data=[PriceReportOut.model_validate(v) for v in svc.list_price_reports(uow, principal)]
        )
