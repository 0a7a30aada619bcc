"""Reading a transaction with its context, and moving it (every state change of the
pipeline goes through :func:`move_to`, and so through the lifecycle's table)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shardvault.audit import Actor
from shardvault.lifecycle import TERMINAL, Cause, Flow, TransactionStatus
from shardvault.service.pipeline.runtime import PipelineFault, PipelineRuntime
from shardvault.service.pipeline.versions import end_replacements_in
from shardvault.service.transaction_state import FLOWS, move
from shardvault.service.uow import UnitOfWork
from shardvault.store.models_vaults import Asset, Network, Transaction, WalletAddress
from shardvault.store.repositories import single_writer, transaction_scoped
from shardvault.store.repositories_vaults import (
    AssetRepository,
    NetworkRepository,
    TransactionRepository,
    WalletRepository,
)
from shardvault.store.repositories_webhooks import WebhookRepository

PIPELINE_ACTOR = Actor.system()
"""Who the pipeline's audit events name."""

HINTED = frozenset(
    {
        TransactionStatus.APPROVED,
        TransactionStatus.SIGNING,
        TransactionStatus.SIGNED,
        TransactionStatus.BROADCASTING,
        TransactionStatus.CONFIRMING,
    }
)
"""States a worker goes on from at once, in the same loop, after committing them
(``pending_policy`` is never committed on its own: evaluation goes on in the same unit of
work)."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """A transaction and its context (asset, network, source address)."""

    tx: Transaction
    asset: Asset
    network: Network
    source: WalletAddress

    @property
    def flow(self) -> Flow:
        return FLOWS[self.network.kind]


def load(
    runtime: PipelineRuntime, uow: UnitOfWork, workspace_id: str, tx_id: str, *, lock: bool
) -> Loaded | None:
    """The transaction (locked if asked) and its context (read once per runtime:
    :class:`.runtime.ContextCache`). A transaction this database transaction has already
    locked (:func:`load_many`) is not read again."""
    if lock:
        locked = transaction_scoped(uow.session, "pipeline_locked").get(tx_id)
        if locked is not None:
            return _with_context(runtime, uow, workspace_id, locked)
    tx = TransactionRepository(uow.session, workspace_id).get(tx_id, lock=lock)
    if tx is None:
        return None
    if lock:
        transaction_scoped(uow.session, "pipeline_locked")[tx_id] = tx
    return _with_context(runtime, uow, workspace_id, tx)


def load_many(
    runtime: PipelineRuntime,
    uow: UnitOfWork,
    workspace_id: str,
    tx_ids: Sequence[str],
    *,
    lock: bool,
) -> dict[str, Loaded]:
    """:func:`load` of several transactions in one query (a batch); those missing are
    left out."""
    rows = TransactionRepository(uow.session, workspace_id).get_many(tx_ids, lock=lock)
    if lock:
        transaction_scoped(uow.session, "pipeline_locked").update((tx.id, tx) for tx in rows)
        # Every state change of theirs in this unit of work numbers a webhook event.
        WebhookRepository(uow.session, workspace_id).lock_sequences(
            "transaction", [tx.id for tx in rows]
        )
    return {tx.id: _with_context(runtime, uow, workspace_id, tx) for tx in rows}


def load_in(
    runtime: PipelineRuntime,
    uow: UnitOfWork,
    workspace_id: str,
    tx_id: str,
    expected: TransactionStatus,
) -> Loaded | None:
    """The transaction locked, if it is still in ``expected``."""
    loaded = load(runtime, uow, workspace_id, tx_id, lock=True)
    if loaded is None or loaded.tx.status is not expected:
        return None
    return loaded


def _with_context(
    runtime: PipelineRuntime, uow: UnitOfWork, workspace_id: str, tx: Transaction
) -> Loaded:
    key = (workspace_id, tx.wallet_id, tx.source_address_id)
    cached = runtime.contexts.get(key)
    if cached is None:
        wallets = WalletRepository(uow.session, workspace_id)
        wallet = wallets.get(tx.wallet_id)
        assert wallet is not None
        asset = AssetRepository(uow.session, workspace_id).get(wallet.asset_id)
        assert asset is not None
        network = NetworkRepository(uow.session, workspace_id).get(asset.network_id)
        assert network is not None
        source = wallets.address(tx.source_address_id)
        assert source is not None
        if wallet.asset_id != asset.id or source.wallet_id != wallet.id:
            raise PipelineFault("the transaction's wallet, asset and address disagree")
        for row in (asset, network, source):
            uow.session.expunge(row)
        cached = (asset, network, source)
        runtime.contexts.put(key, cached)
    asset, network, source = cached
    return Loaded(tx, asset, network, source)


def before_nonces(uow: UnitOfWork, workspace_id: str) -> None:
    """Take, on PostgreSQL, the locks that come before an account's nonce counter: the
    workspace row (key share) and the workspace's audit chain head. Every pipeline
    transaction that touches a nonce takes them in that order (workspace, audit head,
    nonce counter); a confirmation that settled its nonce before its first audit event
    took the counter first and deadlocked against an evaluation appending before it
    allocated. Once per transaction; nothing on SQLite (one writer at a time)."""
    if single_writer(uow.session):
        return
    done = transaction_scoped(uow.session, "pipeline_lock_order")
    if workspace_id in done:
        return
    uow.workspaces().share(workspace_id)
    uow.audit.hold_head(workspace_id)
    done[workspace_id] = True


def initiator_email(uow: UnitOfWork, tx: Transaction) -> str:
    """The email of the user who asked for ``tx``."""
    initiator = uow.users(tx.workspace_id).get(tx.initiator_user_id)
    return initiator.email if initiator is not None else "unknown"


def move_to(
    runtime: PipelineRuntime,
    uow: UnitOfWork,
    loaded: Loaded,
    status: TransactionStatus,
    *,
    reason: str | None = None,
    details: dict[str, object] | None = None,
    mined: str | None = None,
) -> None:
    """Move ``loaded`` to ``status`` as the pipeline (the lifecycle's table decides
    whether it may), and remember the state after commit if the worker goes on from it.
    A transaction that ends from ``confirming`` ends its replacements too (``mined``:
    the id of the one in the chain)."""
    tx = loaded.tx
    replaced = tx.status is TransactionStatus.CONFIRMING and status in TERMINAL
    move(
        uow,
        tx,
        status,
        flow=loaded.flow,
        cause=Cause.PIPELINE,
        actor=PIPELINE_ACTOR,
        reason=reason,
        details=details,
    )
    if replaced:
        end_replacements_in(uow, tx, mined=mined)
    if status in HINTED:
        tx_id, key = tx.id, (tx.workspace_id, tx.wallet_id, tx.source_address_id)
        uow.after_commit(lambda: runtime.hints.remember(tx_id, status, key))
