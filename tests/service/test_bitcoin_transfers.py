"""P2WPKH spends built and finished by the service helpers, checked by python-bitcointx.

The finished transaction's inputs are verified with python-bitcointx's ``VerifyScript``
(BIP143 with the spent amounts), and the signatures come from coincurve (libsecp256k1),
so neither the builder nor the verifier is our own code alone.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

import coincurve
import pytest
from bitcointx.core import CTransaction
from bitcointx.core.scripteval import VerifyScriptError

from shardvault.chains import bitcoin
from shardvault.chains.bitcoin import InsufficientFundsError
from shardvault.chains.errors import (
    DecodeError,
    InvalidAddressError,
    InvalidAmountError,
    SignatureAssemblyError,
    UnsupportedError,
)
from shardvault.service.bitcoin_transfers import (
    InputSignatureError,
    SpendableOutput,
    build_p2wpkh_spend,
    finish_p2wpkh_spend,
    prove_input_amounts,
    psbt_input_sighash,
)
from tests.support_bitcoin_node import verify_inputs

SECRET = coincurve.PrivateKey(hashlib.sha256(b"bitcoin transfers test key").digest())
PUBKEY = SECRET.public_key.format(compressed=True)
SOURCE = bitcoin.encode_segwit_address(
    bitcoin.Network.REGTEST, 0, bitcoin.p2wpkh_script(PUBKEY)[2:]
)
PAYEE_KEY = coincurve.PrivateKey(hashlib.sha256(b"payee").digest()).public_key.format()
PAYEE = bitcoin.encode_segwit_address(
    bitcoin.Network.REGTEST, 0, bitcoin.p2wpkh_script(PAYEE_KEY)[2:]
)


def _txid(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


UTXOS = [
    SpendableOutput(_txid("a"), 0, 60_000),
    SpendableOutput(_txid("b"), 3, 50_000),
    SpendableOutput(_txid("c"), 1, 1_000),
]


def _build(**overrides):
    fields = {
        "network": "regtest",
        "source_address": SOURCE,
        "source_pubkey": PUBKEY,
        "utxos": UTXOS,
        "destination": PAYEE,
        "amount_sat": 100_000,
        "fee_rate_sat_per_vb": 2,
        **overrides,
    }
    return build_p2wpkh_spend(**fields)


def _sign_all(psbt: bytes, key=SECRET) -> list[bytes]:
    count = len(bitcoin.parse_psbt(psbt).inputs)
    return [key.sign_recoverable(psbt_input_sighash(psbt, i), hasher=None) for i in range(count)]


def test_round_trip_verifies_with_python_bitcointx():
    spend = _build()
    assert spend.input_count == 2
    assert {(u.txid, u.vout) for u in spend.inputs} == {(_txid("a"), 0), (_txid("b"), 3)}
    parsed = bitcoin.parse_psbt(spend.psbt)
    assert parsed.version == 0
    assert all(p.witness_utxo is not None for p in parsed.inputs)
    assert parsed.fee() == spend.fee_sat
    outputs = parsed.unsigned_transaction().outputs
    assert outputs[0] == bitcoin.TxOut(
        100_000, bitcoin.script_pubkey_for_address(PAYEE, parsed_net())
    )
    assert outputs[1].script_pubkey == bitcoin.p2wpkh_script(PUBKEY)
    assert outputs[1].value == spend.change_sat == 110_000 - 100_000 - spend.fee_sat

    raw, txid = finish_p2wpkh_spend(spend.psbt, _sign_all(spend.psbt), PUBKEY)
    independent = CTransaction.deserialize(raw)
    assert independent.GetTxid()[::-1].hex() == txid
    spent = [(bitcoin.p2wpkh_script(PUBKEY), u.amount_sat) for u in spend.inputs]
    verify_inputs(raw, spent)
    # The fee was estimated for worst-case signatures: the real size is not larger,
    # and the fee pays at least the asked rate for it.
    vsize = bitcoin.parse_transaction(raw).vsize()
    assert vsize <= spend.vsize
    assert spend.fee_sat >= 2 * vsize


def parsed_net():
    return bitcoin.Network.REGTEST


def test_a_wrong_amount_in_the_verifier_fails():
    """The independent verifier really checks BIP143 amounts (not a vacuous pass)."""
    spend = _build()
    raw, _ = finish_p2wpkh_spend(spend.psbt, _sign_all(spend.psbt), PUBKEY)
    spent = [(bitcoin.p2wpkh_script(PUBKEY), u.amount_sat + 1) for u in spend.inputs]
    with pytest.raises(VerifyScriptError):
        verify_inputs(raw, spent)


def test_dust_change_goes_to_the_fee():
    utxos = [SpendableOutput(_txid("d"), 0, 100_300)]
    spend = _build(utxos=utxos, amount_sat=100_000, fee_rate_sat_per_vb=1)
    assert spend.change_sat == 0
    assert spend.fee_sat == 300
    assert len(bitcoin.parse_psbt(spend.psbt).unsigned_transaction().outputs) == 1
    raw, _ = finish_p2wpkh_spend(spend.psbt, _sign_all(spend.psbt), PUBKEY)
    verify_inputs(raw, [(bitcoin.p2wpkh_script(PUBKEY), 100_300)])


def test_change_above_dust_is_kept():
    spend = _build(
        utxos=[SpendableOutput(_txid("e"), 2, 200_000)], fee_rate_sat_per_vb=Decimal("1.5")
    )
    assert spend.change_sat > 294
    assert spend.change_sat + spend.fee_sat + 100_000 == 200_000


def test_insufficient_funds_is_typed():
    with pytest.raises(InsufficientFundsError) as caught:
        _build(amount_sat=111_000)
    assert caught.value.field == "utxos"


@pytest.mark.parametrize(
    ("overrides", "error", "field"),
    [
        ({"amount_sat": 100}, InvalidAmountError, "amount"),
        ({"amount_sat": 0}, InvalidAmountError, "amount"),
        ({"fee_rate_sat_per_vb": 2.5}, InvalidAmountError, "fee_rate"),
        ({"fee_rate_sat_per_vb": -1}, InvalidAmountError, "fee_rate"),
        (
            {"destination": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"},
            InvalidAddressError,
            "destination",
        ),
        ({"source_address": PAYEE}, InvalidAddressError, "source_address"),
        ({"source_pubkey": b"\x02" + bytes(32)}, InvalidAddressError, "source_pubkey"),
        ({"network": "dogecoin"}, InvalidAddressError, "network"),
        ({"utxos": [UTXOS[0], UTXOS[0]]}, DecodeError, "utxos[1]"),
        ({"utxos": [SpendableOutput("zz", 0, 5)]}, DecodeError, "utxos[0].txid"),
    ],
)
def test_bad_inputs_are_refused_naming_the_field(overrides, error, field):
    with pytest.raises(error) as caught:
        _build(**overrides)
    assert getattr(caught.value, "field", None) == field


def test_nonstandard_destination_is_unsupported():
    # A P2WSH-like v1 witness program of 20 bytes is not a script we size.
    odd = bitcoin.encode_segwit_address(bitcoin.Network.REGTEST, 2, bytes(20))
    with pytest.raises(UnsupportedError) as caught:
        _build(destination=odd)
    assert caught.value.field == "destination"


def test_bad_signature_is_refused_naming_the_input():
    spend = _build()
    signatures = _sign_all(spend.psbt)
    # Input 1 signed over input 0's sighash: a valid signature, for the wrong digest.
    signatures[1] = signatures[0]
    with pytest.raises(InputSignatureError) as caught:
        finish_p2wpkh_spend(spend.psbt, signatures, PUBKEY)
    assert caught.value.input_index == 1
    assert "signatures[1]" in str(caught.value)


def test_signature_by_another_key_is_refused():
    spend = _build()
    other = coincurve.PrivateKey(hashlib.sha256(b"another").digest())
    with pytest.raises(InputSignatureError) as caught:
        finish_p2wpkh_spend(spend.psbt, _sign_all(spend.psbt, other), PUBKEY)
    assert caught.value.input_index == 0


def test_high_s_and_malformed_signatures_are_refused():
    spend = _build()
    signatures = _sign_all(spend.psbt)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(signatures[1][32:64], "big")
    high = signatures[1][:32] + (n - s).to_bytes(32, "big") + signatures[1][64:]
    with pytest.raises(InputSignatureError, match="high") as caught:
        finish_p2wpkh_spend(spend.psbt, [signatures[0], high], PUBKEY)
    assert caught.value.input_index == 1
    with pytest.raises(InputSignatureError, match="65 bytes") as caught:
        finish_p2wpkh_spend(spend.psbt, [signatures[0][:64], signatures[1]], PUBKEY)
    assert caught.value.input_index == 0


def test_wrong_signature_count_is_refused():
    spend = _build()
    with pytest.raises(SignatureAssemblyError, match="1 signatures for 2 inputs"):
        finish_p2wpkh_spend(spend.psbt, _sign_all(spend.psbt)[:1], PUBKEY)


# --- Previous transactions, which let co-signers prove every input's amount -----------


def _funding(amount: int, vout: int, script: bytes | None = None) -> bitcoin.Transaction:
    """A previous transaction paying ``amount`` to SOURCE at output ``vout``."""
    ours = bitcoin.p2wpkh_script(PUBKEY) if script is None else script
    other = bitcoin.TxOut(1, bitcoin.p2wpkh_script(PAYEE_KEY))
    outputs = [other] * vout + [bitcoin.TxOut(amount, ours)]
    source = bitcoin.OutPoint(hashlib.sha256(f"{amount}:{vout}".encode()).digest(), 0)
    return bitcoin.Transaction(2, (bitcoin.TxIn(source),), tuple(outputs))


def _spend_of(previous: list[bitcoin.Transaction]):
    utxos = [
        SpendableOutput(tx.txid_hex, len(tx.outputs) - 1, tx.outputs[-1].value) for tx in previous
    ]
    return _build(utxos=utxos, amount_sat=100_000)


def test_previous_transactions_are_attached_to_every_input() -> None:
    previous = [_funding(60_000, 0), _funding(50_000, 3)]
    spend = _spend_of(previous)
    proven = prove_input_amounts(spend, {tx.txid_hex: tx.serialize() for tx in previous})
    psbt = bitcoin.parse_psbt(proven.psbt)
    by_txid = {tx.txid(): tx for tx in previous}
    for index, psbt_input in enumerate(psbt.inputs):
        assert psbt_input.non_witness_utxo == by_txid[psbt.prevout(index).txid]
    # Nothing else changed: the same transaction, the same sighashes.
    assert psbt.unsigned_transaction() == bitcoin.parse_psbt(spend.psbt).unsigned_transaction()
    assert [psbt_input_sighash(proven.psbt, i) for i in range(2)] == [
        psbt_input_sighash(spend.psbt, i) for i in range(2)
    ]


def test_a_node_lying_about_a_previous_transaction_is_refused() -> None:
    previous = [_funding(60_000, 0), _funding(50_000, 3)]
    spend = _spend_of(previous)
    good = {tx.txid_hex: tx.serialize() for tx in previous}
    with pytest.raises(DecodeError, match="is missing"):
        prove_input_amounts(spend, {previous[0].txid_hex: good[previous[0].txid_hex]})
    # Another transaction under the txid: the Updater sees the txid differ.
    swapped = {**good, previous[1].txid_hex: _funding(50_000, 2).serialize()}
    with pytest.raises(DecodeError, match="not the transaction the input spends"):
        prove_input_amounts(spend, swapped)


def test_a_scan_that_misreported_a_coin_is_caught_by_its_previous_transaction() -> None:
    """The scan said 50,000 sat; the transaction (whose txid the outpoint names) pays
    more: the PSBT's witness UTXO was wrong, and so would its fee be."""
    real = _funding(55_000, 1)
    utxos = [
        SpendableOutput(_funding(60_000, 0).txid_hex, 0, 60_000),
        SpendableOutput(real.txid_hex, 1, 50_000),
    ]
    spend = _build(utxos=utxos, amount_sat=100_000)
    previous = {_funding(60_000, 0).txid_hex: _funding(60_000, 0).serialize()}
    with pytest.raises(InvalidAmountError, match="50000 sat coin"):
        prove_input_amounts(spend, {**previous, real.txid_hex: real.serialize()})
