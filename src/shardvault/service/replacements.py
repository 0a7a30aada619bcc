"""Replacing a sent transaction (docs/transactions.md "Replacing a sent transaction"):
asked for here, carried out by the pipeline (:mod:`.pipeline.replacing`).

A transaction in ``confirming`` (its signed bytes are on a node, not yet mined) may be
sped up (signed again at the same nonce or coins with a higher fee) or, on an EVM
network, cancelled on chain (a transfer of nothing to the source at the same nonce). One
replacement is made at a time, at most :data:`MAX_REPLACEMENTS` per transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from shardvault.lifecycle import (
    LIVE_REPLACEMENT,
    ReplacementMode,
    ReplacementStatus,
    TransactionStatus,
)
from shardvault.service.context import Principal
from shardvault.service.errors import Conflict, NotFound, ValidationError
from shardvault.service.pipeline.adapters import adapter_for
from shardvault.service.pipeline.versions import replacements_of
from shardvault.service.rbac import Permission, require
from shardvault.service.transactions import transfer_context
from shardvault.service.uow import UnitOfWork
from shardvault.service.work_signal import work_committed
from shardvault.store.models_vaults import Replacement, Transaction
from shardvault.store.repositories_vaults import TransactionRepository, WorkQueue
from shardvault.store.types import utcnow

MAX_REPLACEMENTS = 5
"""Replacements one transaction may be given (each raises the fee by at least 1/8)."""


@dataclass(frozen=True, slots=True)
class ReplacementView:
    """A replacement as the API shows it."""

    id: str
    transaction_id: str
    seq: int
    mode: str
    status: str
    status_reason: str | None
    replaces_tx_hash: str
    tx_hash: str | None
    fee: dict[str, object] | None
    signing_attempts: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Replacement) -> ReplacementView:
        return cls(
            id=row.id,
            transaction_id=row.transaction_id,
            seq=row.seq,
            mode=row.mode,
            status=row.status,
            status_reason=row.status_reason,
            replaces_tx_hash=row.replaces_tx_hash,
            tx_hash=row.tx_hash,
            fee=None if row.fee is None else json.loads(row.fee),
            signing_attempts=row.signing_attempts,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


def _transaction(
    uow: UnitOfWork, principal: Principal, transaction_id: str, *, lock: bool
) -> Transaction:
    row = TransactionRepository(uow.session, principal.workspace_id).get(transaction_id, lock=lock)
    if row is None:
        raise NotFound("transaction", transaction_id)
    return row


def request_replacement(
    uow: UnitOfWork, principal: Principal, transaction_id: str, *, mode: str
) -> ReplacementView:
    """Ask for a replacement of a sent transaction; the pipeline makes it.

    Raises:
        Forbidden, NotFound, ValidationError (an unknown mode), Conflict (not
        ``confirming``, a network that cannot do it, one already being made, or the
        limit reached).
    """
    require(principal, Permission.TRANSACTIONS_CREATE)
    try:
        wanted = ReplacementMode(mode)
    except ValueError:
        raise ValidationError(
            "mode", f"must be one of {', '.join(m.value for m in ReplacementMode)}"
        ) from None
    tx = _transaction(uow, principal, transaction_id, lock=True)
    if tx.status is not TransactionStatus.CONFIRMING:
        raise Conflict(
            f"transaction {transaction_id!r} is {tx.status.value}: only a transaction sent "
            "and not yet mined (confirming) can be replaced"
        )
    network = transfer_context(uow, tx)[1]
    if wanted not in adapter_for(network.kind).replacement_modes:
        raise Conflict(
            f"a {network.kind.value} transaction cannot be given a {wanted.value} replacement"
        )
    rows = replacements_of(uow, tx, lock=True)
    if any(r.status in LIVE_REPLACEMENT for r in rows):
        raise Conflict(f"transaction {transaction_id!r} has a replacement being made")
    if len(rows) >= MAX_REPLACEMENTS:
        raise Conflict(
            f"transaction {transaction_id!r} has had {len(rows)} replacements, the most allowed"
        )
    sent = [r for r in rows if r.status == ReplacementStatus.SENT]
    newest = sent[-1].tx_hash if sent else tx.tx_hash
    assert newest is not None
    now = utcnow()
    row = Replacement(
        workspace_id=tx.workspace_id,
        transaction_id=tx.id,
        seq=len(rows) + 1,
        mode=wanted.value,
        status=ReplacementStatus.REQUESTED.value,
        requested_by=principal.user_id,
        replaces_tx_hash=newest,
        signing_attempts=0,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(row)
    uow.session.flush()
    uow.audit.append(
        workspace_id=tx.workspace_id,
        actor=principal.actor,
        action="transaction.replacement_requested",
        resource_type="transaction",
        resource_id=tx.id,
        details={"replacement": row.id, "seq": row.seq, "mode": row.mode, "replaces": newest},
    )
    WorkQueue(uow.session).enqueue(tx.workspace_id, tx.id)
    uow.after_commit(work_committed)
    return ReplacementView.of(row)


def list_replacements(
    uow: UnitOfWork, principal: Principal, transaction_id: str
) -> list[ReplacementView]:
    """A transaction's replacements, oldest first.

    Raises:
        Forbidden, NotFound.
    """
    require(principal, Permission.TRANSACTIONS_READ)
    tx = _transaction(uow, principal, transaction_id, lock=False)
    return [ReplacementView.of(r) for r in replacements_of(uow, tx)]
