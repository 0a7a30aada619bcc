"""Bitcoin transfers through the pipeline: P2WPKH spends of a 2-of-3 CGGMP21 key (local
ceremony backend, shares in custody) against a Bitcoin Core RPC stand-in that verifies
every input script with python-bitcointx before it accepts a transaction.

Covers the whole path (coins chosen from the address's UTXOs, approval, one signature
per input, broadcast, confirmation, change back to the source), the refusals at creation
(bad destination, amount, network name), a spend the coins cannot pay, a PSBT changed
behind the pipeline's back, a node rejection, and a crash right after sending.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from bitcointx.core import CTransaction

from shardvault.chains import bitcoin
from shardvault.chains.bitcoin import Network as BitcoinNetwork
from shardvault.chains.bitcoin import encode_segwit_address, script_pubkey_for_address
from shardvault.service import transactions, vaults
from shardvault.service.bitcoin_transfers import SpendableOutput, build_p2wpkh_spend
from shardvault.service.errors import ValidationError
from shardvault.service.pipeline import PipelineRuntime, PipelineWorker
from shardvault.service.platform import Platform
from shardvault.store import Database
from shardvault.store.models_vaults import Transaction, TransactionStatus
from tests.api.support import make_platform
from tests.service.bitcoin_pipeline_support import (
    DESTINATION,
    BtcWallet,
    activate,
    approve,
    bitcoin_policy,
    get,
    make_btc_vault,
    send,
)
from tests.service.pipeline_support import (
    ReusedKeygenBackend,
    Workspace,
    make_workspace,
    open_custody,
)
from tests.support_bitcoin_node import BitcoinNodeStandIn


class Faults:
    """A fault hook that raises once at each armed point (a crash there)."""

    def __init__(self) -> None:
        self.armed: set[str] = set()

    def __call__(self, point: str) -> None:
        if point in self.armed:
            self.armed.discard(point)
            raise RuntimeError(f"crash at {point}")


@pytest.fixture
def node() -> Iterator[BitcoinNodeStandIn]:
    with BitcoinNodeStandIn("regtest") as stand_in:
        yield stand_in


@pytest.fixture
def platform(database: Database) -> Platform:
    return make_platform(database)


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def setup(
    platform: Platform, node: BitcoinNodeStandIn, tmp_path: Path, faults: Faults
) -> tuple[Workspace, BtcWallet, PipelineWorker]:
    ws = make_workspace(platform)
    backend = ReusedKeygenBackend(open_custody(tmp_path / "custody"))
    wallet = make_btc_vault(ws, backend, node.url)
    activate(ws, bitcoin_policy(ws))
    runtime = PipelineRuntime(
        backend, confirmation_poll_s=0.05, broadcast_retry_s=0.05, fault_hook=faults
    )
    return ws, wallet, PipelineWorker(platform, runtime)


def _sent(node: BitcoinNodeStandIn) -> list[list[object]]:
    return [params for method, params in node.calls if method == "sendrawtransaction"]


def _status(ws: Workspace, tx_id: str) -> str:
    return get(ws, tx_id).status


def _failed_before_signing(ws: Workspace, tx_id: str, node: BitcoinNodeStandIn) -> str:
    """The reason ``tx_id`` failed with, having signed and sent nothing."""
    view = get(ws, tx_id)
    assert view.status == "failed"
    assert view.status_reason is not None
    assert view.signed_payload is None
    assert _sent(node) == []
    return view.status_reason


def test_two_input_spend_is_approved_signed_broadcast_and_confirmed(
    setup: tuple[Workspace, BtcWallet, PipelineWorker], node: BitcoinNodeStandIn
) -> None:
    ws, wallet, worker = setup
    assert wallet.address.startswith("bcrt1q")
    node.fund(wallet.address, 60_000_000)
    node.fund(wallet.address, 50_000_000)
    tx_id = send(ws, wallet.wallet_id, "1.00000000")  # needs both coins
    worker.drain(timeout_s=30)
    assert _status(ws, tx_id) == "pending_approval"  # above 0.5 BTC: carol approves
    approve(ws, tx_id)
    worker.drain(timeout_s=60, until=lambda: _status(ws, tx_id) == "confirming")
    node.mine()
    worker.drain(timeout_s=30, until=lambda: _status(ws, tx_id) == "completed")
    view = get(ws, tx_id)
    assert view.status == "completed", view.status_reason
    assert view.confirmations >= 1
    assert view.amount_base_units == "100000000"
    # The stand-in accepted it only after python-bitcointx verified both input scripts.
    assert len(_sent(node)) == 1
    assert view.tx_hash is not None
    assert node.known[view.tx_hash].height is not None
    assert view.signed_payload is not None
    decoded = CTransaction.deserialize(bytes.fromhex(view.signed_payload))
    assert len(decoded.vin) == 2
    assert decoded.GetTxid()[::-1].hex() == view.tx_hash
    destination_script = script_pubkey_for_address(DESTINATION, BitcoinNetwork.REGTEST)
    assert bytes(decoded.vout[0].scriptPubKey) == destination_script
    assert decoded.vout[0].nValue == 100_000_000
    # The change came back to the source address, now confirmed there.
    with ws.platform.unit_of_work() as uow:
        row = uow.session.get(Transaction, tx_id)
        assert row is not None
        assert row.chain_payload is not None
        payload = json.loads(row.chain_payload)
    change = payload["change_sat"]
    assert change > 0
    assert 110_000_000 - 100_000_000 - change == payload["fee_sat"] > 0
    assert node.unspent(wallet.address) == [(view.tx_hash, 1, change)]
    assert node.unspent(DESTINATION) == [(view.tx_hash, 0, 100_000_000)]


def test_insufficient_funds_fail_with_a_reason_and_nothing_is_sent(
    setup: tuple[Workspace, BtcWallet, PipelineWorker], node: BitcoinNodeStandIn
) -> None:
    ws, wallet, worker = setup
    node.fund(wallet.address, 10_000)
    tx_id = send(ws, wallet.wallet_id, "0.5")
    worker.drain(timeout_s=30)
    reason = _failed_before_signing(ws, tx_id, node)
    assert "insufficient funds" in reason
    assert "10000 sat" in reason


def test_every_input_carries_its_previous_transaction(
    setup: tuple[Workspace, BtcWallet, PipelineWorker], node: BitcoinNodeStandIn
) -> None:
    """Co-signers prove each input's amount from it (docs/policy.md "Fee caps")."""
    ws, wallet, worker = setup
    funded = [node.fund(wallet.address, 30_000_000)[0], node.fund(wallet.address, 30_000_000)[0]]
    tx_id = send(ws, wallet.wallet_id, "0.5")
    worker.drain(timeout_s=60, until=lambda: _status(ws, tx_id) in ("confirming", "failed"))
    assert _status(ws, tx_id) == "confirming", get(ws, tx_id).status_reason
    with ws.platform.unit_of_work() as uow:
        row = uow.session.get(Transaction, tx_id)
        assert row is not None
        assert row.chain_payload is not None
        psbt = bitcoin.parse_psbt(bytes.fromhex(json.loads(row.chain_payload)["psbt"]))
    previous = [i.non_witness_utxo for i in psbt.inputs]
    assert sorted(p.txid_hex for p in previous if p is not None) == sorted(funded)
    # Asked for with the block the scan named, so no -txindex is needed.
    asked = [params for method, params in node.calls if method == "getrawtransaction"]
    assert all(len(params) == 3 and params[1] is False for params in asked[:2]), asked


def test_a_previous_transaction_the_node_cannot_find_fails_the_transfer(
    setup: tuple[Workspace, BtcWallet, PipelineWorker], node: BitcoinNodeStandIn
) -> None:
    ws, wallet, worker = setup
    txid, _ = node.fund(wallet.address, 60_000_000)
    del node.known[txid]  # Bitcoin Core before 26 without -txindex, say
    tx_id = send(ws, wallet.wallet_id, "0.5")
    worker.drain(timeout_s=30)
    reason = _failed_before_signing(ws, tx_id, node)
    assert "inputs[0].previous_transaction" in reason
    assert "-txindex" in reason


@pytest.mark.parametrize(
    ("destination", "amount", "field"),
    [
        # A mainnet address on the regtest network.
        (
            encode_segwit_address(BitcoinNetwork.MAINNET, 0, bytes(20)),
            "0.1",
            "destination",
        ),
        ("bcrt1qnotanaddress", "0.1", "destination"),
        (DESTINATION[:-1] + ("q" if DESTINATION[-1] != "q" else "p"), "0.1", "destination"),
        ("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0.1", "destination"),
        (DESTINATION, "0.123456789", "amount"),  # nine decimals: not exact in satoshi
        (DESTINATION, "0", "amount"),
        (DESTINATION, "-1", "amount"),
    ],
)
def test_bad_destination_or_amount_is_refused_at_creation(
    setup: tuple[Workspace, BtcWallet, PipelineWorker],
    node: BitcoinNodeStandIn,
    destination: str,
    amount: str,
    field: str,
) -> None:
    ws, wallet, _ = setup
    with pytest.raises(ValidationError) as refused, ws.platform.unit_of_work() as uow:
        transactions.create_transaction(
            uow,
            ws.signer.principal,
            wallet_id=wallet.wallet_id,
            destination=destination,
            amount=amount,
        )
    assert refused.value.field == field


def test_network_not_named_as_cosigners_expect_is_refused(
    platform: Platform, tmp_path: Path
) -> None:
    ws = make_workspace(platform)
    backend = ReusedKeygenBackend(open_custody(tmp_path / "custody"))
    with BitcoinNodeStandIn("regtest") as stand_in:
        owner = ws.owner.principal
        with ws.platform.unit_of_work() as uow:
            vaults.configure_network(
                uow, owner, name="btc-local", kind="bitcoin", rpc_url=stand_in.url
            )
        with ws.platform.unit_of_work() as uow:
            vaults.add_asset(uow, owner, symbol="BTC", network="btc-local")
        import uuid

        from shardvault.service import wallets

        vault_id = str(uuid.uuid4())
        keys = vaults.generate_vault_keys(
            backend,
            workspace_id=owner.workspace_id,
            vault_id=vault_id,
            schemes=["ecdsa-secp256k1"],
            min_signers=2,
            max_signers=3,
        )
        with ws.platform.unit_of_work() as uow:
            vaults.record_vault(
                uow, owner, vault_id=vault_id, name="t", keys=keys, backend_name=backend.name
            )
            wallet = wallets.create_wallet(uow, owner, vault_id=vault_id, asset="BTC")
        with pytest.raises(ValidationError) as refused, ws.platform.unit_of_work() as uow:
            transactions.create_transaction(
                uow,
                ws.signer.principal,
                wallet_id=wallet.id,
                destination=encode_segwit_address(BitcoinNetwork.MAINNET, 0, bytes(20)),
                amount="0.1",
            )
        assert refused.value.field == "network"
        assert "regtest" in str(refused.value)


def test_psbt_changed_before_signing_is_refused(
    setup: tuple[Workspace, BtcWallet, PipelineWorker],
    node: BitcoinNodeStandIn,
    faults: Faults,
) -> None:
    """A stored PSBT that pays someone else (digest updated to match) gets no signature:
    the signing step reads the policy view back from the PSBT first."""
    ws, wallet, worker = setup
    txid, vout = node.fund(wallet.address, 20_000_000)
    tx_id = send(ws, wallet.wallet_id, "0.1")
    faults.armed.add("serialized")
    worker.drain(timeout_s=30, until=lambda: _status(ws, tx_id) == "signing")
    attacker = encode_segwit_address(BitcoinNetwork.REGTEST, 0, b"\x66" * 20)
    with ws.platform.unit_of_work() as uow:
        row = uow.session.get(Transaction, tx_id)
        assert row is not None
        assert row.chain_payload is not None
        source_key = bytes.fromhex(_source_key(uow, row))
        forged = build_p2wpkh_spend(
            network="regtest",
            source_address=wallet.address,
            source_pubkey=source_key,
            utxos=[SpendableOutput(txid, vout, 20_000_000)],
            destination=attacker,
            amount_sat=10_000_000,
            fee_rate_sat_per_vb=2,
        )
        payload = json.loads(row.chain_payload)
        payload["psbt"] = forged.psbt.hex()
        row.chain_payload = json.dumps(payload)
        import hashlib

        from shardvault.chains.bitcoin import parse_psbt

        unsigned = parse_psbt(forged.psbt).unsigned_transaction()
        row.digest = hashlib.sha256(unsigned.serialize(include_witness=False)).hexdigest()
    worker.drain(timeout_s=30, until=lambda: _status(ws, tx_id) == "failed")
    view = get(ws, tx_id)
    assert view.status == "failed"
    assert view.status_reason == "the built transaction pays another recipient"
    assert view.signed_payload is None
    assert _sent(node) == []


def _source_key(uow: object, row: Transaction) -> str:
    from shardvault.store.repositories_vaults import WalletRepository

    source = WalletRepository(uow.session, row.workspace_id).address(row.source_address_id)  # type: ignore[attr-defined]
    assert source is not None
    return source.public_key


def test_node_rejection_fails_with_the_reason(
    setup: tuple[Workspace, BtcWallet, PipelineWorker],
    node: BitcoinNodeStandIn,
    faults: Faults,
) -> None:
    ws, wallet, worker = setup
    node.fund(wallet.address, 20_000_000)
    tx_id = send(ws, wallet.wallet_id, "0.1")
    faults.armed.add("signed")
    # Signed, and moved on to broadcasting in the same commit; the crash comes before
    # the bytes are sent.
    worker.drain(timeout_s=60, until=lambda: _status(ws, tx_id) == "broadcasting")
    assert _sent(node) == []
    node.coins.clear()  # the coins were spent elsewhere meanwhile
    worker.drain(timeout_s=30, until=lambda: _status(ws, tx_id) == "failed")
    view = get(ws, tx_id)
    assert view.status == "failed"
    assert view.status_reason is not None
    assert "refused" in view.status_reason
    assert "missingorspent" in view.status_reason


def test_crash_after_sending_does_not_send_twice(
    setup: tuple[Workspace, BtcWallet, PipelineWorker],
    node: BitcoinNodeStandIn,
    faults: Faults,
) -> None:
    ws, wallet, worker = setup
    node.fund(wallet.address, 20_000_000)
    tx_id = send(ws, wallet.wallet_id, "0.1")
    faults.armed.add("broadcast_sent")
    worker.drain(timeout_s=60, until=lambda: _status(ws, tx_id) == "confirming")
    node.mine()
    worker.drain(timeout_s=30, until=lambda: _status(ws, tx_id) == "completed")
    assert len(_sent(node)) == 1  # the resumed step asked the node and found it
    with ws.platform.unit_of_work() as uow:
        from sqlalchemy import text

        details = list(
            uow.session.scalars(
                text(
                    "SELECT details FROM audit_events WHERE resource_id = :id "
                    "AND action = 'transaction.confirming'"
                ),
                {"id": tx_id},
            )
        )
    assert len(details) == 1
    assert "already_known" in str(details[0])
    assert TransactionStatus(get(ws, tx_id).status) is TransactionStatus.COMPLETED
