"""Record-level PSBT validation: each BIP174/BIP371 key and value format, good and bad.

Each case adds one record to an otherwise valid one-input, one-output version 0 PSBT (or
its version 2 twin) and asserts that a well-formed record parses and re-serializes, and
that a malformed one raises a typed error naming the field (BIP174 "Specification" and
BIP371 "Specification" give each type's key and value format).
"""

import hashlib
from collections.abc import Sequence

import pytest
from coincurve import PublicKeyXOnly

from shardvault.chains.amounts import Satoshi
from shardvault.chains.bitcoin import OutPoint, Transaction, TxIn, TxOut, create_psbt, parse_psbt
from shardvault.chains.bitcoin.encoding import compact_size, hash160, hash256, ripemd160, u32
from shardvault.chains.bitcoin.psbt import (
    MAGIC,
    PsbtRecord,
)
from shardvault.chains.errors import ChainError, DecodeError, InvalidAmountError

from .helpers import make_key

PUB = make_key("records").public_key.format()
XONLY = PublicKeyXOnly.from_secret(make_key("records").secret).format()
ORIGIN = bytes.fromhex("d90c6a4f") + u32(0x80000054)
PREV_TX = Transaction(
    2, (TxIn(OutPoint(bytes(32), 0)),), (TxOut(Satoshi(5000), b"\x00\x14" + bytes(20)),), 0
)
NOT_ON_CURVE = b"\xff" * 32  # x >= p cannot be a coordinate


def _base(prev_txid: bytes = bytes(32)) -> tuple[bytes, bytes]:
    psbt = create_psbt([OutPoint(prev_txid, 0)], [TxOut(Satoshi(1000), b"\x51")])
    global_map = b"".join(r.serialize() for r in psbt.global_map)
    return global_map, MAGIC


def _raw(
    global_records: Sequence[PsbtRecord] = (),
    input_records: Sequence[PsbtRecord] = (),
    output_records: Sequence[PsbtRecord] = (),
    prev_txid: bytes = bytes(32),
) -> bytes:
    global_map, magic = _base(prev_txid)
    parts = [magic, global_map]
    parts.extend(r.serialize() for r in global_records)
    parts.append(b"\x00")
    parts.extend(r.serialize() for r in input_records)
    parts.append(b"\x00")
    parts.extend(r.serialize() for r in output_records)
    parts.append(b"\x00")
    return b"".join(parts)


def _rec(kind: int, key: bytes = b"", value: bytes = b"") -> PsbtRecord:
    return PsbtRecord(kind, key, value)


def _proprietary_key() -> bytes:
    return compact_size(3) + b"abc" + compact_size(1) + b"k"


GOOD_INPUT_RECORDS = {
    "ripemd160": _rec(0x0A, ripemd160(b"x"), b"x"),
    "sha256": _rec(0x0B, hashlib.sha256(b"x").digest(), b"x"),
    "hash160": _rec(0x0C, hash160(b"x"), b"x"),
    "hash256": _rec(0x0D, hash256(b"x"), b"x"),
    "por_commitment": _rec(0x09, b"", b"commitment"),
    "tap_script_sig": _rec(0x14, XONLY + bytes(32), bytes(64)),
    "tap_leaf_script": _rec(0x15, b"\xc0" + XONLY + bytes(32), b"\x51\xc0"),
    "tap_bip32": _rec(0x16, XONLY, compact_size(1) + bytes(32) + ORIGIN),
    "tap_merkle_root": _rec(0x18, b"", bytes(32)),
    "tap_key_sig_65": _rec(0x13, b"", bytes(64) + b"\x81"),
    "proprietary": _rec(0xFC, _proprietary_key(), b"anything"),
    "unknown": _rec(0x40, b"whatever", b"kept"),
}


@pytest.mark.parametrize("name", sorted(GOOD_INPUT_RECORDS))
def test_well_formed_input_records(name: str) -> None:
    raw = _raw(input_records=[GOOD_INPUT_RECORDS[name]])
    assert parse_psbt(raw).serialize() == raw


BAD_INPUT_RECORDS = [
    (_rec(0x0B, hashlib.sha256(b"x").digest(), b"y"), "inputs[0].sha256_preimage"),
    (_rec(0x0A, bytes(19), b"x"), "inputs[0].ripemd160_preimage"),
    (_rec(0x14, XONLY + bytes(31), bytes(64)), "inputs[0][0x14]"),
    (_rec(0x14, NOT_ON_CURVE + bytes(32), bytes(64)), "inputs[0].tap_script_sig"),
    (_rec(0x14, XONLY + bytes(32), bytes(63)), "inputs[0].tap_script_sig"),
    (_rec(0x15, b"\xc0" + XONLY + bytes(1), b"\x51\xc0"), "inputs[0][0x15]"),
    (_rec(0x15, b"\xc0" + XONLY, b""), "inputs[0][0x15]"),
    (
        _rec(0x16, XONLY, compact_size(2) + bytes(32) + ORIGIN),
        "inputs[0].tap_bip32_derivation.leaf_hashes",
    ),
    (_rec(0x16, XONLY[:31], compact_size(0) + ORIGIN), "inputs[0].tap_bip32_derivation"),
    (_rec(0x17, b"", NOT_ON_CURVE), "inputs[0].tap_internal_key"),
    (_rec(0x17, b"", bytes(31)), "inputs[0].tap_internal_key"),
    (_rec(0x18, b"", bytes(31)), "inputs[0].tap_merkle_root"),
    (_rec(0x13, b"", bytes(63)), "inputs[0].tap_key_sig"),
    (_rec(0x13, b"", bytes(65)), "inputs[0].tap_key_sig"),
    (_rec(0x06, PUB, ORIGIN + b"\x00"), "inputs[0].bip32_derivation"),
    (_rec(0x06, PUB, b""), "inputs[0].bip32_derivation"),
    (_rec(0x06, b"\x02" + NOT_ON_CURVE, ORIGIN), "inputs[0].bip32_derivation"),
    (_rec(0x02, PUB, b"\x30\x06\x02\x01\x01\x02\x01\x01"), "inputs[0].partial_sig"),
    (_rec(0x02, PUB, b"\x30\x07\x02\x01\x81\x02\x01\x01\x01"), "inputs[0].partial_sig"),
    (_rec(0x02, PUB, b"\x30\x08\x02\x02\x00\x01\x02\x01\x01\x01"), "inputs[0].partial_sig"),
    (_rec(0x03, b"", b"\x01\x00\x00"), "inputs[0].sighash_type"),
    (_rec(0x08, b"", b"\x02\x01\x00"), "inputs[0].final_script_witness[1]"),
    (_rec(0x08, b"", b"\x01\x00\x00"), "inputs[0].final_script_witness"),
    (_rec(0x01, b"", bytes(8) + b"\x05\x51"), "inputs[0].witness_utxo.script_pubkey"),
    (_rec(0x01, b"", (2**63).to_bytes(8, "little") + b"\x00"), "inputs[0].witness_utxo.amount"),
    (_rec(0xFC, compact_size(5) + b"ab", b""), "inputs[0][0xfc].identifier"),
    (_rec(0x00, b"", PREV_TX.serialize()), "inputs[0].non_witness_utxo"),
]


@pytest.mark.parametrize(
    ("record", "field"), BAD_INPUT_RECORDS, ids=[f for _, f in BAD_INPUT_RECORDS]
)
def test_malformed_input_records(record: PsbtRecord, field: str) -> None:
    with pytest.raises(ChainError) as exc:
        parse_psbt(_raw(input_records=[record]))
    assert isinstance(exc.value, DecodeError | InvalidAmountError)
    assert exc.value.field == field


def test_non_witness_utxo_must_be_the_spent_transaction() -> None:
    record = _rec(0x00, b"", PREV_TX.serialize())
    raw = _raw(input_records=[record], prev_txid=PREV_TX.txid())
    psbt = parse_psbt(raw)
    assert psbt.spent_output(0) == PREV_TX.outputs[0]
    # The same transaction named by an outpoint index it does not have.
    spent_index_1 = create_psbt([OutPoint(PREV_TX.txid(), 1)], [TxOut(Satoshi(1), b"\x51")])
    bad = (
        MAGIC
        + b"".join(r.serialize() for r in spent_index_1.global_map)
        + b"\x00"
        + record.serialize()
        + b"\x00\x00"
    )
    with pytest.raises(DecodeError, match="no output at the spent index"):
        parse_psbt(bad)


GOOD_OUTPUT_RECORDS = {
    "tap_internal_key": _rec(0x05, b"", XONLY),
    "tap_tree": _rec(0x06, b"", b"\x01\xc0\x01\x51\x01\xc0\x01\x52"),
    "tap_bip32": _rec(0x07, XONLY, compact_size(0) + ORIGIN),
    "bip32": _rec(0x02, PUB, ORIGIN),
    "proprietary": _rec(0xFC, _proprietary_key(), b""),
}


@pytest.mark.parametrize("name", sorted(GOOD_OUTPUT_RECORDS))
def test_well_formed_output_records(name: str) -> None:
    raw = _raw(output_records=[GOOD_OUTPUT_RECORDS[name]])
    assert parse_psbt(raw).serialize() == raw


BAD_OUTPUT_RECORDS = [
    (_rec(0x06, b"", b""), "outputs[0].tap_tree"),
    (_rec(0x06, b"", b"\x81\xc0\x01\x51"), "outputs[0].tap_tree"),
    (_rec(0x06, b"", b"\x01\xc0\x05\x51"), "outputs[0].tap_tree.script"),
    (_rec(0x05, b"", bytes(31)), "outputs[0].tap_internal_key"),
    (_rec(0x05, b"\x01", XONLY), "outputs[0].tap_internal_key"),
    (_rec(0x02, PUB[:32], ORIGIN), "outputs[0].bip32_derivation"),
]


@pytest.mark.parametrize(
    ("record", "field"), BAD_OUTPUT_RECORDS, ids=[f for _, f in BAD_OUTPUT_RECORDS]
)
def test_malformed_output_records(record: PsbtRecord, field: str) -> None:
    with pytest.raises(DecodeError) as exc:
        parse_psbt(_raw(output_records=[record]))
    assert exc.value.field == field


def test_global_records() -> None:
    xpub_key = bytes.fromhex("0488b21e") + bytes(41) + PUB
    raw = _raw(global_records=[_rec(0x01, xpub_key, ORIGIN), _rec(0xFC, _proprietary_key(), b"")])
    assert parse_psbt(raw).globals.xpubs[0][0] == xpub_key
    with pytest.raises(DecodeError) as exc:
        parse_psbt(_raw(global_records=[_rec(0x01, xpub_key[:77], ORIGIN)]))
    assert exc.value.field == "global.xpub"
    with pytest.raises(DecodeError) as exc:
        parse_psbt(_raw(global_records=[_rec(0xFB, b"", b"\x00\x00")]))
    assert exc.value.field == "global.version"
    with pytest.raises(DecodeError) as exc:
        parse_psbt(_raw(global_records=[_rec(0xFB, b"\x01", u32(0))]))
    assert exc.value.field == "global.version"
