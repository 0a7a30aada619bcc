"""The one writer of a transaction's status.

The pipeline, a cancellation and an approval all move a transaction through
:func:`move`: it asks :func:`shardvault.lifecycle.transition` whether the move is legal
for the transaction's flow and the caller's cause, and only then writes the status with
its reason and times, takes a finished transaction off the work queue, and records the
webhook event and the audit event in the caller's unit of work. An illegal move raises
before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from shardvault.audit import Actor
from shardvault.lifecycle import TERMINAL as TERMINAL
from shardvault.lifecycle import Cause, Flow, TransactionStatus, transition
from shardvault.service import webhooks
from shardvault.service.uow import UnitOfWork
from shardvault.store.models_vaults import NetworkKind, Transaction
from shardvault.store.repositories_vaults import WorkQueue
from shardvault.store.types import utcnow

FLOWS: Mapping[NetworkKind, Flow] = MappingProxyType(
    {
        NetworkKind.EVM: Flow.ONCHAIN,
        NetworkKind.BITCOIN: Flow.ONCHAIN,
        # Signed and verified, not broadcast: no Solana node is configured.
        NetworkKind.SOLANA: Flow.SIGN_ONLY,
    }
)
"""The flow of a transfer on each kind of network."""

REASON_LIMIT = 500
"""The longest status reason kept."""


def emit_status(
    uow: UnitOfWork,
    row: Transaction,
    *,
    previous: TransactionStatus | None,
    event_type: str = webhooks.TRANSACTION_STATUS_CHANGED,
) -> None:
    """Record the webhook event of a state change in the caller's database transaction
    (the webhook outbox), beside the change and its audit event (``previous`` ``None``:
    the transaction is created in it)."""
    webhooks.emit_event(
        uow,
        row.workspace_id,
        "transaction",
        row.id,
        event_type,
        {
            "id": row.id,
            "status": row.status.value,
            "previous_status": previous.value if previous is not None else None,
            "reason": row.status_reason,
            "destination": row.destination,
            "amount": row.amount,
            "amount_base_units": row.amount_base_units,
            "nonce": row.nonce,
            "tx_hash": row.tx_hash,
        },
        new_resource=previous is None,
    )


def move(
    uow: UnitOfWork,
    tx: Transaction,
    target: TransactionStatus,
    *,
    flow: Flow,
    cause: Cause,
    actor: Actor,
    reason: str | None = None,
    details: Mapping[str, object] | None = None,
    flush: bool = False,
) -> TransactionStatus:
    """Move ``tx`` to ``target`` in the caller's unit of work, with its webhook and audit
    events; answers the state it left. ``flush``: write the row before the events (a
    caller that reads it back in the same unit of work).

    Raises:
        IllegalTransitionError: ``flow`` does not let ``cause`` make this move.
    """
    previous = tx.status
    transition(flow, previous, target, cause)
    now = utcnow()
    tx.status = target
    tx.status_reason = None if reason is None else reason[:REASON_LIMIT]
    tx.updated_at = now
    if target in TERMINAL:
        tx.completed_at = now
    if flush:
        uow.session.flush()
    if target in TERMINAL:
        WorkQueue(uow.session).remove(tx.id)
    emit_status(uow, tx, previous=previous)
    event: dict[str, object] = {"from": previous.value}
    if reason is not None:
        event["reason"] = reason[:REASON_LIMIT]
    event.update(details or {})
    uow.audit.append(
        workspace_id=tx.workspace_id,
        actor=actor,
        action=f"transaction.{target.value}",
        resource_type="transaction",
        resource_id=tx.id,
        details=event,  # type: ignore[arg-type]
    )
    return previous
