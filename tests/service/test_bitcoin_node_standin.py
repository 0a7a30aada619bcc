"""The Bitcoin Core stand-in (tests/support_bitcoin_node.py) driven by the real client.

A spend built and signed with the service helpers (coincurve signatures) is accepted
only when python-bitcointx verifies every input; a tampered one is refused with -26.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

import coincurve
import pytest

from shardvault.chains import bitcoin
from shardvault.chains.bitcoin import FeeRate
from shardvault.service.bitcoin_transfers import (
    SpendableOutput,
    build_p2wpkh_spend,
    finish_p2wpkh_spend,
    psbt_input_sighash,
)
from shardvault.service.chainclients import RpcTransportError
from shardvault.service.chainclients.bitcoin import (
    AlreadyInChainError,
    BitcoinRpcClient,
    FeeTooLowError,
    MissingInputsError,
    PolicyRejectedError,
)
from shardvault.service.pipeline.bitcoin_replace import bumped_fee, rebuild_spend
from tests.support_bitcoin_node import BitcoinNodeStandIn

KEY = coincurve.PrivateKey(hashlib.sha256(b"stand-in test key").digest())
PUBKEY = KEY.public_key.format(compressed=True)
SOURCE = bitcoin.address_from_script(bitcoin.p2wpkh_script(PUBKEY), bitcoin.Network.REGTEST)
PAYEE = bitcoin.encode_segwit_address(bitcoin.Network.REGTEST, 1, hashlib.sha256(b"p").digest())


@pytest.fixture
def node():
    with BitcoinNodeStandIn(auth=("user", "secret")) as standin:
        yield standin


@pytest.fixture
def client(node):
    with BitcoinRpcClient(node.url, auth=("user", "secret")) as rpc:
        yield rpc


def _spend(client, amount=60_000):
    scan = client.scan_utxos([f"addr({SOURCE})"])
    utxos = [SpendableOutput(u.outpoint.txid_hex, u.outpoint.index, u.value) for u in scan.unspents]
    rate = client.estimate_smart_fee(6)
    assert rate is not None
    spend = build_p2wpkh_spend(
        network="regtest",
        source_address=SOURCE,
        source_pubkey=PUBKEY,
        utxos=utxos,
        destination=PAYEE,
        amount_sat=amount,
        fee_rate_sat_per_vb=Decimal(rate.sat_per_kvb) / 1000,
    )
    signatures = [
        KEY.sign_recoverable(psbt_input_sighash(spend.psbt, i), hasher=None)
        for i in range(spend.input_count)
    ]
    return spend, finish_p2wpkh_spend(spend.psbt, signatures, PUBKEY)


def test_fund_scan_send_mine_and_confirm(node, client):
    first = node.fund(SOURCE, 50_000)
    node.fund(SOURCE, 30_000)
    height = client.get_block_count()
    scan = client.scan_utxos([f"addr({SOURCE})"])
    assert scan.total == 80_000
    assert scan.height == height
    assert {(u.outpoint.txid_hex, u.outpoint.index) for u in scan.unspents} >= {first}
    assert all(u.confirmations >= 1 for u in scan.unspents)
    assert client.estimate_smart_fee(6) == FeeRate(2000)

    spend, (raw, txid) = _spend(client)
    assert spend.input_count == 2
    assert client.send_raw_transaction(raw) == txid
    # In the mempool: known, unconfirmed; sent again, Core answers with the txid.
    assert client.get_confirmations(txid) == 0
    assert client.send_raw_transaction(raw) == txid
    # Core's chainstate still holds the spent coins until the block.
    assert client.scan_utxos([f"addr({SOURCE})"]).total == 80_000
    node.mine()
    assert client.get_confirmations(txid) == 1
    status = client.get_transaction_status(txid)
    assert status is not None
    assert status.block_hash == node.block_hash(client.get_block_count())
    node.mine(2)
    assert client.get_confirmations(txid) == 3
    after = client.scan_utxos([f"addr({SOURCE})"])
    assert after.total == spend.change_sat
    payee = client.scan_utxos([f"addr({PAYEE})"])
    assert payee.total == 60_000
    # Confirmed: -27.
    with pytest.raises(AlreadyInChainError):
        client.send_raw_transaction(raw)
    assert client.get_transaction_status("00" * 32) is None


def test_bad_signature_is_refused_with_26(node, client):
    node.fund(SOURCE, 100_000)
    _, (raw, txid) = _spend(client)
    tx = bitcoin.parse_transaction(raw)
    sig, key = tx.inputs[0].witness
    # Flip a bit of s inside the DER signature: the script no longer verifies.
    bad_sig = sig[:-3] + bytes([sig[-3] ^ 1]) + sig[-2:]
    tampered_input = bitcoin.TxIn(tx.inputs[0].prevout, b"", tx.inputs[0].sequence, (bad_sig, key))
    tampered = bitcoin.Transaction(tx.version, (tampered_input,), tx.outputs, tx.locktime)
    with pytest.raises(PolicyRejectedError) as caught:
        client.send_raw_transaction(tampered.serialize())
    assert caught.value.code == -26
    assert "mandatory-script-verify-flag-failed" in str(caught.value)
    # Nothing was spent: the honest transaction still goes through.
    assert client.send_raw_transaction(raw) == txid


def test_wrong_amount_claimed_for_an_input_is_refused(node, client):
    """A signature over a false amount (BIP143) does not verify against the UTXO set."""
    node.fund(SOURCE, 100_000)
    scan = client.scan_utxos([f"addr({SOURCE})"])
    utxo = scan.unspents[0]
    lie = SpendableOutput(utxo.outpoint.txid_hex, utxo.outpoint.index, 90_000)
    spend = build_p2wpkh_spend(
        network="regtest",
        source_address=SOURCE,
        source_pubkey=PUBKEY,
        utxos=[lie],
        destination=PAYEE,
        amount_sat=50_000,
        fee_rate_sat_per_vb=2,
    )
    signature = KEY.sign_recoverable(psbt_input_sighash(spend.psbt, 0), hasher=None)
    raw, _ = finish_p2wpkh_spend(spend.psbt, [signature], PUBKEY)
    with pytest.raises(PolicyRejectedError):
        client.send_raw_transaction(raw)


def test_unknown_or_spent_inputs_are_missing(node, client):
    node.fund(SOURCE, 100_000)
    _, (raw, _) = _spend(client)
    assert client.send_raw_transaction(raw)
    node.mine()
    node.fund(SOURCE, 70_000)
    # Built from a stale view listing the spent coin.
    stale = SpendableOutput(bitcoin.parse_transaction(raw).inputs[0].prevout.txid_hex, 0, 100_000)
    spend = build_p2wpkh_spend(
        network="regtest",
        source_address=SOURCE,
        source_pubkey=PUBKEY,
        utxos=[stale],
        destination=PAYEE,
        amount_sat=50_000,
        fee_rate_sat_per_vb=2,
    )
    signature = KEY.sign_recoverable(psbt_input_sighash(spend.psbt, 0), hasher=None)
    again, _ = finish_p2wpkh_spend(spend.psbt, [signature], PUBKEY)
    with pytest.raises(MissingInputsError):
        client.send_raw_transaction(again)


def test_fee_estimate_without_data_and_bad_credentials(node):
    node.fee_rate = None
    with BitcoinRpcClient(node.url, auth=("user", "secret")) as rpc:
        assert rpc.estimate_smart_fee(6) is None
    with (
        BitcoinRpcClient(node.url, auth=("user", "wrong")) as rpc,
        pytest.raises(RpcTransportError, match="401"),
    ):
        rpc.get_block_count()


def _signed(psbt: bytes, inputs: int) -> tuple[bytes, str]:
    signatures = [
        KEY.sign_recoverable(psbt_input_sighash(psbt, i), hasher=None) for i in range(inputs)
    ]
    return finish_p2wpkh_spend(psbt, signatures, PUBKEY)


def test_a_replacement_is_taken_only_under_bip125(node, client):
    """The same coins with a higher fee replace a mempool spend (BIP 125 rules 3, 4 and
    6); too small a bump is refused, and a spend of the evicted version's coins is the
    replacement's to make."""
    node.fund(SOURCE, 100_000)
    spend, (raw, txid) = _spend(client)
    assert client.send_raw_transaction(raw) == txid
    script = bitcoin.p2wpkh_script(PUBKEY)
    # One satoshi more is not enough: BIP 125 asks 1 sat/vB of the new size on top.
    low, _, _ = rebuild_spend(spend.psbt, script, spend.fee_sat + 1)
    low_raw, _ = _signed(low, 1)
    with pytest.raises(FeeTooLowError, match="insufficient fee"):
        client.send_raw_transaction(low_raw)
    fee = bumped_fee(spend.fee_sat, spend.vsize, Decimal(0))
    high, paid, change = rebuild_spend(spend.psbt, script, fee)
    assert (paid, change) == (fee, spend.change_sat - (fee - spend.fee_sat))
    high_raw, high_txid = _signed(high, 1)
    assert client.send_raw_transaction(high_raw) == high_txid
    assert client.get_transaction_status(txid) is None  # evicted
    node.mine()
    assert client.get_transaction_status(high_txid) is not None
    assert [u[0] for u in node.unspent(PAYEE)] == [high_txid]
