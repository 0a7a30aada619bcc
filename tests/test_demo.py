"""``make demo`` end to end: the real entry point as a child process.

It starts hardhat, ``shardvault init``, ``shardvault server`` (which starts the
workspace's three co-signer processes when the vault is created), applies a policy that
holds transfers worth more than 1 000 USD for one approval (ETH at the static price of
the bundle's asset registry, 3 000 USD), sends 1 ETH, approves it, waits for the
confirmation, verifies the audit chain, prints one JSON line and stops everything. The
co-signers use the TEST-ONLY fixture primes here (``make demo`` searches fresh ones).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shardvault.devchain import HARDHAT_BIN

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "test_only_paillier.json"


@pytest.mark.slow
def test_demo_sends_an_approved_transfer_through_three_cosigners(tmp_path: Path) -> None:
    if not HARDHAT_BIN.exists():
        pytest.skip("hardhat is not installed: run npm install (make test does)")
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "shardvault.demo", "--unsafe-test-only-primes", str(FIXTURE),
         "--keep", str(run)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["status"] == "completed"
    assert summary["audit_verified"] is True
    assert summary["on_chain"] is True
    assert summary["address"].startswith("0x")
    assert len(bytes.fromhex(summary["tx_hash"])) == 32
    assert {"vault_id", "tx_id"} <= set(summary)
    # The policy held the transfer until the approval, valuing it at the signed price.
    assert any("pending_approval" in line for line in lines)
    assert any("signed asset registry: hardhat: ETH (18 decimals, 3000 USD)" in x for x in lines)
    # The demo says once that one host holds every share.
    assert sum("development only: one host holds every key share" in x for x in lines) == 1
    # Three co-signer processes, each with its own share store (outside the server's data
    # directory), ran and stopped.
    logs = sorted((run / "data-cosigners").glob("*/party-*/cosigner.log"))
    assert len(logs) == 3
    for log in logs:
        text = log.read_text(errors="replace")
        assert '"event": "started"' in text
        assert '"event": "stopped"' in text
        shares = list((log.parent / "shares").rglob("*"))
        assert any(p.is_file() for p in shares), f"no share stored by {log.parent.name}"
