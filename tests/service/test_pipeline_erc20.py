"""More pipeline paths on hardhat (SQLite and PostgreSQL): an ERC-20 transfer (gas
estimated by the node, calldata checked against the policy's view), and an approval
deadline that passes, which rejects the transaction without allocating a nonce.

The token is TestToken (tests/fixtures/erc20, shardvault's own minimal ERC-20), deployed
from a hardhat dev account; balances are read with ``balanceOf`` on the node.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from eth_abi.abi import encode as abi_encode

from shardvault.service import transactions
from shardvault.service.pipeline import PipelineRuntime, PipelineWorker
from shardvault.service.platform import Platform
from shardvault.store import Database
from tests.api.support import make_platform
from tests.chains.ethereum.hardhat import HardhatNode, hardhat_node
from tests.service.pipeline_support import (
    ReusedKeygenBackend,
    activate_policy,
    make_eth_vault,
    make_token_wallets,
    make_workspace,
    open_custody,
    treasury_policy,
)

__all__ = ["hardhat_node"]

RECIPIENT = "0x976EA74026E726554dB657fA54763abd0C3a0aa9"


@pytest.fixture
def platform(database: Database) -> Platform:
    return make_platform(database)


def _balance_of(node: HardhatNode, token: str, owner: str) -> int:
    data = "0x70a08231" + abi_encode(["address"], [owner]).hex()
    return int(str(node.rpc("eth_call", [{"to": token, "data": data}, "latest"])), 16)


def _allow_all(version: int = 1) -> dict[str, object]:
    return {
        "format": "shardvault.policy/v1",
        "version": version,
        "reference_currency": "USD",
        "rules": [{"name": "allow-all", "action": "allow"}],
    }


def test_erc20_transfer_completes(
    platform: Platform, hardhat_node: HardhatNode, tmp_path: Path
) -> None:
    ws = make_workspace(platform)
    backend = ReusedKeygenBackend(open_custody(tmp_path / "custody"))
    made = make_token_wallets(ws, backend, hardhat_node)
    token = made.token
    activate_policy(ws, _allow_all())
    with platform.unit_of_work() as uow:
        tx = transactions.create_transaction(
            uow,
            ws.signer.principal,
            wallet_id=made.tst_wallet_id,
            destination=RECIPIENT,
            amount="12.5",
        )
    worker = PipelineWorker(platform, PipelineRuntime(backend, confirmation_poll_s=0.05))
    worker.drain(timeout_s=60)
    with platform.unit_of_work() as uow:
        done = transactions.get_transaction(uow, ws.owner.principal, tx.id)
    assert done.status == "completed", done.status_reason
    assert done.asset == "TST"
    assert _balance_of(hardhat_node, token, RECIPIENT) == 125 * 10**17


def test_approval_deadline_passes_and_rejects(
    platform: Platform, hardhat_node: HardhatNode, tmp_path: Path
) -> None:
    ws = make_workspace(platform)
    backend = ReusedKeygenBackend(open_custody(tmp_path / "custody"))
    funded = make_eth_vault(ws, backend, hardhat_node.url, hardhat_node.chain_id)
    document = treasury_policy(
        ws,
        [
            {
                "name": "hold",
                "action": "require_approvals",
                "approvals": {"groups": [{"group": "treasury", "count": 1}], "deadline": 1},
            }
        ],
    )
    activate_policy(ws, document)
    with platform.unit_of_work() as uow:
        tx = transactions.create_transaction(
            uow, ws.signer.principal, wallet_id=funded.wallet_id, destination=RECIPIENT, amount="1"
        )
    worker = PipelineWorker(platform, PipelineRuntime(backend))
    worker.drain(timeout_s=10)

    def status() -> str:
        with platform.unit_of_work() as uow:
            return transactions.get_transaction(uow, ws.owner.principal, tx.id).status

    assert status() == "pending_approval"
    deadline = time.monotonic() + 10
    while status() == "pending_approval" and time.monotonic() < deadline:
        worker.run_once()
        time.sleep(0.2)
    with platform.unit_of_work() as uow:
        view = transactions.get_transaction(uow, ws.owner.principal, tx.id)
    assert view.status == "rejected"
    assert view.status_reason == "approval deadline passed"
    assert view.nonce is None
