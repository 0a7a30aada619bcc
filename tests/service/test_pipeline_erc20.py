"""More pipeline paths on hardhat (SQLite and PostgreSQL): an ERC-20 transfer (gas
estimated by the node, calldata checked against the policy's view), and an approval
deadline that passes, which rejects the transaction without allocating a nonce.

The token is TestToken (tests/fixtures/erc20, shardvault's own minimal ERC-20), deployed
from a hardhat dev account; balances are read with ``balanceOf`` on the node.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from eth_abi.abi import encode as abi_encode

from shardvault.chains.ethereum import ERC20_TRANSFER, encode_call, parse_address
from shardvault.service import transactions, vaults, wallets
from shardvault.service.pipeline import PipelineRuntime, PipelineWorker
from shardvault.service.platform import Platform
from shardvault.store import Database
from tests.api.support import make_platform
from tests.chains.ethereum.hardhat import HardhatNode, hardhat_node
from tests.service.pipeline_support import (
    REPO_ROOT,
    ReusedKeygenBackend,
    activate_policy,
    fund,
    make_eth_vault,
    make_workspace,
    open_custody,
)

__all__ = ["hardhat_node"]

TOKEN = REPO_ROOT / "tests" / "fixtures" / "erc20" / "TestToken.json"
RECIPIENT = "0x976EA74026E726554dB657fA54763abd0C3a0aa9"


@pytest.fixture
def platform(database: Database) -> Platform:
    return make_platform(database)


def _deploy_token(node: HardhatNode) -> str:
    artifact = json.loads(TOKEN.read_text())
    data = (
        artifact["bytecode"]
        + abi_encode(["string", "string", "uint256"], ["Test Token", "TST", 10**24]).hex()
    )
    accounts = node.rpc("eth_accounts")
    assert isinstance(accounts, list)
    tx_hash = node.rpc(
        "eth_sendTransaction", [{"from": accounts[0], "data": data, "gas": hex(2_000_000)}]
    )
    receipt = node.rpc("eth_getTransactionReceipt", [tx_hash])
    assert isinstance(receipt, dict)
    return str(receipt["contractAddress"])


def _token_call(node: HardhatNode, token: str, to: str, amount: int) -> None:
    accounts = node.rpc("eth_accounts")
    assert isinstance(accounts, list)
    data = "0x" + encode_call(ERC20_TRANSFER, [parse_address(to), amount]).hex()
    node.rpc("eth_sendTransaction", [{"from": accounts[0], "to": token, "data": data}])


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
    funded = make_eth_vault(ws, backend, hardhat_node.url, hardhat_node.chain_id)
    fund(hardhat_node, funded.address)
    token = _deploy_token(hardhat_node)
    _token_call(hardhat_node, token, funded.address, 50 * 10**18)
    owner = ws.owner.principal
    with platform.unit_of_work() as uow:
        vaults.add_asset(
            uow, owner, symbol="TST", network="hardhat", kind="erc20", contract=token, decimals=18
        )
        wallet = wallets.create_wallet(uow, owner, vault_id=funded.vault_id, asset="TST")
    # The token wallet derives the same key, hence the same address, as the ETH wallet.
    assert wallet.addresses[0].address == funded.address
    activate_policy(ws, _allow_all())
    with platform.unit_of_work() as uow:
        tx = transactions.create_transaction(
            uow, ws.signer.principal, wallet_id=wallet.id, destination=RECIPIENT, amount="12.5"
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
    document = {
        "format": "shardvault.policy/v1",
        "version": 1,
        "reference_currency": "USD",
        "approvers": {
            ws.approver.email: {
                "algorithm": "ed25519",
                "public_key": ws.approver.approval_public_hex,
            }
        },
        "groups": {"treasury": [ws.approver.email]},
        "rules": [
            {
                "name": "hold",
                "action": "require_approvals",
                "approvals": {"groups": [{"group": "treasury", "count": 1}], "deadline": 1},
            }
        ],
    }
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
