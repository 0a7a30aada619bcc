"""Approvals: an approver's signed statement (approve or reject) on a transaction."""

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from shardvault.api.deps import Mutation, get_platform, mutation, run_mutation
from shardvault.api.schemas_vaults import ApprovalIn, TransactionOut
from shardvault.service import transactions as svc
from shardvault.service.platform import Platform
from shardvault.service.rbac import Permission
from shardvault.service.uow import UnitOfWork

router = APIRouter()

PlatformDep = Annotated[Platform, Depends(get_platform)]


@router.post(
    "/transactions/{transaction_id}/approvals",
    response_model=TransactionOut,
    tags=["approvals"],
)
def submit_approval(
    transaction_id: str,
    body: ApprovalIn,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.TRANSACTIONS_APPROVE))],
) -> Response:
    """Approve or reject with a statement signed by the approver's key (docs/policy.md,
    "Approvals"): ``approver`` is the caller's email, the signed digest the transaction's
    ``intent_digest``, ``signed_at`` the approver's clock. A statement that does not count
    (including one dated in the future, before the transaction, or past its lifetime at
    the server's clock) is refused with 403."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = svc.submit_approval(
            uow,
            change.principal,
            transaction_id,
            approver=body.approver,
            decision=body.decision,
            policy_version=body.policy_version,
            signed_at=body.signed_at,
            signature=body.signature,
            now=int(platform.clock()),
        )
        return 200, TransactionOut.model_validate(view).model_dump(mode="json")

    return run_mutation(platform, change, operation)
