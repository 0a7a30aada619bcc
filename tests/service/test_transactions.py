"""Transaction requests and policy versions at the service layer (SQLite, PostgreSQL):
bad input is refused with a typed error and changes nothing (no row, no queue entry, no
audit event); the policy life cycle refuses unsigned, wrongly signed, out-of-order and
foreign bundles.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from shardvault.service import policies, transactions, wallets
from shardvault.service.errors import Conflict, Forbidden, NotFound, ValidationError
from shardvault.service.pipeline import PipelineRuntime, PipelineWorker
from shardvault.service.policies import BundleRefused, PolicyRefused
from shardvault.service.transactions import ApprovalRefused
from shardvault.store import Database, downgrade, migrate
from shardvault.store.models import AuditEvent
from shardvault.store.models_vaults import PipelineWork, Transaction
from tests.api.support import make_platform
from tests.service.pipeline_support import (
    Funded,
    ReusedKeygenBackend,
    Workspace,
    activate_policy,
    make_eth_vault,
    make_workspace,
    open_custody,
    policy_document,
)

GOOD = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture
def setup(database: Database, tmp_path: Path) -> tuple[Workspace, Funded]:
    ws = make_workspace(make_platform(database))
    backend = ReusedKeygenBackend(open_custody(tmp_path / "custody"))
    return ws, make_eth_vault(ws, backend, "http://127.0.0.1:1", 31337)


def _counts(ws: Workspace) -> tuple[int, int, int]:
    with ws.platform.database.transaction() as session:
        return (
            int(session.scalar(select(func.count()).select_from(Transaction)) or 0),
            int(session.scalar(select(func.count()).select_from(PipelineWork)) or 0),
            int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0),
        )


@pytest.mark.parametrize(
    ("destination", "amount", "field"),
    [
        ("0x70997970c51812dc3A010C7d01b50e0d17dc79C8", "1", "destination"),  # bad checksum
        ("0x7099797", "1", "destination"),
        ("alice.eth", "1", "destination"),
        (GOOD, "0", "amount"),
        (GOOD, "-1", "amount"),
        (GOOD, "1e3", "amount"),
        (GOOD, "0.0000000000000000001", "amount"),  # 19 decimals
        (GOOD, "1,5", "amount"),
    ],
)
def test_bad_transfer_is_refused_and_changes_nothing(
    setup: tuple[Workspace, Funded], destination: str, amount: str, field: str
) -> None:
    ws, funded = setup
    before = _counts(ws)
    with pytest.raises(ValidationError) as refused, ws.platform.unit_of_work() as uow:
        transactions.create_transaction(
            uow,
            ws.signer.principal,
            wallet_id=funded.wallet_id,
            destination=destination,
            amount=amount,
        )
    assert refused.value.field == field
    assert _counts(ws) == before


def test_unknown_wallet_role_and_other_workspace(setup: tuple[Workspace, Funded]) -> None:
    ws, funded = setup
    with pytest.raises(NotFound), ws.platform.unit_of_work() as uow:
        transactions.create_transaction(
            uow, ws.signer.principal, wallet_id="nope", destination=GOOD, amount="1"
        )
    with pytest.raises(Forbidden), ws.platform.unit_of_work() as uow:
        transactions.create_transaction(
            uow, ws.viewer.principal, wallet_id=funded.wallet_id, destination=GOOD, amount="1"
        )
    with pytest.raises(Forbidden), ws.platform.unit_of_work() as uow:
        transactions.create_transaction(
            uow, ws.approver.principal, wallet_id=funded.wallet_id, destination=GOOD, amount="1"
        )
    other = make_workspace(ws.platform, "globex")
    with pytest.raises(NotFound), ws.platform.unit_of_work() as uow:
        transactions.create_transaction(
            uow, other.owner.principal, wallet_id=funded.wallet_id, destination=GOOD, amount="1"
        )
    with ws.platform.unit_of_work() as uow:
        tx = transactions.create_transaction(
            uow, ws.signer.principal, wallet_id=funded.wallet_id, destination=GOOD, amount="1.5"
        )
    assert tx.amount_base_units == str(15 * 10**17)
    with pytest.raises(NotFound), ws.platform.unit_of_work() as uow:
        transactions.get_transaction(uow, other.owner.principal, tx.id)
    with pytest.raises(Conflict), ws.platform.unit_of_work() as uow:
        transactions.submit_approval(
            uow,
            ws.approver.principal,
            tx.id,
            approver=ws.approver.email,
            decision="approve",
            policy_version=1,
            signed_at=int(time.time()),
            signature="00" * 64,
            now=int(time.time()),
        )


def test_a_transfer_spends_from_the_address_it_names(setup: tuple[Workspace, Funded]) -> None:
    ws, funded = setup
    with ws.platform.unit_of_work() as uow:
        extra = [wallets.new_address(uow, ws.owner.principal, funded.wallet_id) for _ in range(2)]
    for address in extra:
        with ws.platform.unit_of_work() as uow:
            tx = transactions.create_transaction(
                uow,
                ws.signer.principal,
                wallet_id=funded.wallet_id,
                destination=GOOD,
                amount="1",
                source_index=address.index,
            )
        assert tx.source_address == address.address
    before = _counts(ws)
    with pytest.raises(NotFound) as missing, ws.platform.unit_of_work() as uow:
        transactions.create_transaction(
            uow,
            ws.signer.principal,
            wallet_id=funded.wallet_id,
            destination=GOOD,
            amount="1",
            source_index=extra[-1].index + 1,
        )
    assert missing.value.resource == "address"
    assert _counts(ws) == before


def test_policy_life_cycle_refusals(setup: tuple[Workspace, Funded]) -> None:
    ws, _ = setup
    owner = ws.owner.principal
    document = policy_document(ws, version=1, limit_eth="1")
    document["rules"][1]["when"]["amuont"] = {}  # type: ignore[index]
    with pytest.raises(PolicyRefused, match="amuont"), ws.platform.unit_of_work() as uow:
        policies.create_draft(uow, owner, document=document)
    with pytest.raises(Forbidden), ws.platform.unit_of_work() as uow:
        policies.create_draft(
            uow, ws.signer.principal, document=policy_document(ws, version=1, limit_eth="1")
        )
    with ws.platform.unit_of_work() as uow:
        draft = policies.create_draft(
            uow, owner, document=policy_document(ws, version=1, limit_eth="1")
        )
    # The first bundle needs the admin set to pin.
    with pytest.raises(ValidationError, match="admins"), ws.platform.unit_of_work() as uow:
        policies.propose(uow, owner, draft.id)
    version = activate_policy(ws, policy_document(ws, version=1, limit_eth="1"))
    assert version == 1
    # A second bundle must be version 2; then an outsider's and a bad signature are
    # refused, and activation without the quorum is refused.
    with ws.platform.unit_of_work() as uow:
        skipped = policies.create_draft(
            uow, owner, document=policy_document(ws, version=3, limit_eth="2")
        )
    with (
        pytest.raises(Conflict, match="next policy version is 2"),
        ws.platform.unit_of_work() as uow,
    ):
        policies.propose(uow, owner, skipped.id)
    with ws.platform.unit_of_work() as uow:
        second = policies.create_draft(
            uow, owner, document=policy_document(ws, version=2, limit_eth="2")
        )
        proposed = policies.propose(uow, owner, second.id)
    assert proposed.signing_message is not None
    message = bytes.fromhex(proposed.signing_message)
    with pytest.raises(PolicyRefused, match="admin set"), ws.platform.unit_of_work() as uow:
        policies.sign(
            uow,
            owner,
            second.id,
            signer="mallory",
            signature=Ed25519PrivateKey.generate().sign(message).hex(),
        )
    with pytest.raises(PolicyRefused, match="does not verify"), ws.platform.unit_of_work() as uow:
        policies.sign(
            uow,
            owner,
            second.id,
            signer="admin",
            signature=Ed25519PrivateKey.generate().sign(message).hex(),
        )
    with pytest.raises(BundleRefused, match="quorum"), ws.platform.unit_of_work() as uow:
        policies.activate(uow, owner, second.id)
    with ws.platform.unit_of_work() as uow:
        policies.sign(
            uow, owner, second.id, signer="admin", signature=ws.admin_key.sign(message).hex()
        )
        active = policies.activate(uow, owner, second.id)
        listed = {p.version: p.status for p in policies.list_policies(uow, owner) if p.bundle}
    assert active.version == 2
    assert listed == {1: "superseded", 2: "active"}
    with pytest.raises(Conflict), ws.platform.unit_of_work() as uow:
        policies.activate(uow, owner, second.id)


def _pending(
    ws: Workspace, funded: Funded, tmp_path: Path, count: int
) -> transactions.TransactionView:
    """A transfer held for ``count`` treasury approvals (approver and outsider), 1h."""
    document = {
        "format": "shardvault.policy/v1",
        "version": 1,
        "reference_currency": "USD",
        "approvers": {
            m.email: {"algorithm": "ed25519", "public_key": m.approval_public_hex}
            for m in (ws.approver, ws.outsider)
        },
        "groups": {"treasury": [ws.approver.email, ws.outsider.email]},
        "rules": [
            {
                "name": "treasury",
                "action": "require_approvals",
                "approvals": {
                    "groups": [{"group": "treasury", "count": count}],
                    "deadline": "1h",
                },
            }
        ],
    }
    activate_policy(ws, document)
    with ws.platform.unit_of_work() as uow:
        tx = transactions.create_transaction(
            uow, ws.signer.principal, wallet_id=funded.wallet_id, destination=GOOD, amount="1"
        )
    # Policy evaluation needs no node: one pass of a worker takes it to pending_approval.
    backend = ReusedKeygenBackend(open_custody(tmp_path / "worker"))  # never signs here
    PipelineWorker(ws.platform, PipelineRuntime(backend)).run_once()
    with ws.platform.unit_of_work() as uow:
        view = transactions.get_transaction(uow, ws.owner.principal, tx.id)
    assert view.status == "pending_approval"
    assert view.approvals_needed == {"treasury": count}
    return view


def test_two_approvals_count_down_then_approve(
    setup: tuple[Workspace, Funded], tmp_path: Path
) -> None:
    ws, funded = setup
    view = _pending(ws, funded, tmp_path, 2)
    statuses = []
    for member in (ws.approver, ws.outsider):
        with ws.platform.unit_of_work() as uow:
            after = transactions.submit_approval(
                uow,
                member.principal,
                view.id,
                **member.statement(view.intent_digest, 1),
                now=int(time.time()),
            )
        statuses.append((after.status, after.approvals_needed))
    assert statuses == [("pending_approval", {"treasury": 1}), ("approved", {})]


HOUR = 3600


@pytest.mark.parametrize(
    ("signed_ago", "error"),
    [(2 * HOUR, "ApprovalExpiredError"), (-HOUR, "ApprovalFromTheFutureError")],
    ids=["two-hours-old", "an-hour-ahead"],
)
def test_an_expired_or_future_statement_is_refused_and_stores_nothing(
    setup: tuple[Workspace, Funded], tmp_path: Path, signed_ago: int, error: str
) -> None:
    ws, funded = setup
    view = _pending(ws, funded, tmp_path, 1)
    now = int(time.time())
    before = _counts(ws)
    statement = ws.approver.statement(view.intent_digest, 1, signed_at=now - signed_ago)
    # ApprovalRefused is a Forbidden: 403 approval-refused at the API.
    with pytest.raises(ApprovalRefused, match=error), ws.platform.unit_of_work() as uow:
        transactions.submit_approval(uow, ws.approver.principal, view.id, **statement, now=now)
    assert _counts(ws) == before
    with ws.platform.unit_of_work() as uow:
        after = transactions.get_transaction(uow, ws.owner.principal, view.id)
    assert (after.status, after.approvals) == ("pending_approval", ())


def test_a_statement_dated_before_the_transaction_is_refused(
    setup: tuple[Workspace, Funded], tmp_path: Path
) -> None:
    """Alive or not, a statement cannot have been signed before the transaction (its id
    is in the digest) beyond the clock skew allowed; its lifetime would end before the
    transaction's deadline."""
    ws, funded = setup
    view = _pending(ws, funded, tmp_path, 1)
    created = int(view.created_at.timestamp())
    now = created + 60
    early = ws.approver.statement(view.intent_digest, 1, signed_at=created - 301)
    with (
        pytest.raises(ApprovalRefused, match="before transaction"),
        ws.platform.unit_of_work() as uow,
    ):
        transactions.submit_approval(uow, ws.approver.principal, view.id, **early, now=now)
    skewed = ws.approver.statement(view.intent_digest, 1, signed_at=created - 300)
    with ws.platform.unit_of_work() as uow:
        after = transactions.submit_approval(uow, ws.approver.principal, view.id, **skewed, now=now)
    assert after.status == "approved"
    assert [a.signed_at for a in after.approvals] == [created - 300]


def test_an_approval_stops_counting_when_its_lifetime_ends(
    setup: tuple[Workspace, Funded], tmp_path: Path
) -> None:
    """Two approvals needed within 1h. The first, signed 299 s before the transaction
    was created (clock skew), has expired when the second comes 56 minutes later, still
    before the transaction's own deadline: the transaction keeps waiting for one."""
    ws, funded = setup
    view = _pending(ws, funded, tmp_path, 2)
    created = int(view.created_at.timestamp())
    first = ws.approver.statement(view.intent_digest, 1, signed_at=created - 299)
    with ws.platform.unit_of_work() as uow:
        after = transactions.submit_approval(
            uow, ws.approver.principal, view.id, **first, now=created + 10
        )
    assert (after.status, after.approvals_needed) == ("pending_approval", {"treasury": 1})
    later = created + 56 * 60
    assert view.approval_deadline is not None
    assert later < view.approval_deadline
    second = ws.outsider.statement(view.intent_digest, 1, signed_at=later)
    with ws.platform.unit_of_work() as uow:
        after = transactions.submit_approval(
            uow, ws.outsider.principal, view.id, **second, now=later
        )
    assert (after.status, after.approvals_needed) == ("pending_approval", {"treasury": 1})


def test_the_upgrade_drops_v1_statements_of_transactions_still_waiting(
    setup: tuple[Workspace, Funded], tmp_path: Path
) -> None:
    """Statements stored before format v2 have no signed time (migration 0005): those of
    a transaction still waiting for approvals are removed, so their approvers can sign
    again; a finished transaction keeps its record."""
    ws, funded = setup
    waiting = _pending(ws, funded, tmp_path, 2)
    with ws.platform.unit_of_work() as uow:
        transactions.submit_approval(
            uow,
            ws.approver.principal,
            waiting.id,
            **ws.approver.statement(waiting.intent_digest, 1),
            now=int(time.time()),
        )
    with ws.platform.unit_of_work() as uow:
        finished = transactions.create_transaction(
            uow, ws.signer.principal, wallet_id=funded.wallet_id, destination=GOOD, amount="2"
        )
    backend = ReusedKeygenBackend(open_custody(tmp_path / "worker-2"))
    PipelineWorker(ws.platform, PipelineRuntime(backend)).run_once()
    with ws.platform.unit_of_work() as uow:
        finished = transactions.get_transaction(uow, ws.owner.principal, finished.id)
        rejected = transactions.submit_approval(
            uow,
            ws.outsider.principal,
            finished.id,
            **ws.outsider.statement(finished.intent_digest, 1, "reject"),
            now=int(time.time()),
        )
    assert rejected.status == "rejected"
    url = ws.platform.database.engine.url
    ws.platform.database.engine.dispose()
    try:
        downgrade(url, "0004_paired_cosigners")
    finally:
        migrate(url)
    with ws.platform.unit_of_work() as uow:
        waiting_after = transactions.get_transaction(uow, ws.owner.principal, waiting.id)
        finished_after = transactions.get_transaction(uow, ws.owner.principal, finished.id)
    assert waiting_after.approvals == ()
    assert [(a.approver, a.signed_at) for a in finished_after.approvals] == [
        (ws.outsider.email, None)
    ]
    with ws.platform.unit_of_work() as uow:
        again = transactions.submit_approval(
            uow,
            ws.approver.principal,
            waiting.id,
            **ws.approver.statement(waiting.intent_digest, 1),
            now=int(time.time()),
        )
    assert again.approvals_needed == {"treasury": 1}
