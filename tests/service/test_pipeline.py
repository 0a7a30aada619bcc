"""The transaction pipeline end to end on a hardhat node, on SQLite and PostgreSQL:
policy allow / block / approvals, threshold ECDSA (CGGMP21, 2-of-3) signing through the
local ceremony backend with shares in custody, broadcast, confirmation, audit trail.

The signed transactions are checked by an independent verifier: eth-account recovers the
sender from the raw bytes the pipeline broadcast, and the node's receipt and balances
show the transfer happened once.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import select, text, update

from shardvault.audit import verify_chain
from shardvault.service import transactions, work_signal
from shardvault.service.errors import Forbidden
from shardvault.service.pipeline import MIN_IDLE_S, NEXT, Later, PipelineRuntime, PipelineWorker
from shardvault.service.platform import Platform
from shardvault.service.transactions import ApprovalRefused
from shardvault.store import Database
from shardvault.store.models_vaults import PipelineWork, TransactionStatus
from shardvault.store.models_webhooks import WebhookEvent
from shardvault.store.repositories_vaults import WorkQueue
from shardvault.store.types import utcnow
from tests.api.support import make_platform
from tests.chains.ethereum.hardhat import HardhatNode, hardhat_node
from tests.service.pipeline_support import (
    SANCTIONED,
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


@pytest.fixture
def platform(database: Database) -> Platform:
    return make_platform(database)


@pytest.fixture
def setup(
    platform: Platform, hardhat_node: HardhatNode, tmp_path: Path
) -> tuple[Workspace, Funded, PipelineWorker]:
    ws = make_workspace(platform)
    backend = ReusedKeygenBackend(open_custody(tmp_path / "custody"))
    funded = make_eth_vault(ws, backend, hardhat_node.url, hardhat_node.chain_id)
    fund(hardhat_node, funded.address)
    activate_policy(ws, policy_document(ws, version=1, limit_eth="1"))
    worker = PipelineWorker(platform, PipelineRuntime(backend, confirmation_poll_s=0.05))
    return ws, funded, worker


def _send(ws: Workspace, funded: Funded, amount: str, to: str = RECIPIENT) -> str:
    with ws.platform.unit_of_work() as uow:
        view = transactions.create_transaction(
            uow, ws.signer.principal, wallet_id=funded.wallet_id, destination=to, amount=amount
        )
    assert view.status == "submitted"
    return view.id


def _get(ws: Workspace, tx_id: str) -> transactions.TransactionView:
    with ws.platform.unit_of_work() as uow:
        return transactions.get_transaction(uow, ws.owner.principal, tx_id)


def _balance(node: HardhatNode, address: str) -> int:
    return int(str(node.rpc("eth_getBalance", [address, "latest"])), 16)


def test_allowed_transfer_is_signed_broadcast_and_confirmed(
    setup: tuple[Workspace, Funded, PipelineWorker], hardhat_node: HardhatNode
) -> None:
    ws, funded, worker = setup
    before = _balance(hardhat_node, RECIPIENT)
    nonce_before = int(
        str(hardhat_node.rpc("eth_getTransactionCount", [funded.address, "latest"])), 16
    )
    tx_id = _send(ws, funded, "0.5")
    worker.drain(timeout_s=60)
    view = _get(ws, tx_id)
    assert view.status == "completed", view.status_reason
    assert view.policy_rule == "small"
    assert view.nonce == nonce_before
    assert view.confirmations >= 1
    assert _balance(hardhat_node, RECIPIENT) - before == 5 * 10**17
    # eth-account, not our code, recovers the sender from the signed bytes on chain.
    assert view.signed_payload is not None
    assert Account.recover_transaction("0x" + view.signed_payload) == funded.address
    mined = hardhat_node.rpc("eth_getTransactionByHash", ["0x" + str(view.tx_hash)])
    assert isinstance(mined, dict)
    assert mined["from"].lower() == funded.address.lower()
    with ws.platform.unit_of_work() as uow:
        events = list(
            uow.session.scalars(
                text("SELECT action FROM audit_events WHERE resource_id = :id ORDER BY seq"),
                {"id": tx_id},
            )
        )
    assert events == [
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
    # Each change also went to the webhook outbox, numbered in commit order.
    with ws.platform.database.transaction() as session:
        hooks = session.execute(
            select(WebhookEvent.seq, WebhookEvent.event_type, WebhookEvent.body)
            .where(WebhookEvent.resource_id == tx_id)
            .order_by(WebhookEvent.seq)
        ).all()
    assert [h.seq for h in hooks] == list(range(1, 9))  # created + 7 state changes
    assert hooks[0].event_type == "transaction.created"
    assert json.loads(hooks[-1].body)["data"]["status"] == "completed"
    with ws.platform.unit_of_work() as uow:
        report = verify_chain(uow.session, ws.owner.principal.workspace_id, ws.platform.keyring())
    assert report.events > 20  # verify_chain raises on any break


def test_blocked_destination_never_reaches_signing(
    setup: tuple[Workspace, Funded, PipelineWorker],
) -> None:
    ws, funded, worker = setup
    tx_id = _send(ws, funded, "0.1", to=SANCTIONED)
    worker.drain(timeout_s=30)
    view = _get(ws, tx_id)
    assert view.status == "blocked"
    assert view.policy_rule == "blocked-destination"
    assert view.nonce is None
    assert view.signature is None


def test_large_transfer_waits_for_approval_then_completes(
    setup: tuple[Workspace, Funded, PipelineWorker], hardhat_node: HardhatNode
) -> None:
    ws, funded, worker = setup
    tx_id = _send(ws, funded, "2")
    worker.drain(timeout_s=30)
    view = _get(ws, tx_id)
    assert view.status == "pending_approval"
    assert view.approvals_needed == {"treasury": 1}
    # A member of no required group is refused; the refusal changes nothing.
    with (
        pytest.raises(ApprovalRefused, match="ApproverNotInGroupError"),
        ws.platform.unit_of_work() as uow,
    ):
        transactions.submit_approval(
            uow,
            ws.outsider.principal,
            tx_id,
            **ws.outsider.statement(view.intent_digest, 1),
            now=int(time.time()),
        )
    # A statement naming someone else than the caller is refused.
    with pytest.raises(Forbidden), ws.platform.unit_of_work() as uow:
        transactions.submit_approval(
            uow,
            ws.outsider.principal,
            tx_id,
            **ws.approver.statement(view.intent_digest, 1),
            now=int(time.time()),
        )
    # A bad signature is refused.
    with (
        pytest.raises(ApprovalRefused, match="BadApprovalSignatureError"),
        ws.platform.unit_of_work() as uow,
    ):
        transactions.submit_approval(
            uow,
            ws.approver.principal,
            tx_id,
            **{
                **ws.approver.statement(view.intent_digest, 1),
                "signature": ws.outsider.statement(view.intent_digest, 1)["signature"],
            },
            now=int(time.time()),
        )
    assert _get(ws, tx_id).status == "pending_approval"
    assert _get(ws, tx_id).approvals == ()
    with ws.platform.unit_of_work() as uow:
        approved = transactions.submit_approval(
            uow,
            ws.approver.principal,
            tx_id,
            **ws.approver.statement(view.intent_digest, 1),
            now=int(time.time()),
        )
    assert approved.status == "approved"
    worker.drain(timeout_s=60)
    assert _get(ws, tx_id).status == "completed"


def test_rejection_ends_the_transaction(setup: tuple[Workspace, Funded, PipelineWorker]) -> None:
    ws, funded, worker = setup
    tx_id = _send(ws, funded, "3")
    worker.drain(timeout_s=30)
    digest = _get(ws, tx_id).intent_digest
    with ws.platform.unit_of_work() as uow:
        view = transactions.submit_approval(
            uow,
            ws.approver.principal,
            tx_id,
            **ws.approver.statement(digest, 1, "reject"),
            now=int(time.time()),
        )
    assert view.status == "rejected"
    assert view.nonce is None


def test_cancel_before_signing_and_not_after(
    setup: tuple[Workspace, Funded, PipelineWorker],
) -> None:
    ws, funded, worker = setup
    tx_id = _send(ws, funded, "5")
    with ws.platform.unit_of_work() as uow:
        view = transactions.cancel_transaction(uow, ws.signer.principal, tx_id)
    assert view.status == TransactionStatus.CANCELLED.value
    worker.drain(timeout_s=10)
    assert _get(ws, tx_id).status == "cancelled"


def test_three_workers_share_the_queue_and_nonces_stay_consecutive(
    setup: tuple[Workspace, Funded, PipelineWorker], hardhat_node: HardhatNode
) -> None:
    """Workers claim with SKIP LOCKED (PostgreSQL) or under SQLite's write lock: every
    transaction completes once, with the account's next nonces, no gap, no reuse."""
    ws, funded, worker = setup
    start = int(str(hardhat_node.rpc("eth_getTransactionCount", [funded.address, "latest"])), 16)
    ids = [_send(ws, funded, "0.01") for _ in range(6)]
    workers = [PipelineWorker(ws.platform, worker.runtime, worker_id=f"w{i}") for i in range(3)]
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,)) for w in workers]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if all(_get(ws, tx_id).status == "completed" for tx_id in ids):
                break
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    views = [_get(ws, tx_id) for tx_id in ids]
    assert [v.status for v in views] == ["completed"] * 6
    assert sorted(v.nonce for v in views if v.nonce is not None) == list(range(start, start + 6))
    end = int(str(hardhat_node.rpc("eth_getTransactionCount", [funded.address, "latest"])), 16)
    assert end == start + 6


def test_the_queue_answers_when_its_next_item_can_be_claimed(
    setup: tuple[Workspace, Funded, PipelineWorker],
) -> None:
    """``next_claimable``: the earliest ``available_at``, or a live lease's end when that
    is later; ``None`` for an empty queue. An idle worker waits that long, within its
    bounds."""
    ws, funded, worker = setup
    with ws.platform.unit_of_work() as uow:
        assert WorkQueue(uow.session).next_claimable() is None
    assert worker.idle_wait(0.7) == 0.7
    tx_id = _send(ws, funded, "0.01")
    with ws.platform.unit_of_work() as uow:
        at = WorkQueue(uow.session).next_claimable()
    assert at is not None
    assert at <= utcnow()
    assert worker.idle_wait(0.7) == MIN_IDLE_S  # due already: look again almost at once
    soon = utcnow() + timedelta(seconds=0.4)
    with ws.platform.unit_of_work() as uow:
        WorkQueue(uow.session).enqueue(ws.owner.principal.workspace_id, tx_id, soon)
    with ws.platform.unit_of_work() as uow:
        assert WorkQueue(uow.session).next_claimable() == soon
    assert 0.2 < worker.idle_wait(0.7) <= 0.4
    assert worker.idle_wait(0.1) == 0.1
    leased = utcnow() + timedelta(seconds=30)
    with ws.platform.unit_of_work() as uow:
        uow.session.execute(
            update(PipelineWork)
            .where(PipelineWork.transaction_id == tx_id)
            .values(available_at=utcnow() - timedelta(seconds=1), lease_until=leased)
        )
    with ws.platform.unit_of_work() as uow:
        assert WorkQueue(uow.session).next_claimable() == leased


def test_an_idle_worker_does_not_poll_the_queue_in_a_tight_loop(
    setup: tuple[Workspace, Funded, PipelineWorker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing queued, a worker claims (a write transaction) once and then sleeps
    for ``max_idle_s``, instead of claiming every few milliseconds; work this process
    commits wakes it at once (an item released for later is taken when it falls due:
    ``idle_wait``, above)."""
    ws, funded, worker = setup
    claims: list[float] = []
    original = WorkQueue.claim

    def counted(self: WorkQueue, *args: object, **kwargs: object) -> list[PipelineWork]:
        claims.append(time.monotonic())
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(WorkQueue, "claim", counted)
    while work_signal.wait_for_work(0.0):  # signals earlier tests in this process left
        pass
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), kwargs={"max_idle_s": 5.0})
    thread.start()
    try:
        time.sleep(1.0)
        assert len(claims) == 1  # the old loop: one every 50 ms
        started = time.monotonic()
        tx_id = _send(ws, funded, "0.01")  # commits and signals: taken at once
        deadline = time.monotonic() + 60
        while _get(ws, tx_id).status != "completed" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _get(ws, tx_id).status == "completed"
        assert claims[1] - started < 2.0  # woken, not the 5 s idle timeout
    finally:
        stop.set()
        work_signal.work_committed()  # wake it from its idle wait to see the stop
        thread.join(timeout=30)
    assert not thread.is_alive()


def test_signature_finished_before_its_predecessor_waits_for_it_instead_of_failing(
    setup: tuple[Workspace, Funded, PipelineWorker], hardhat_node: HardhatNode
) -> None:
    """Signing rounds finish out of nonce order under load. Hardhat's automine refuses
    a nonce gap ("nonce too high"); the later transaction waits in ``broadcasting``
    (it used to fail, leaving its nonce in flight and the address stuck), and goes out
    once the earlier one has."""
    ws, funded, worker = setup
    pipeline = worker.pipeline
    first, second = _send(ws, funded, "0.01"), _send(ws, funded, "0.01")
    # One step each: policy, serialization, the signing round, into broadcasting.
    for tx_id in (first, second):
        assert pipeline.advance(ws.owner.principal.workspace_id, tx_id) == NEXT
        assert _get(ws, tx_id).status == "broadcasting"
    assert _get(ws, second).nonce == _get(ws, first).nonce + 1  # type: ignore[operator]
    # The second is sent first: refused for the gap, it waits; nothing failed.
    wait = pipeline.advance(ws.owner.principal.workspace_id, second)
    assert wait == Later(worker.runtime.nonce_order_wait_s)
    assert _get(ws, second).status == "broadcasting"
    # Refused again, it waits longer (a gap nothing fills must not busy the workers).
    assert pipeline.advance(ws.owner.principal.workspace_id, second) == Later(
        2 * worker.runtime.nonce_order_wait_s
    )
    assert _get(ws, second).status == "broadcasting"
    # The first goes out and wakes the second, which then goes out too.
    assert pipeline.advance(ws.owner.principal.workspace_id, first) == NEXT
    assert _get(ws, first).status == "confirming"
    with ws.platform.unit_of_work(read_only=True) as uow:
        due = uow.session.scalar(
            select(PipelineWork.available_at).where(PipelineWork.transaction_id == second)
        )
    assert due is not None
    assert due <= utcnow()
    worker.drain(timeout_s=60)
    views = [_get(ws, tx_id) for tx_id in (first, second)]
    assert [v.status for v in views] == ["completed", "completed"], views[1].status_reason
    end = int(str(hardhat_node.rpc("eth_getTransactionCount", [funded.address, "latest"])), 16)
    assert end == views[1].nonce + 1  # type: ignore[operator]


def test_velocity_limit_counts_earlier_transfers_in_its_window(
    setup: tuple[Workspace, Funded, PipelineWorker],
) -> None:
    """With a velocity rule the evaluation reads the window's history (and only with
    one: policies without velocity conditions skip the history query)."""
    ws, funded, worker = setup
    document = policy_document(ws, version=2, limit_eth="1")
    rules = document["rules"]
    assert isinstance(rules, list)
    rules.insert(
        0,
        {
            "name": "two-per-hour",
            "when": {
                "velocity": [{"window": "1h", "per": "wallet", "measure": "count", "over": 2}]
            },
            "action": "block",
        },
    )
    activate_policy(ws, document)
    first, second = _send(ws, funded, "0.1"), _send(ws, funded, "0.1")
    worker.drain(timeout_s=60)
    third = _send(ws, funded, "0.1")
    worker.drain(timeout_s=30)
    assert [_get(ws, t).status for t in (first, second)] == ["completed", "completed"]
    blocked = _get(ws, third)
    assert blocked.status == "blocked"
    assert blocked.policy_rule == "two-per-hour"
    assert blocked.nonce is None


class _SlowSigner(ReusedKeygenBackend):
    """A backend whose every signature takes longer than the pipeline's lease (a quorum
    failing over to another, say)."""

    def __init__(self, custody, delay_s: float) -> None:  # type: ignore[no-untyped-def]
        super().__init__(custody)
        self.delay_s = delay_s
        self.signed = 0

    def sign(self, request):  # type: ignore[no-untyped-def]
        self.signed += 1
        time.sleep(self.delay_s)
        return super().sign(request)


def test_a_signature_longer_than_the_lease_is_not_signed_again_by_another_worker(
    platform: Platform, hardhat_node: HardhatNode, tmp_path: Path
) -> None:
    """The worker that holds a transfer renews its lease while it works, so a second
    worker never claims it meanwhile: one signing attempt, one signature."""
    ws = make_workspace(platform)
    backend = _SlowSigner(open_custody(tmp_path / "custody"), delay_s=2.0)
    funded = make_eth_vault(ws, backend, hardhat_node.url, hardhat_node.chain_id)
    fund(hardhat_node, funded.address)
    activate_policy(ws, policy_document(ws, version=1, limit_eth="1"))
    runtime = PipelineRuntime(backend, confirmation_poll_s=0.05, lease_s=0.6)
    tx_id = _send(ws, funded, "0.01")
    workers = [PipelineWorker(platform, runtime, worker_id=f"w{i}") for i in range(2)]
    stop = threading.Event()
    threads = [
        threading.Thread(target=w.run, args=(stop,), kwargs={"max_idle_s": 0.1}) for w in workers
    ]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while _get(ws, tx_id).status != "completed" and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert _get(ws, tx_id).status == "completed"
    assert backend.signed == 1
    with platform.unit_of_work(read_only=True) as uow:
        attempts = uow.session.scalar(
            text("SELECT signing_attempts FROM transactions WHERE id = :id"), {"id": tx_id}
        )
    assert attempts == 1
