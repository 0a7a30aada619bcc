"""Crash tests (DESIGN.md invariant 6, issue 7 "Crash tests"): a worker process is
SIGKILLed while a transaction is in policy evaluation, in signing, and right after its
broadcast reached the node but before that was recorded. A new worker process, started
after the dead one's lease expired, finishes the transaction: it completes exactly once,
the hardhat node holds exactly one transaction from the vault's address for it, and the
account's nonce moved by exactly one (no gap, no reuse).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from shardvault.audit import AuditSigner
from shardvault.service import transactions
from shardvault.service.platform import Platform
from shardvault.store import Database
from shardvault.store.models import AuditEvent
from shardvault.store.models_vaults import NonceAllocation, NonceState, Transaction
from tests.api.support import TEST_SETTINGS
from tests.chains.ethereum.hardhat import HardhatNode, hardhat_node
from tests.service.pipeline_support import (
    REPO_ROOT,
    ReusedKeygenBackend,
    activate_policy,
    fund,
    make_eth_vault,
    make_workspace,
    open_custody,
    policy_document,
)

__all__ = ["hardhat_node"]

RECIPIENT = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
LEASE_S = 1.5


def _worker(config: dict[str, object], crash_at: str | None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.service.pipeline_worker_proc",
            json.dumps({**config, "crash_at": crash_at}),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )


def _account_nonce(node: HardhatNode, address: str) -> int:
    return int(str(node.rpc("eth_getTransactionCount", [address, "latest"])), 16)


@pytest.mark.parametrize(
    ("crash_at", "status_after_crash"),
    [
        # Killed mid-evaluation: the unit of work that would have moved it on never
        # committed.
        ("evaluating", "submitted"),
        ("signing", "signing"),
        ("broadcast_sent", "broadcasting"),
    ],
)
def test_killed_worker_resumes_and_completes_exactly_once(
    database: Database,
    hardhat_node: HardhatNode,
    tmp_path: Path,
    crash_at: str,
    status_after_crash: str,
) -> None:
    audit_key = tmp_path / "audit.key"
    platform = Platform(database, AuditSigner.load_or_create(audit_key), settings=TEST_SETTINGS)
    ws = make_workspace(platform)
    custody_dir = tmp_path / "custody"
    backend = ReusedKeygenBackend(open_custody(custody_dir))
    funded = make_eth_vault(ws, backend, hardhat_node.url, hardhat_node.chain_id)
    fund(hardhat_node, funded.address)
    activate_policy(ws, policy_document(ws, version=1, limit_eth="1"))
    nonce_before = _account_nonce(hardhat_node, funded.address)
    with platform.unit_of_work() as uow:
        tx_id = transactions.create_transaction(
            uow,
            ws.signer.principal,
            wallet_id=funded.wallet_id,
            destination=RECIPIENT,
            amount="0.25",
        ).id
    config = {
        "db_url": database.url.render_as_string(hide_password=False),
        "audit_key": str(audit_key),
        "custody": str(custody_dir),
        "tx_id": tx_id,
        "lease_s": LEASE_S,
    }

    crashed = _worker(config, crash_at)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()[-2000:]
    with database.transaction() as session:
        row = session.get(Transaction, tx_id)
        assert row is not None
        assert row.status.value == status_after_crash
    if crash_at == "broadcast_sent":
        # The node has the transaction although the database does not say so yet.
        assert _account_nonce(hardhat_node, funded.address) == nonce_before + 1

    resumed = _worker(config, None)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    with database.transaction() as session:
        row = session.get(Transaction, tx_id)
        assert row is not None
        assert row.status.value == "completed", row.status_reason
        assert row.nonce == nonce_before
        assert row.tx_hash is not None
        if crash_at == "signing":
            # The lost attempt is on record; the second attempt's signature was used.
            assert row.signing_attempts == 2
        if crash_at == "broadcast_sent":
            # The resumed worker asked the node first and did not send again.
            confirming = session.scalar(
                select(AuditEvent.details).where(
                    AuditEvent.resource_id == tx_id, AuditEvent.action == "transaction.confirming"
                )
            )
            assert confirming is not None
            assert json.loads(confirming)["broadcast"] == "already_known"
        allocations = session.scalars(select(NonceAllocation)).all()
        assert [(a.nonce, a.state) for a in allocations] == [(nonce_before, NonceState.CONFIRMED)]
    # Exactly one transaction from the vault's address: the nonce moved by one, and the
    # node knows the recorded hash.
    assert _account_nonce(hardhat_node, funded.address) == nonce_before + 1
    mined = hardhat_node.rpc("eth_getTransactionByHash", ["0x" + row.tx_hash])
    assert isinstance(mined, dict)
    assert int(mined["nonce"], 16) == nonce_before
    with platform.unit_of_work() as uow:
        view = transactions.get_transaction(uow, ws.owner.principal, tx_id)
    assert view.status == "completed"
