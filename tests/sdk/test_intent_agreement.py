"""The SDK's recomputed intent digest (:func:`shardvault.sdk.approvals.checked_intent`)
is the one the service stored when it created the transfer, for every kind of transfer
the pipeline approves: EVM native (whose intent names the network by its registered
name, not the workspace's), an ERC-20 token (named by its contract in the intent),
Solana SOL and Bitcoin BTC.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from shardvault.api.schemas_vaults import TransactionOut
from shardvault.policy.intent import intent_digest
from shardvault.sdk.approvals import checked_intent
from shardvault.sdk.custody import Transaction as SdkTransaction
from shardvault.service import transactions, vaults
from shardvault.store import Database
from shardvault.store.models_vaults import Transaction
from tests.api.support import make_platform
from tests.service.bitcoin_pipeline_support import DESTINATION as BTC_DESTINATION
from tests.service.pipeline_support import (
    ReusedKeygenBackend,
    make_vault_wallet,
    make_workspace,
    open_custody,
)

EVM_DESTINATION = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
SOL_DESTINATION = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"
USDC = "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238"

KINDS = {
    # kind: (network settings, asset settings, schemes, destination, amount)
    "evm-registered": (
        {"name": "my-sepolia", "kind": "evm", "chain_id": 11155111},
        {"symbol": "ETH"},
        "ecdsa-secp256k1",
        EVM_DESTINATION,
        "1.5",
    ),
    "evm-hardhat": (
        {"name": "local", "kind": "evm", "chain_id": 31337},
        {"symbol": "ETH"},
        "ecdsa-secp256k1",
        EVM_DESTINATION,
        "0.000000000000000001",
    ),
    "erc20": (
        {"name": "sepolia", "kind": "evm", "chain_id": 11155111},
        {"symbol": "USDC", "kind": "erc20", "contract": USDC.lower(), "decimals": 6},
        "ecdsa-secp256k1",
        EVM_DESTINATION,
        "12.345678",
    ),
    "solana": (
        {"name": "solana", "kind": "solana"},
        {"symbol": "SOL"},
        "eddsa-ed25519",
        SOL_DESTINATION,
        "0.25",
    ),
    "bitcoin": (
        {"name": "regtest", "kind": "bitcoin"},
        {"symbol": "BTC"},
        "ecdsa-secp256k1",
        BTC_DESTINATION,
        "0.00012345",
    ),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_sdk_recomputes_the_digest_the_service_stored(
    kind: str, database: Database, tmp_path: Path
) -> None:
    network, asset, scheme, destination, amount = KINDS[kind]
    ws = make_workspace(make_platform(database))
    owner = ws.owner.principal
    with ws.platform.unit_of_work() as uow:
        vaults.configure_network(uow, owner, **network)  # type: ignore[arg-type]
        vaults.add_asset(uow, owner, network=str(network["name"]), **asset)  # type: ignore[arg-type]
    wallet = make_vault_wallet(
        ws, ReusedKeygenBackend(open_custody(tmp_path / "custody")), str(asset["symbol"]), [scheme]
    )
    with ws.platform.unit_of_work() as uow:
        created = transactions.create_transaction(
            uow, owner, wallet_id=wallet.wallet_id, destination=destination, amount=amount
        )
    with ws.platform.unit_of_work() as uow:
        shown = transactions.get_transaction(uow, owner, created.id)
    # The transaction as the SDK receives it: through the API's schema and its JSON.
    tx = SdkTransaction.model_validate(TransactionOut.model_validate(shown).model_dump(mode="json"))
    intent = checked_intent(tx, created.id)
    with database.transaction() as session:
        stored = session.scalar(select(Transaction.intent_digest).where(Transaction.id == tx.id))
    assert intent_digest(intent).hex() == stored
    assert intent.destination == tx.destination
    if kind == "erc20":
        assert intent.asset == USDC
    if kind == "evm-registered":
        assert (tx.network, intent.network) == ("my-sepolia", "sepolia")
