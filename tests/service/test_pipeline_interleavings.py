"""Random interleavings of pipeline steps, cancellations, approvals, batches, replacements
(a speed-up or a cancel on chain, with the node mining or holding what it gets) and
crashes on a real pipeline (SQLite, hardhat, threshold ECDSA through the local ceremony)
only ever follow the lifecycle's tables.

Each example starts from a fresh database and a hardhat snapshot (reverted after), so
examples cannot leak nonces into each other. After every rule, every transaction's audit
trail of states must be a path through its flow's table from ``submitted``, and its row
must be in the trail's last state, and every replacement's trail must be a path through
the replacement table; at the end, whatever completed (or was cancelled on chain) was
mined once, with its own nonce, as the one version its transaction carries.

The suite runs 4 examples of 12 steps; ``INTERLEAVINGS_EXAMPLES`` and
``INTERLEAVINGS_STEPS`` run more (30 steps found the teardown's wait for a transfer whose
earlier nonce belonged to a transfer later in the list, now advanced round-robin).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text

from shardvault.lifecycle import (
    REPLACEMENT_TABLE,
    TERMINAL,
    Cause,
    Flow,
    ReplacementStatus,
    TransactionStatus,
)
from shardvault.lifecycle.states import TABLES
from shardvault.service import replacements, transactions
from shardvault.service.errors import Conflict
from shardvault.service.pipeline import NEXT, Pipeline, PipelineRuntime
from shardvault.service.transactions import ApprovalRefused
from shardvault.store import Database
from tests.api.support import make_platform
from tests.chains.ethereum.hardhat import HardhatNode, hardhat_node
from tests.service.pipeline_support import (
    ReusedKeygenBackend,
    activate_policy,
    fund,
    make_eth_vault,
    make_workspace,
    open_custody,
    policy_document,
)

__all__ = ["hardhat_node"]

RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
CRASH_POINTS = (
    *(None, None),
    *("evaluating", "evaluated", "serialized", "signing", "signed", "broadcast_sent"),
    *("replacement_signing", "replacement_signed"),
)


class Crash(Exception):
    """The process dies at a named point of a step."""


def _arm(point: str | None):  # type: ignore[no-untyped-def]
    def hook(at: str) -> None:
        if at == point:
            raise Crash(at)

    return hook


def _legal_path(flow: Flow, trail: list[TransactionStatus]) -> bool:
    if not trail or trail[0] is not TransactionStatus.SUBMITTED:
        return False
    return all(
        any(cause in TABLES[flow][a].get(b, frozenset()) for cause in Cause)
        for a, b in itertools.pairwise(trail)
    )


def test_interleavings_follow_the_table(
    request: pytest.FixtureRequest, hardhat_node: HardhatNode, tmp_path: Path
) -> None:
    template: Path = request.getfixturevalue("_sqlite_template")
    backend = ReusedKeygenBackend(open_custody(tmp_path / "custody"))

    class Interleavings(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = hardhat_node.rpc("evm_snapshot", [])
            path = tmp_path / f"{uuid.uuid4().hex}.db"
            shutil.copyfile(template, path)
            self.database = Database(f"sqlite:///{path}")
            self.platform = make_platform(self.database)
            self.ws = make_workspace(self.platform)
            self.funded = make_eth_vault(self.ws, backend, hardhat_node.url, hardhat_node.chain_id)
            fund(hardhat_node, self.funded.address)
            activate_policy(self.ws, policy_document(self.ws, version=1, limit_eth="1"))
            self.start_nonce = self._chain_nonce()
            self.txs: list[str] = []
            self.crashes = 0
            self._restart()

        def _restart(self) -> None:
            """A new process: fresh caches and hints, nothing kept in memory."""
            self.runtime = PipelineRuntime(
                backend, confirmation_poll_s=0.01, broadcast_retry_s=0.01, nonce_order_wait_s=0.01
            )
            self.pipeline = Pipeline(self.platform, self.runtime)

        def _chain_nonce(self) -> int:
            answer = hardhat_node.rpc("eth_getTransactionCount", [self.funded.address, "latest"])
            return int(str(answer), 16)

        def _tx(self, index: int) -> str:
            return self.txs[index % len(self.txs)]

        def _view(self, tx_id: str) -> transactions.TransactionView:
            with self.platform.unit_of_work() as uow:
                return transactions.get_transaction(uow, self.ws.owner.principal, tx_id)

        @initialize(hold=st.booleans())
        def two_transfers(self, hold: bool) -> None:
            self.create(large=False)
            self.create(large=True)
            # Half the examples start with a node that holds what it is sent, so that
            # transfers wait in ``confirming`` for replacements.
            self.node_holds_what_it_gets(hold)

        @precondition(lambda self: len(self.txs) < 4)
        @rule(large=st.booleans())
        def create(self, large: bool) -> None:
            with self.platform.unit_of_work() as uow:
                view = transactions.create_transaction(
                    uow,
                    self.ws.signer.principal,
                    wallet_id=self.funded.wallet_id,
                    destination=RECIPIENT,
                    amount="2" if large else "0.01",
                )
            self.txs.append(view.id)

        @precondition(lambda self: bool(self.txs))
        @rule(index=st.integers(0, 3), crash=st.sampled_from(CRASH_POINTS))
        def step(self, index: int, crash: str | None) -> None:
            self.runtime.fault_hook = _arm(crash)
            try:
                self.pipeline.advance(self.ws.owner.principal.workspace_id, self._tx(index))
            except Crash:
                self.crashes += 1
                self._restart()
            finally:
                self.runtime.fault_hook = None

        @precondition(lambda self: len(self.txs) >= 2)
        @rule(crash=st.sampled_from(CRASH_POINTS))
        def batch(self, crash: str | None) -> None:
            workspace_id = self.ws.owner.principal.workspace_id
            self.runtime.fault_hook = _arm(crash)
            try:
                done = self.pipeline.evaluate_batch(workspace_id, self.txs)
                going = [t for t in self.txs if done.get(t) == NEXT]
                if going:
                    self.pipeline.finish_batch(workspace_id, going)
            except Crash:
                self.crashes += 1
                self._restart()
            finally:
                self.runtime.fault_hook = None
                self.runtime.send_order.done(self.txs)

        @precondition(lambda self: bool(self.txs))
        @rule(index=st.integers(0, 3))
        def cancel(self, index: int) -> None:
            try:
                with self.platform.unit_of_work() as uow:
                    transactions.cancel_transaction(uow, self.ws.signer.principal, self._tx(index))
            except Conflict:
                pass  # signing has started, or it is final: refused, nothing written

        @precondition(lambda self: bool(self.txs))
        @rule(index=st.integers(0, 3), verdict=st.sampled_from(["approve", "reject"]))
        def decide(self, index: int, verdict: str) -> None:
            tx_id = self._tx(index)
            view = self._view(tx_id)
            statement = self.ws.approver.statement(view.intent_digest, 1, verdict)
            try:
                with self.platform.unit_of_work() as uow:
                    transactions.submit_approval(
                        uow,
                        self.ws.approver.principal,
                        tx_id,
                        **statement,  # type: ignore[arg-type]
                        now=int(time.time()),
                    )
            except (Conflict, ApprovalRefused):
                pass  # not awaiting approval: refused, nothing written

        @precondition(lambda self: bool(self.txs))
        @rule(index=st.integers(0, 3), mode=st.sampled_from(["speed_up", "cancel"]))
        def replace(self, index: int, mode: str) -> None:
            """A replacement of a confirming transfer when there is one (else of any,
            which is refused)."""
            waiting = [t for t in self.txs if self._view(t).status == "confirming"]
            tx_id = waiting[index % len(waiting)] if waiting else self._tx(index)
            try:
                with self.platform.unit_of_work() as uow:
                    replacements.request_replacement(
                        uow, self.ws.signer.principal, tx_id, mode=mode
                    )
            except Conflict:
                pass  # not confirming, or one is being made: refused, nothing written

        @rule(hold=st.booleans())
        def node_holds_what_it_gets(self, hold: bool) -> None:
            """The node stops mining what it is sent (a stuck transfer), or mines again
            (everything it holds, at once)."""
            hardhat_node.rpc("evm_setAutomine", [not hold])
            if not hold:
                hardhat_node.rpc("evm_mine", [])

        @invariant()
        def replacements_follow_their_table(self) -> None:
            with self.platform.unit_of_work() as uow:
                rows = uow.session.execute(
                    text(
                        "SELECT action, details FROM audit_events "
                        "WHERE action LIKE 'transaction.replacement_%' ORDER BY seq"
                    )
                )
                trails: dict[str, list[ReplacementStatus]] = {}
                for action, details in rows:
                    state = action.removeprefix("transaction.replacement_")
                    if state in ReplacementStatus.__members__.values():
                        replacement = json.loads(details)["replacement"]
                        trails.setdefault(replacement, []).append(ReplacementStatus(state))
                for tx_id in self.txs:
                    for found in replacements.list_replacements(
                        uow, self.ws.owner.principal, tx_id
                    ):
                        # Its request's audit event is the trail's first, ``requested``.
                        trail = trails[found.id]
                        assert trail[0] is ReplacementStatus.REQUESTED, trail
                        for before, after in itertools.pairwise(trail):
                            assert after in REPLACEMENT_TABLE[before], trail
                        assert found.status == trail[-1].value, (found.status, trail)

        @invariant()
        def trails_follow_the_table(self) -> None:
            with self.platform.unit_of_work() as uow:
                for tx_id in self.txs:
                    actions = uow.session.scalars(
                        text(
                            "SELECT action FROM audit_events WHERE resource_id = :id "
                            "AND action LIKE 'transaction.%' ORDER BY seq"
                        ),
                        {"id": tx_id},
                    )
                    trail = [
                        TransactionStatus(a.split(".", 1)[1])
                        for a in actions
                        if a.split(".", 1)[1] in TransactionStatus.__members__.values()
                    ]
                    assert _legal_path(Flow.ONCHAIN, trail), trail
                    row = transactions.get_transaction(uow, self.ws.owner.principal, tx_id)
                    assert row.status == trail[-1].value, (row.status, trail)

        def teardown(self) -> None:
            try:
                hardhat_node.rpc("evm_setAutomine", [True])
                hardhat_node.rpc("evm_mine", [])
                workspace_id = self.ws.owner.principal.workspace_id
                deadline = time.monotonic() + 30
                # Round-robin: a transfer may wait for an earlier nonce of another.
                waiting = list(self.txs)
                while waiting and time.monotonic() < deadline:
                    moved = False
                    for tx_id in list(waiting):
                        status = TransactionStatus(self._view(tx_id).status)
                        if status in TERMINAL or status is TransactionStatus.PENDING_APPROVAL:
                            waiting.remove(tx_id)
                        elif self.pipeline.advance(workspace_id, tx_id) == NEXT:
                            moved = True
                    if not moved:
                        time.sleep(0.02)
                self.trails_follow_the_table()
                self.replacements_follow_their_table()
                views = [self._view(t) for t in self.txs]
                # Mined: completed, or cancelled on chain (a cancelled transfer with a hash).
                mined = [
                    v
                    for v in views
                    if v.status == "completed" or (v.status == "cancelled" and v.tx_hash)
                ]
                nonces = [v.nonce for v in mined]
                assert len(set(nonces)) == len(nonces)
                assert len({v.tx_hash for v in mined}) == len(mined)
                for view in mined:
                    receipt = hardhat_node.rpc(
                        "eth_getTransactionReceipt", ["0x" + str(view.tx_hash)]
                    )
                    assert isinstance(receipt, dict), view
                    with self.platform.unit_of_work() as uow:
                        found = replacements.list_replacements(
                            uow, self.ws.owner.principal, view.id
                        )
                    winners = [r for r in found if r.status == "mined"]
                    assert len(winners) <= 1
                    assert all(r.tx_hash == view.tx_hash for r in winners)
                with self.platform.unit_of_work() as uow:
                    for tx_id in self.txs:
                        for replacement in replacements.list_replacements(
                            uow, self.ws.owner.principal, tx_id
                        ):
                            event(f"replacement {replacement.mode} {replacement.status}")
                    # Every mined transfer is on chain once, and nothing else was sent.
                sent = [v for v in views if v.tx_hash is not None and v.status != "failed"]
                assert self._chain_nonce() - self.start_nonce == len(mined) == len(sent)
            finally:
                self.runtime.close()
                self.database.dispose()
                hardhat_node.rpc("evm_revert", [self.snapshot])

    run_state_machine_as_test(
        Interleavings,
        settings=settings(
            max_examples=int(os.environ.get("INTERLEAVINGS_EXAMPLES", "4")),
            stateful_step_count=int(os.environ.get("INTERLEAVINGS_STEPS", "12")),
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
