"""Transaction serialization and sighashes, differentially against python-bitcointx.

Random transactions (hypothesis) must serialize as bitcointx serializes them and parse
back to themselves; our BIP143 and BIP341 signature hashes must equal bitcointx's
``SignatureHash(..., SIGVERSION_WITNESS_V0)`` and ``SignatureHashSchnorr`` for every
hash type; the raw-transaction parser may raise only ChainError subclasses on any input.
"""

import pytest
from bitcointx.core import CTransaction, CTxOut
from bitcointx.core.script import (
    SIGVERSION_WITNESS_V0,
    CScript,
    SIGHASH_Type,
    SignatureHash,
    SignatureHashSchnorr,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shardvault.chains.amounts import MAX_SATOSHI, Satoshi
from shardvault.chains.bitcoin import OutPoint, Transaction, TxIn, TxOut, parse_transaction
from shardvault.chains.bitcoin.encoding import ByteReader, compact_size
from shardvault.chains.bitcoin.script import p2wpkh_script_code
from shardvault.chains.bitcoin.sighash import (
    SighashError,
    segwit_v0_sighash,
    taproot_key_path_sighash,
)
from shardvault.chains.errors import ChainError, DecodeError, InvalidAmountError, UnsupportedError

outpoints = st.builds(OutPoint, st.binary(min_size=32, max_size=32), st.integers(0, 2**32 - 1))
txouts = st.builds(TxOut, st.integers(0, MAX_SATOSHI).map(Satoshi), st.binary(max_size=60))


@st.composite
def transactions(
    draw: st.DrawFn, *, min_inputs: int = 1, witness: bool = True, locktime_max: int = 2**32 - 1
) -> Transaction:
    n = draw(st.integers(min_inputs, 4))
    inputs = tuple(
        TxIn(
            draw(outpoints),
            draw(st.binary(max_size=40)),
            draw(st.integers(0, 2**32 - 1)),
            tuple(draw(st.lists(st.binary(max_size=40), max_size=3))) if witness else (),
        )
        for _ in range(n)
    )
    outputs = tuple(draw(st.lists(txouts, max_size=4)))
    return Transaction(
        draw(st.integers(-(2**31), 2**31 - 1)), inputs, outputs, draw(st.integers(0, locktime_max))
    )


@given(transactions())
def test_round_trip_and_bitcointx_agree(tx: Transaction) -> None:
    raw = tx.serialize()
    assert parse_transaction(raw) == tx
    theirs = CTransaction.deserialize(raw)
    assert theirs.serialize() == raw
    assert theirs.GetTxid()[::-1].hex() == tx.txid_hex
    assert tx.vsize() == theirs.get_virtual_size()
    # Without witness it also round-trips (for transactions with inputs).
    stripped = parse_transaction(tx.serialize(include_witness=False))
    assert stripped.txid() == tx.txid()


@given(st.binary(max_size=400))
def test_raw_tx_parser_fuzz_only_typed_errors(data: bytes) -> None:
    try:
        tx = parse_transaction(data)
    except ChainError:
        return
    assert tx.serialize() == data


@given(transactions(), st.integers(min_value=0), st.integers(0, 255))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_raw_tx_parser_mutation_fuzz(tx: Transaction, position: int, value: int) -> None:
    raw = bytearray(tx.serialize())
    raw[position % len(raw)] = value
    try:
        parse_transaction(bytes(raw))
    except ChainError:
        pass


HASH_TYPES_V0 = [0x01, 0x02, 0x03, 0x81, 0x82, 0x83]
HASH_TYPES_TAPROOT = [0x00, 0x01, 0x02, 0x03, 0x81, 0x82, 0x83]


# bitcointx packs the BIP143 locktime as a signed 32-bit integer (it is unsigned in
# Bitcoin Core), so its differential stays below 2**31.
@given(
    transactions(witness=False, locktime_max=2**31 - 1),
    st.data(),
    st.sampled_from(HASH_TYPES_V0),
)
def test_bip143_matches_bitcointx(tx: Transaction, data: st.DataObject, hash_type: int) -> None:
    index = data.draw(st.integers(0, len(tx.inputs) - 1))
    key_hash = data.draw(st.binary(min_size=20, max_size=20))
    amount = data.draw(st.integers(0, MAX_SATOSHI))
    ours = segwit_v0_sighash(tx, index, p2wpkh_script_code(key_hash), amount, hash_type)
    script = CScript(p2wpkh_script_code(key_hash)[1:])
    theirs = SignatureHash(
        script,
        CTransaction.deserialize(tx.serialize()),
        index,
        SIGHASH_Type(hash_type),
        amount=amount,
        sigversion=SIGVERSION_WITNESS_V0,
    )
    assert ours == theirs


@given(transactions(witness=False), st.data(), st.sampled_from(HASH_TYPES_TAPROOT))
def test_bip341_key_path_matches_bitcointx(
    tx: Transaction, data: st.DataObject, hash_type: int
) -> None:
    index = data.draw(st.integers(0, len(tx.inputs) - 1))
    spent = [data.draw(txouts) for _ in tx.inputs]
    ctx = CTransaction.deserialize(tx.serialize())
    cspent = [CTxOut(o.value, CScript(o.script_pubkey)) for o in spent]
    if hash_type & 0x03 == 0x03 and index >= len(tx.outputs):
        with pytest.raises(SighashError):
            taproot_key_path_sighash(tx, index, spent, hash_type)
        return
    ours = taproot_key_path_sighash(tx, index, spent, hash_type)
    theirs = SignatureHashSchnorr(
        ctx, index, cspent, hashtype=SIGHASH_Type(hash_type) if hash_type else None
    )
    assert ours == theirs


def test_sighash_bad_arguments() -> None:
    tx = Transaction(2, (TxIn(OutPoint(bytes(32), 0)),), (), 0)
    with pytest.raises(SighashError) as exc:
        segwit_v0_sighash(tx, 1, b"", 0)
    assert exc.value.field == "input_index"
    with pytest.raises(UnsupportedError):
        taproot_key_path_sighash(tx, 0, [TxOut(Satoshi(1), b"")], 0x04)
    with pytest.raises(SighashError) as exc:
        taproot_key_path_sighash(tx, 0, [], 0x00)
    assert exc.value.field == "spent_outputs"


def test_bad_raw_transactions_name_the_field() -> None:
    good = Transaction(
        2,
        (TxIn(OutPoint(bytes(32), 0), b"", 0xFFFFFFFF, (b"\x01",)),),
        (TxOut(Satoshi(1000), b"\x51"),),
        0,
    ).serialize()
    cases: list[tuple[bytes, str]] = [
        (good[:-2], "locktime"),
        (good + b"\x00", "transaction"),
        # A witness flag with only empty stacks is refused (Core: superfluous witness).
        (good[:4] + b"\x00\x01" + good[6:-8] + b"\x00" + good[-4:], "witness"),
        (good[:4] + b"\x00\x02" + good[6:], "flag"),
    ]
    for raw, field in cases:
        with pytest.raises(DecodeError) as exc:
            parse_transaction(raw)
        assert exc.value.field == field, raw.hex()
    # A value above 21e14 satoshi.
    overflow = good.replace((1000).to_bytes(8, "little"), (MAX_SATOSHI + 1).to_bytes(8, "little"))
    with pytest.raises(InvalidAmountError) as exc2:
        parse_transaction(overflow)
    assert exc2.value.field == "outputs[0].value"
    with pytest.raises(DecodeError, match="limit"):
        parse_transaction(bytes(4_000_001))


def test_compact_size_is_canonical() -> None:
    for value in (0, 0xFC, 0xFD, 0xFFFF, 0x10000, 0xFFFFFFFF, 0x100000000):
        assert ByteReader(compact_size(value)).compact_size("n") == value
    for non_minimal in (
        b"\xfd\xfc\x00",
        b"\xfe\xff\xff\x00\x00",
        b"\xff" + (1).to_bytes(8, "little"),
    ):
        with pytest.raises(DecodeError, match="shortest"):
            ByteReader(non_minimal).compact_size("n")
    with pytest.raises(DecodeError, match="declares"):
        ByteReader(b"\xfe\xff\xff\xff\x00").count("inputs", 41)


def test_model_validation() -> None:
    with pytest.raises(DecodeError):
        OutPoint(bytes(31), 0)
    with pytest.raises(InvalidAmountError):
        TxOut(Satoshi(-1), b"")
    with pytest.raises(DecodeError):
        Transaction(2**31, (), (), 0)
    assert str(OutPoint.from_display("ab" * 32, 3)) == "ab" * 32 + ":3"
    with pytest.raises(DecodeError):
        OutPoint.from_display("zz", 0)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0.000000001", "9 decimal places"),
        ("-1", "non-negative"),
        ("21000000.00000001", "largest amount"),
        ("1e3", "non-negative"),
        ("1,5", "non-negative"),
        ("", "non-negative"),
        ("9" * 101, "at most 100"),
    ],
)
def test_btc_amount_parsing_refuses(text: str, reason: str) -> None:
    from shardvault.chains.bitcoin import parse_btc_amount

    with pytest.raises(InvalidAmountError, match=reason) as exc:
        parse_btc_amount(text, field="outputs[0].amount")
    assert exc.value.field == "outputs[0].amount"


def test_btc_amount_parsing() -> None:
    from shardvault.chains.bitcoin import parse_btc_amount

    assert parse_btc_amount("0.00000001") == 1
    assert parse_btc_amount("21000000") == MAX_SATOSHI
    assert parse_btc_amount("1.5") == 150_000_000
