"""Transfers claimed together are evaluated, signed and sent together (a burst), on a
hardhat node, on SQLite and PostgreSQL.

A batch shares commits, the workspace lock and round trips; each transfer must still
pass through every state with its own audit and webhook events, get the address's next
nonce, and be signed and sent once. A fault in one transfer's evaluation undoes the
shared unit of work (every transfer as it was) and each then goes on alone; a signature
that fails in a batch holds up no other. The node (and eth-account, on the raw bytes)
checks the outcome.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session

from shardvault.audit import verify_chain
from shardvault.service import transactions
from shardvault.service.pipeline import (
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_SIZE,
    Later,
    PipelineFault,
    PipelineRuntime,
    PipelineWorker,
)
from shardvault.service.pipeline.adapters import ADAPTERS
from shardvault.service.pipeline.runtime import SendOrder
from shardvault.service.platform import Platform
from shardvault.service.signing import SigningError, SignRequest
from shardvault.store import Database
from shardvault.store.models import AuditEvent
from shardvault.store.models_vaults import NetworkKind, NonceAllocation, NonceState
from shardvault.store.models_webhooks import WebhookEvent
from tests.api.support import make_platform
from tests.chains.ethereum.hardhat import HardhatNode, hardhat_node
from tests.service.pipeline_support import (
    Funded,
    ReusedKeygenBackend,
    Workspace,
    activate_policy,
    fund,
    make_eth_vault,
    make_workspace,
    open_custody,
    policy_document,
)

__all__ = ["hardhat_node"]

RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"

FULL_TRAIL = [
    "transaction.submitted",
    "transaction.pending_policy",
    "transaction.approved",
    "transaction.signing",
    "transaction.signing_attempt",
    "transaction.signed",
    "transaction.broadcasting",
    "transaction.confirming",
    "transaction.completed",
]


class CountingBackend(ReusedKeygenBackend):
    """Records each ``sign_many`` call's size; fails the requests named in ``fail``
    (by their position among all requests seen) with a :class:`SigningError`."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.batches: list[int] = []
        self.fail: set[int] = set()
        self._seen = 0

    def sign_many(self, requests: Sequence[SignRequest]) -> list[bytes | SigningError]:
        self.batches.append(len(requests))
        answers: list[bytes | SigningError] = []
        for request in requests:
            index, self._seen = self._seen, self._seen + 1
            if index in self.fail:
                answers.append(SigningError(f"co-signer unreachable (test fault {index})"))
            else:
                answers.append(self.sign(request))
        return answers


@pytest.fixture
def platform(database: Database) -> Platform:
    return make_platform(database)


@pytest.fixture
def setup(
    platform: Platform, hardhat_node: HardhatNode, tmp_path: Path
) -> tuple[Workspace, Funded, CountingBackend]:
    ws = make_workspace(platform)
    backend = CountingBackend(open_custody(tmp_path / "custody"))
    funded = make_eth_vault(ws, backend, hardhat_node.url, hardhat_node.chain_id)
    fund(hardhat_node, funded.address)
    activate_policy(ws, policy_document(ws, version=1, limit_eth="1"))
    return ws, funded, backend


def _worker(ws: Workspace, backend: CountingBackend, **runtime: object) -> PipelineWorker:
    return PipelineWorker(
        ws.platform,
        PipelineRuntime(backend, confirmation_poll_s=0.05, broadcast_retry_s=0.1, **runtime),  # type: ignore[arg-type]
    )


def _send(ws: Workspace, funded: Funded, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        with ws.platform.unit_of_work() as uow:
            view = transactions.create_transaction(
                uow,
                ws.signer.principal,
                wallet_id=funded.wallet_id,
                destination=RECIPIENT,
                amount="0.01",
            )
        ids.append(view.id)
    return ids


def _get(ws: Workspace, tx_id: str) -> transactions.TransactionView:
    with ws.platform.unit_of_work() as uow:
        return transactions.get_transaction(uow, ws.owner.principal, tx_id)


def _nonce(node: HardhatNode, address: str) -> int:
    return int(str(node.rpc("eth_getTransactionCount", [address, "latest"])), 16)


def _trail(ws: Workspace, tx_id: str) -> list[str]:
    with ws.platform.unit_of_work() as uow:
        return list(
            uow.session.scalars(
                text("SELECT action FROM audit_events WHERE resource_id = :id ORDER BY seq"),
                {"id": tx_id},
            )
        )


def test_a_burst_is_evaluated_signed_and_sent_together(
    setup: tuple[Workspace, Funded, CountingBackend], hardhat_node: HardhatNode
) -> None:
    ws, funded, backend = setup
    start = _nonce(hardhat_node, funded.address)
    ids = _send(ws, funded, 5)
    worker = _worker(ws, backend)
    # One claim takes all five through every state: the node mines each at once.
    assert worker.run_once(limit=8) == 5
    assert backend.batches == [5]  # one round of requests to the backend
    views = [_get(ws, tx_id) for tx_id in ids]
    assert [v.status for v in views] == ["completed"] * 5, [v.status_reason for v in views]
    # The address's next nonces, in creation order, each mined once.
    assert [v.nonce for v in views] == list(range(start, start + 5))
    assert _nonce(hardhat_node, funded.address) == start + 5
    for view in views:
        assert view.signed_payload is not None
        assert Account.recover_transaction("0x" + view.signed_payload) == funded.address
    # Each transfer has its own full trail and its own webhook sequence.
    for tx_id in ids:
        assert _trail(ws, tx_id) == FULL_TRAIL
    with ws.platform.database.transaction() as session:
        for tx_id in ids:
            seqs = session.scalars(
                select(WebhookEvent.seq)
                .where(WebhookEvent.resource_id == tx_id)
                .order_by(WebhookEvent.seq)
            ).all()
            assert list(seqs) == list(range(1, 9))
    with ws.platform.unit_of_work() as uow:
        verify_chain(uow.session, ws.owner.principal.workspace_id, ws.platform.keyring())


def test_a_batch_flushes_per_commit_not_per_transfer(
    setup: tuple[Workspace, Funded, CountingBackend],
) -> None:
    """On SQLite every write of a batch's transfers (audit events, webhook events, nonce
    allocations, queue removals) waits for its commit's one flush: a batch of six
    flushes as often as a batch of two (a flush per transfer was most of a burst's
    database time, and rows flushed together are inserted together)."""
    ws, funded, backend = setup
    worker = _worker(ws, backend)
    flushes: list[int] = []

    def count(session: Session, *_: object) -> None:
        if session.new or session.dirty or session.deleted:
            flushes.append(1)

    per_batch = []
    event.listen(Session, "before_flush", count)
    try:
        for size in (2, 2, 6):  # the first batch also makes the address's counter rows
            ids = _send(ws, funded, size)
            flushes.clear()
            assert worker.run_once(limit=8) == size
            per_batch.append(len(flushes))
            assert [_get(ws, t).status for t in ids] == ["completed"] * size
    finally:
        event.remove(Session, "before_flush", count)
    if ws.platform.database.engine.dialect.name == "sqlite":
        assert per_batch[1] == per_batch[2], per_batch
    else:
        # PostgreSQL writes rows as they come (store.repositories.defers_writes: a flush
        # moved later changes the order of row locks, and the pipeline deadlocked).
        assert per_batch[1] < per_batch[2], per_batch


def test_a_batch_already_mined_is_confirmed_and_completed_in_one_commit(
    setup: tuple[Workspace, Funded, CountingBackend],
) -> None:
    """hardhat mines each transaction as it arrives, so the receipts are there when the
    batch records ``confirming``: the same commit records ``completed`` (one write
    transaction fewer per batch), and each transfer still has both events, in order."""
    ws, funded, backend = setup
    worker = _worker(ws, backend)
    ids = _send(ws, funded, 3)
    commits: list[list[str]] = []

    def after_flush(session: Session, _context: object) -> None:
        actions = session.info.setdefault("test_actions", [])
        actions.extend(o.action for o in session.new if isinstance(o, AuditEvent))

    def after_commit(session: Session) -> None:
        actions = session.info.pop("test_actions", [])
        if actions:
            commits.append(actions)

    event.listen(Session, "after_flush", after_flush)
    event.listen(Session, "after_commit", after_commit)
    try:
        assert worker.run_once(limit=8) == 3
    finally:
        event.remove(Session, "after_flush", after_flush)
        event.remove(Session, "after_commit", after_commit)
    assert [_get(ws, t).status for t in ids] == ["completed"] * 3
    confirming = [c for c in commits if "transaction.confirming" in c]
    assert len(confirming) == 1, commits
    assert confirming[0].count("transaction.completed") == 3, confirming
    for tx_id in ids:
        assert _trail(ws, tx_id) == FULL_TRAIL


def test_every_transaction_locks_the_audit_head_before_a_nonce_counter(
    setup: tuple[Workspace, Funded, CountingBackend],
) -> None:
    """PostgreSQL row locks are taken in one order by every pipeline transaction that
    touches a nonce: the workspace row, then its audit chain head, then the account's
    nonce counter. (A confirmation used to settle its nonce, locking the counter, before
    its first audit event; an evaluation appends before it allocates: the two
    deadlocked under load.) On SQLite there are no row locks: the test reads the order
    of the statements only on PostgreSQL."""
    ws, funded, backend = setup
    engine = ws.platform.database.engine
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite serializes writers; no row locks to order")
    worker = _worker(ws, backend)
    locks: dict[int, list[str]] = {}
    orders: list[list[str]] = []

    def on_statement(conn: object, _cursor: object, statement: str, *_: object) -> None:
        sql = " ".join(statement.split()).lower()
        taken = locks.setdefault(id(conn), [])
        if "from workspaces" in sql and " for " in sql:  # any row lock
            taken.append("workspace")
        elif "from audit_chain_heads" in sql and "for update" in sql:
            taken.append("audit head")
        elif "from nonce_counters" in sql and "for update" in sql:
            taken.append("nonce counter")

    def on_end(conn: object) -> None:
        taken = locks.pop(id(conn), [])
        if "nonce counter" in taken:
            orders.append(list(dict.fromkeys(taken)))

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_end)
    event.listen(engine, "rollback", on_end)
    try:
        ids = _send(ws, funded, 3)
        assert worker.run_once(limit=8) == 3  # evaluation, confirmation, completion
        assert [_get(ws, t).status for t in ids] == ["completed"] * 3
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "commit", on_end)
        event.remove(engine, "rollback", on_end)
    assert len(orders) >= 2  # the evaluation's allocations and the confirmation's settles
    for order in orders:
        assert order == ["workspace", "audit head", "nonce counter"], orders


def test_a_cancellation_during_an_evaluation_does_not_deadlock(
    setup: tuple[Workspace, Funded, CountingBackend], caplog: pytest.LogCaptureFixture
) -> None:
    """A cancellation locks its transaction's row, then inserts its audit and webhook
    events (whose foreign key takes FOR KEY SHARE on the workspace row); an evaluation
    locks the workspace row, then its transactions' rows. With the cancellation holding
    A's row and the evaluation holding the workspace, each waited for the other while
    the evaluation's workspace lock was FOR UPDATE, and PostgreSQL aborted one of them
    as a deadlock. The two statements are put in that order here by pausing each
    thread at its lock; SQLite serializes writers, so there is nothing to order."""
    ws, funded, backend = setup
    engine = ws.platform.database.engine
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite serializes writers; no row locks to order")
    worker = _worker(ws, backend)
    first, second = _send(ws, funded, 2)
    canceller = threading.current_thread()  # replaced by the cancelling thread below
    row_held, workspace_held = threading.Event(), threading.Event()

    def before(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sql = " ".join(statement.split()).lower()
        evaluating = threading.current_thread() is not canceller
        if evaluating and "from workspaces" in sql and " for " in sql:
            assert row_held.wait(10), "the cancellation never locked its row"

    def after(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sql = " ".join(statement.split()).lower()
        if threading.current_thread() is canceller:
            if "from transactions" in sql and "for update" in sql:
                row_held.set()
                assert workspace_held.wait(10), "the evaluation never locked the workspace"
        elif "from workspaces" in sql and " for " in sql:
            workspace_held.set()

    outcome: list[object] = []

    def cancel() -> None:
        try:
            with ws.platform.unit_of_work() as uow:
                view = transactions.cancel_transaction(uow, ws.owner.principal, first)
            outcome.append(view.status)
        except Exception as exc:  # the test reports what went wrong
            outcome.append(exc)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        canceller = threading.Thread(target=cancel)
        canceller.start()
        with caplog.at_level("WARNING", logger="shardvault.service.pipeline"):
            assert worker.run_once(limit=8) == 2
        canceller.join(30)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    assert outcome == ["cancelled"], outcome
    assert not [r for r in caplog.records if "one at a time" in r.getMessage()], caplog.text
    assert _get(ws, first).status == "cancelled"
    deadline = time.monotonic() + 30
    while _get(ws, second).status != "completed" and time.monotonic() < deadline:
        worker.run_once(limit=8)
    assert _get(ws, second).status == "completed"


def test_a_fault_in_one_evaluation_undoes_the_batch_and_each_goes_on_alone(
    setup: tuple[Workspace, Funded, CountingBackend], hardhat_node: HardhatNode
) -> None:
    """The second transfer's evaluation faults inside the shared unit of work: nothing
    of the batch is committed (no state, no nonce, no audit event), and the single
    path then takes every transfer through once."""
    ws, funded, backend = setup
    start = _nonce(hardhat_node, funded.address)
    ids = _send(ws, funded, 3)
    calls: list[str] = []

    def hook(point: str) -> None:
        if point == "evaluating":
            calls.append(point)
            if len(calls) == 2:
                raise PipelineFault("test fault in the second evaluation")

    worker = _worker(ws, backend, fault_hook=hook)
    worker.run_once(limit=8)
    assert backend.batches == []  # the batch never reached the backend
    assert len(calls) == 2 + 3  # two in the undone batch, then one each alone
    views = [_get(ws, tx_id) for tx_id in ids]
    assert [v.status for v in views] == ["completed"] * 3, [v.status_reason for v in views]
    assert [v.nonce for v in views] == list(range(start, start + 3))
    for tx_id in ids:
        assert _trail(ws, tx_id) == FULL_TRAIL  # one of each: the undone batch left none
    assert _nonce(hardhat_node, funded.address) == start + 3


def test_a_failed_signature_in_a_batch_holds_up_no_other(
    setup: tuple[Workspace, Funded, CountingBackend],
    hardhat_node: HardhatNode,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The middle signature fails: the first transfer goes out, the last is refused by
    the node for the gap and waits (not for this process's hold on the failed nonce,
    which is let go), the middle one is signed again later with its nonce, and then
    both go out; nothing fails and no nonce is skipped."""
    ws, funded, backend = setup
    start = _nonce(hardhat_node, funded.address)
    ids = _send(ws, funded, 3)
    backend.fail = {1}
    worker = _worker(ws, backend, nonce_order_wait_s=0.1)
    waits: list[float] = []
    wait_turn = worker.runtime.send_order.wait_turn

    def timed_wait_turn(*args: object) -> None:
        began = time.monotonic()
        try:
            wait_turn(*args)  # type: ignore[arg-type]
        finally:
            waits.append(time.monotonic() - began)

    monkeypatch.setattr(worker.runtime.send_order, "wait_turn", timed_wait_turn)
    worker.run_once(limit=8)
    # The last send did not wait out the failed nonce's hold (5 s). Timed around the
    # wait itself: the whole batch takes seconds on a slow machine.
    assert waits
    assert max(waits) < 2.0, waits
    first, middle, last = (_get(ws, tx_id) for tx_id in ids)
    assert first.status == "completed"
    assert middle.status == "signing"
    assert last.status == "broadcasting"
    worker.drain(timeout_s=60, until=lambda: all(_get(ws, t).status == "completed" for t in ids))
    views = [_get(ws, tx_id) for tx_id in ids]
    assert [v.status for v in views] == ["completed"] * 3, [v.status_reason for v in views]
    assert [v.nonce for v in views] == list(range(start, start + 3))
    assert _trail(ws, ids[1]).count("transaction.signing_attempt") == 2
    assert _nonce(hardhat_node, funded.address) == start + 3
    with ws.platform.database.transaction() as session:
        released = session.scalar(
            select(func.count())
            .select_from(NonceAllocation)
            .where(NonceAllocation.state == NonceState.RELEASED)
        )
    assert released == 0


def test_two_workers_bursts_reach_the_node_in_nonce_order(
    setup: tuple[Workspace, Funded, CountingBackend],
    hardhat_node: HardhatNode,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two workers each take a batch of one address; whichever signs first, the later
    nonces wait for this process to send the earlier ones, so the node refuses none."""
    ws, funded, backend = setup
    start = _nonce(hardhat_node, funded.address)
    ids = _send(ws, funded, 8)
    # Two workers of one server: they share its runtime (and its send order).
    first = _worker(ws, backend)
    workers = [first, PipelineWorker(ws.platform, first.runtime)]
    refused: list[str] = []
    evm = ADAPTERS[NetworkKind.EVM]
    original = evm.send

    def counting(runtime, loaded, *, fresh):  # type: ignore[no-untyped-def]
        outcome = original(runtime, loaded, fresh=fresh)
        if isinstance(outcome, Later):
            refused.append(loaded.tx.id)
        return outcome

    monkeypatch.setattr(evm, "send", counting)
    threads = [threading.Thread(target=w.run_once, kwargs={"limit": 4}) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    workers[0].drain(timeout_s=60)
    views = [_get(ws, tx_id) for tx_id in ids]
    assert [v.status for v in views] == ["completed"] * 8, [v.status_reason for v in views]
    assert sorted(v.nonce for v in views if v.nonce is not None) == list(range(start, start + 8))
    assert refused == []
    assert _nonce(hardhat_node, funded.address) == start + 8


def test_send_order_waits_for_the_held_previous_nonce_only() -> None:
    order = SendOrder()
    # Nothing held: no wait.
    began = time.monotonic()
    order.wait_turn(1, "0xabc", 5, timeout=5.0)
    assert time.monotonic() - began < 0.5
    # Nonce 4 held: the send of 5 waits until it is let go (from another thread).
    order.hold("tx-4", 1, "0xabc", 4)
    order.hold("tx-other", 1, "0xdef", 4)  # another address: not waited for
    timer = threading.Timer(0.3, order.done, args=(["tx-4"],))
    timer.start()
    began = time.monotonic()
    order.wait_turn(1, "0xabc", 5, timeout=5.0)
    waited = time.monotonic() - began
    timer.join()
    assert 0.2 < waited < 4.0
    # A hold nobody lets go is waited for no longer than the timeout.
    order.hold("tx-6", 1, "0xabc", 6)
    began = time.monotonic()
    order.wait_turn(1, "0xabc", 7, timeout=0.2)
    assert 0.15 < time.monotonic() - began < 2.0
    order.done(["tx-6", "tx-other", "never-held"])
    order.wait_turn(1, "0xdef", 5, timeout=5.0)  # returns at once


def test_a_worker_claims_its_batch_size(
    setup: tuple[Workspace, Funded, CountingBackend],
) -> None:
    """The worker's batch size bounds a claim (the server's `--pipeline-batch`); the rest
    waits for the next one."""
    ws, funded, backend = setup
    ids = _send(ws, funded, 5)
    worker = PipelineWorker(
        ws.platform, PipelineRuntime(backend, confirmation_poll_s=0.05), batch_size=3
    )
    assert worker.run_once() == 3
    assert backend.batches == [3]
    assert worker.run_once() == 2
    assert [_get(ws, t).status for t in ids] == ["completed"] * 5
    assert PipelineWorker(ws.platform, PipelineRuntime(backend)).batch_size == DEFAULT_BATCH_SIZE
    for bad in (0, MAX_BATCH_SIZE + 1):
        with pytest.raises(ValueError, match="batch_size"):
            PipelineWorker(ws.platform, PipelineRuntime(backend), batch_size=bad)
