"""Transactions: create (with Idempotency-Key), read, list, cancel, replace."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from shardvault.api.deps import Mutation, authorized, get_platform, mutation, run_mutation
from shardvault.api.schemas_vaults import (
    CancelIn,
    ReplacementIn,
    ReplacementList,
    ReplacementOut,
    TransactionIn,
    TransactionOut,
    TransactionPage,
)
from shardvault.service import replacements
from shardvault.service import transactions as svc
from shardvault.service.auth import bearer_token
from shardvault.service.context import Principal
from shardvault.service.errors import ServiceError
from shardvault.service.initiator_requests import SignedCreateRequest
from shardvault.service.pagination import MAX_PAGE_SIZE
from shardvault.service.platform import Platform
from shardvault.service.rbac import Permission
from shardvault.service.uow import UnitOfWork

router = APIRouter()

PlatformDep = Annotated[Platform, Depends(get_platform)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(max_length=200)]


@router.post("/transactions", status_code=201, response_model=TransactionOut, tags=["transactions"])
def create_transaction(
    body: TransactionIn,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.TRANSACTIONS_CREATE))],
) -> Response:
    """Submit a transfer; the pipeline evaluates the policy, collects approvals, signs,
    broadcasts and tracks it. The same Idempotency-Key returns the first transaction."""

    # The request is checked on a read snapshot, outside the write transaction (on
    # SQLite, the single write lock every request and pipeline step waits for); its
    # error, if any, is raised only once the idempotency key is known to be new, so a
    # retry of a request that succeeded still gets the first answer.
    prepared: svc.PreparedTransfer | ServiceError
    try:
        with platform.unit_of_work(read_only=True) as uow:
            prepared = svc.prepare_transfer(
                uow,
                change.principal,
                wallet_id=body.wallet_id,
                destination=body.destination,
                amount=body.amount,
                note=body.note,
                source_index=body.source_index,
            )
    except ServiceError as exc:
        prepared = exc

    # The request as the initiator signed it goes with the transaction to every
    # co-signer, which verifies it under the initiator keys of its signed policy.
    signed = SignedCreateRequest(bearer_token(change.signed.authorization), change.signed.body)

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        if isinstance(prepared, ServiceError):
            raise prepared
        view = svc.submit_transfer(uow, change.principal, prepared, signed=signed)
        return 201, TransactionOut.model_validate(view).model_dump(mode="json")

    return run_mutation(platform, change, operation)


@router.get("/transactions", response_model=TransactionPage, tags=["transactions"])
def list_transactions(
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(authorized(Permission.TRANSACTIONS_READ))],
    limit: Limit = 50,
    cursor: Cursor = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
) -> TransactionPage:
    """The workspace's transactions, a page at a time (optionally of one status)."""
    with platform.unit_of_work(read_only=True) as uow:
        page = svc.list_transactions(uow, principal, limit=limit, cursor=cursor, status=status)
    return TransactionPage(
        data=[TransactionOut.model_validate(t) for t in page.items], next_cursor=page.next_cursor
    )


@router.get("/transactions/{transaction_id}", response_model=TransactionOut, tags=["transactions"])
def get_transaction(
    transaction_id: str,
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(authorized(Permission.TRANSACTIONS_READ))],
) -> TransactionOut:
    """One transaction with its state, policy decision, approvals and chain data."""
    with platform.unit_of_work(read_only=True) as uow:
        return TransactionOut.model_validate(svc.get_transaction(uow, principal, transaction_id))


@router.post(
    "/transactions/{transaction_id}/cancel", response_model=TransactionOut, tags=["transactions"]
)
def cancel_transaction(
    transaction_id: str,
    body: CancelIn,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.TRANSACTIONS_CREATE))],
) -> Response:
    """Cancel a transaction that has not started signing (409 otherwise)."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = svc.cancel_transaction(uow, change.principal, transaction_id, reason=body.reason)
        return 200, TransactionOut.model_validate(view).model_dump(mode="json")

    return run_mutation(platform, change, operation)


@router.post(
    "/transactions/{transaction_id}/replacements",
    status_code=202,
    response_model=ReplacementOut,
    tags=["transactions"],
)
def replace_transaction(
    transaction_id: str,
    body: ReplacementIn,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.TRANSACTIONS_CREATE))],
) -> Response:
    """Replace a transaction sent and not yet mined (``confirming``): speed it up, or
    cancel it on chain (EVM). The pipeline signs and sends the replacement; follow it
    with ``GET .../replacements``. 409 in any other state, on a network that cannot do
    it, while another replacement is being made, or past the limit."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = replacements.request_replacement(
            uow, change.principal, transaction_id, mode=body.mode
        )
        return 202, ReplacementOut.model_validate(view).model_dump(mode="json")

    return run_mutation(platform, change, operation)


@router.get(
    "/transactions/{transaction_id}/replacements",
    response_model=ReplacementList,
    tags=["transactions"],
)
def list_replacements(
    transaction_id: str,
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(authorized(Permission.TRANSACTIONS_READ))],
) -> ReplacementList:
    """A transaction's replacements, oldest first."""
    with platform.unit_of_work(read_only=True) as uow:
        views = replacements.list_replacements(uow, principal, transaction_id)
    return ReplacementList(data=[ReplacementOut.model_validate(v) for v in views])
