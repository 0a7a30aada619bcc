"""A sent transaction's versions: the original and its replacements' rows
(:mod:`shardvault.lifecycle.replacements`), read and moved in the caller's unit of work.

Every move of a replacement goes through :func:`move_replacement`, which asks the
lifecycle's table first, and writes the audit event beside the change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select

from shardvault.audit import Actor
from shardvault.audit.encoding import JsonValue
from shardvault.lifecycle import (
    ENDED_REPLACEMENT,
    LIVE_REPLACEMENT,
    ReplacementMode,
    ReplacementStatus,
    replacement_transition,
)
from shardvault.service.pipeline.chain import Version
from shardvault.service.transaction_state import REASON_LIMIT
from shardvault.service.uow import UnitOfWork
from shardvault.store.models_vaults import Replacement, Transaction
from shardvault.store.types import utcnow


@dataclass(frozen=True, slots=True)
class Versions:
    """What the node may hold of one transaction, oldest first: the original and each
    sent replacement (``modes[i]`` ``None`` for the original); and the replacement still
    being made, if any."""

    versions: tuple[Version, ...]
    modes: tuple[ReplacementMode | None, ...]
    ids: tuple[str | None, ...]
    live: Replacement | None

    @property
    def newest(self) -> Version:
        return self.versions[-1]


def replacements_of(uow: UnitOfWork, tx: Transaction, *, lock: bool = False) -> list[Replacement]:
    """``tx``'s replacements, oldest first (locked for update with ``lock``)."""
    query = (
        select(Replacement)
        .where(
            Replacement.workspace_id == tx.workspace_id,
            Replacement.transaction_id == tx.id,
        )
        .order_by(Replacement.seq)
    )
    if lock:
        query = query.with_for_update()
    return list(uow.session.scalars(query))


def replacement_of(
    uow: UnitOfWork, tx: Transaction, replacement_id: str, *, lock: bool = False
) -> Replacement | None:
    """``tx``'s replacement ``replacement_id`` (locked for update with ``lock``), or
    ``None``."""
    row = uow.session.get(Replacement, replacement_id, with_for_update=lock)
    if row is None or (row.workspace_id, row.transaction_id) != (tx.workspace_id, tx.id):
        return None
    return row


def versions_of(uow: UnitOfWork, tx: Transaction) -> Versions:
    """The versions of ``tx`` (in ``confirming``: its signed bytes are on a node)."""
    assert tx.chain_payload is not None
    assert tx.signed_payload is not None
    assert tx.tx_hash is not None
    rows = replacements_of(uow, tx)
    sent = [r for r in rows if r.status == ReplacementStatus.SENT]
    versions = [Version(tx.chain_payload, tx.signed_payload, tx.tx_hash)]
    for r in sent:
        assert r.chain_payload is not None
        assert r.signed_payload is not None
        assert r.tx_hash is not None
        versions.append(Version(r.chain_payload, r.signed_payload, r.tx_hash))
    modes = (None, *(ReplacementMode(r.mode) for r in sent))
    ids = (None, *(r.id for r in sent))
    live = next((r for r in rows if r.status in LIVE_REPLACEMENT), None)
    return Versions(tuple(versions), modes, ids, live)


def has_versions_in(uow: UnitOfWork, tx: Transaction) -> bool:
    """Whether a replacement of ``tx`` was sent (its versions are looked at together)."""
    return any(r.status == ReplacementStatus.SENT for r in replacements_of(uow, tx))


def take_version_in(uow: UnitOfWork, tx: Transaction, replacement_id: str) -> None:
    """``tx`` carries the mined replacement's payload, signature and hash from now on
    (the original's hash stays in the replacement's ``replaces_tx_hash``)."""
    row = replacement_of(uow, tx, replacement_id)
    assert row is not None
    tx.chain_payload = row.chain_payload
    tx.digest = row.digest
    tx.signature = row.signature
    tx.signed_payload = row.signed_payload
    tx.tx_hash = row.tx_hash


def move_replacement(
    uow: UnitOfWork,
    row: Replacement,
    target: ReplacementStatus,
    *,
    reason: str | None = None,
    details: Mapping[str, JsonValue] | None = None,
) -> None:
    """Move ``row`` to ``target`` (the lifecycle's table decides whether it may), with
    its audit event.

    Raises:
        IllegalReplacementMoveError: the table does not hold the move.
    """
    current = ReplacementStatus(row.status)
    replacement_transition(current, target)
    row.status = target.value
    row.status_reason = None if reason is None else reason[:REASON_LIMIT]
    row.updated_at = utcnow()
    uow.audit.append(
        workspace_id=row.workspace_id,
        actor=Actor.system(),
        action=f"transaction.replacement_{target.value}",
        resource_type="transaction",
        resource_id=row.transaction_id,
        details={
            "replacement": row.id,
            "seq": row.seq,
            "mode": row.mode,
            "previous_status": current.value,
            "reason": row.status_reason,
            "tx_hash": row.tx_hash,
            **(details or {}),
        },
    )


def end_replacements_in(uow: UnitOfWork, tx: Transaction, *, mined: str | None = None) -> None:
    """When ``tx`` ends: the replacement ``mined`` (its id) is the one in the chain;
    every other that has not ended is superseded.

    On the path of every transfer that completes, so it reads only the replacements that
    have not ended, without flushing the caller's pending writes (a batch writes them in
    one flush per commit). The caller holds ``tx``'s row lock, under which replacements
    are made and moved, so none can start meanwhile."""
    with uow.session.no_autoflush:
        rows = list(
            uow.session.scalars(
                select(Replacement)
                .where(
                    Replacement.workspace_id == tx.workspace_id,
                    Replacement.transaction_id == tx.id,
                    Replacement.status.not_in([s.value for s in ENDED_REPLACEMENT]),
                )
                .order_by(Replacement.seq)
            )
        )
    for row in rows:
        if row.id == mined:
            move_replacement(uow, row, ReplacementStatus.MINED)
        else:
            move_replacement(
                uow,
                row,
                ReplacementStatus.SUPERSEDED,
                reason=f"the transaction ended {tx.status.value} without it",
            )
