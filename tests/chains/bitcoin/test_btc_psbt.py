"""PSBT parsing and roles against the BIP174 and BIP370 test vectors.

Vectors: ``tests/vectors/psbt/bip174-cases.json`` and ``bip370-psbtv2-cases.json``,
transcribed from bitcoin/bips ``bip-0174.mediawiki`` and ``bip-0370.mediawiki`` ("Test
Vectors"). Every ``invalid`` case must raise a :class:`ChainError` subclass; every
``valid`` case must parse and re-serialize byte for byte (hex and base64 alike); every
``valid_parse_but_signer_must_refuse`` case must parse and then be refused by the signer
checks; BIP370's computed locktimes must match, and the case BIP370 says cannot be
computed must raise. The Input Finalizer finalizes the vector whose inputs it supports
(two signed P2WPKH inputs, checked by python-bitcointx's script interpreter) and refuses
every other signed or partly signed vector input with a typed error naming the input.
"""

import base64
from typing import Any

import pytest
from bitcointx import select_chain_params
from bitcointx.core import CTransaction
from bitcointx.core.psbt import PartiallySignedTransaction
from bitcointx.core.script import CScript, CScriptWitness
from bitcointx.core.scripteval import SCRIPT_VERIFY_P2SH, SCRIPT_VERIFY_WITNESS, VerifyScript
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shardvault.chains.amounts import Satoshi
from shardvault.chains.bitcoin import (
    KeyOrigin,
    LocktimeConflictError,
    OutPoint,
    PsbtSignerRefusal,
    TxOut,
    add_bip32_derivation,
    add_ecdsa_signature,
    add_tap_bip32_derivation,
    add_taproot_key_signature,
    check_input_signable,
    create_psbt,
    decode_psbt_text,
    extract_transaction,
    finalize,
    input_sighash,
    parse_psbt,
    set_sighash_type,
    set_witness_utxo,
)
from shardvault.chains.bitcoin.psbt import (
    IN_REDEEM_SCRIPT,
    IN_TAP_KEY_SIG,
    PsbtRecord,
)
from shardvault.chains.bitcoin.psbt_roles import (
    input_is_signed,
)
from shardvault.chains.errors import (
    ChainError,
    DecodeError,
    SignatureAssemblyError,
    UnsupportedError,
)
from tests.vectors import load_vector

from .helpers import (
    make_key,
    p2sh_script,
    p2tr_spend,
    p2wpkh_spend,
    sign_p2tr,
    sign_p2wpkh,
    with_input_records,
)

BIP174 = load_vector("psbt/bip174-cases.json")["cases"]
BIP370 = load_vector("psbt/bip370-psbtv2-cases.json")["cases"]
ALL_CASES = BIP174 + BIP370


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [f"{i}-{c['expect']}-{c['description'][:40]}" for i, c in enumerate(cases)]


@pytest.mark.parametrize("case", ALL_CASES, ids=_ids(ALL_CASES))
def test_vector(case: dict[str, Any]) -> None:
    raw = bytes.fromhex(case["hex"])
    assert base64.b64decode(case["base64"]) == raw
    if case["expect"] == "invalid":
        with pytest.raises(ChainError) as exc:
            parse_psbt(raw)
        assert exc.value.field, "the error names the field at fault"
        with pytest.raises(ChainError):
            decode_psbt_text(case["base64"])
        return
    psbt = parse_psbt(raw)
    assert psbt.serialize() == raw
    assert psbt.to_base64() == case["base64"]
    assert decode_psbt_text(case["hex"]) == psbt
    if case["expect"] == "valid_parse_but_signer_must_refuse":
        refused = []
        for index in range(len(psbt.inputs)):
            try:
                check_input_signable(psbt, index)
            except PsbtSignerRefusal as exc:
                refused.append((index, exc.field))
        assert refused, "the signer must refuse at least one input"
        for index, field in refused:
            assert field == f"inputs[{index}]"
            with pytest.raises(PsbtSignerRefusal):
                input_sighash(psbt, index)
    if "computed_locktime" in case:
        expected = case["computed_locktime"]
        if expected is None:
            with pytest.raises(LocktimeConflictError):
                psbt.computed_locktime()
        else:
            assert psbt.computed_locktime() == expected
            assert psbt.unsigned_transaction().locktime == expected


def test_bip370_required_fields_assemble_the_transaction() -> None:
    case = next(c for c in BIP370 if c["description"].startswith("1 input, 2 output PSBTv2, req"))
    psbt = parse_psbt(bytes.fromhex(case["hex"]))
    tx = psbt.unsigned_transaction()
    assert psbt.version == 2
    assert len(tx.inputs) == 1
    assert len(tx.outputs) == 2
    assert tx.version == psbt.globals.tx_version


def test_fees_agree_with_bitcointx() -> None:
    # python-bitcointx's PSBT class computes the fee of the vectors it can load; ours must
    # agree on each, and at least three vectors are compared.
    compared = 0
    for case in BIP174:
        if case["expect"] != "valid":
            continue
        ours = parse_psbt(bytes.fromhex(case["hex"]))
        try:
            theirs = PartiallySignedTransaction.from_base64(case["base64"]).get_fee()
        except Exception:
            continue
        if ours.fee() is None:
            continue
        assert ours.fee() == theirs
        compared += 1
    assert compared >= 3


def test_finalized_vector_input_is_reported_signed() -> None:
    case = next(c for c in BIP174 if "First input is signed and finalized" in c["description"])
    psbt = parse_psbt(bytes.fromhex(case["hex"]))
    assert psbt.inputs[0].is_finalized
    assert input_is_signed(psbt, 0)
    assert not input_is_signed(psbt, 1)
    assert psbt.fee() is None  # the finalized input no longer carries its UTXO


# BIP174 vectors with inputs the Finalizer does not handle: the description, then the
# error finalize must raise and the field it must name (the first input it cannot finalize).
_FINALIZE_REFUSALS = {
    # P2SH-P2WPKH with its redeemScript but no signature (input 0 is already final).
    "PSBT with one P2PKH input and one P2SH-P2WPKH input. First input is signed and "
    "finalized. Outputs are empty": (SignatureAssemblyError, "inputs[1].partial_sig", "no sig"),
    # P2PKH with a partial signature.
    "PSBT with one P2PKH input which has a non-final scriptSig and has a sighash type "
    "specified. Outputs are empty": (UnsupportedError, "inputs[0]", "p2pkh inputs is"),
    # P2SH-P2WSH 2-of-2 multisig with one signature.
    "PSBT with one P2SH-P2WSH input of a 2-of-2 multisig, redeemScript, witnessScript, and "
    "keypaths are available. Contains one signature.": (
        UnsupportedError,
        "inputs[0]",
        "p2wsh inputs inside P2SH",
    ),
    # P2WSH 2-of-2 multisig, unsigned.
    "PSBT with one P2WSH input of a 2-of-2 multisig. witnessScript, keypaths, and global "
    "xpubs are available. Contains no signatures. Outputs filled.": (
        UnsupportedError,
        "inputs[0]",
        "p2wsh inputs is",
    ),
    # Input 0: P2SH with a bare (non-segwit) 2-of-2 multisig redeemScript, one signature.
    "redeemScript with witness UTXO does not match the scriptPubKey": (
        UnsupportedError,
        "inputs[0]",
        "nonstandard inputs inside P2SH",
    ),
}


@pytest.mark.parametrize(
    "description", list(_FINALIZE_REFUSALS), ids=lambda d: str(d)[:40].replace(" ", "-")
)
def test_finalize_refuses_vector_inputs_it_cannot_finalize(description: str) -> None:
    (case,) = [c for c in BIP174 if c["description"] == description]
    error, field, match = _FINALIZE_REFUSALS[description]
    with pytest.raises(error, match=match) as exc:
        finalize(parse_psbt(bytes.fromhex(case["hex"])))
    assert exc.value.field == field


def test_finalize_vector_p2wpkh_inputs_checked_by_bitcointx() -> None:
    # The PSBT_GLOBAL_XPUB vector carries two P2WPKH inputs with one signature each: our
    # finalized transaction must satisfy python-bitcointx's interpreter on both inputs.
    select_chain_params("bitcoin/regtest")
    case = next(c for c in BIP174 if c["description"] == "PSBT with `PSBT_GLOBAL_XPUB`.")
    psbt = parse_psbt(bytes.fromhex(case["hex"]))
    final = finalize(psbt)
    tx = extract_transaction(final)
    ctx = CTransaction.deserialize(tx.serialize())
    for index, txin in enumerate(tx.inputs):
        spent = psbt.spent_output(index)
        assert spent is not None
        assert txin.script_sig == b""
        ((pubkey, signature),) = psbt.inputs[index].partial_sigs
        assert txin.witness == (signature, pubkey)
        VerifyScript(
            CScript(),
            CScript(spent.script_pubkey),
            ctx,
            index,
            flags={SCRIPT_VERIFY_P2SH, SCRIPT_VERIFY_WITNESS},
            amount=spent.value,
            witness=CScriptWitness(list(txin.witness)),
        )


def test_finalize_refuses_p2sh_wrapped_witness_v1() -> None:
    # BIP341: a witness version 1 program inside P2SH is not taproot, so a key-path
    # signature does not make it final; finalize must not build a taproot witness for it.
    psbt, key = p2tr_spend()
    signed = sign_p2tr(psbt, 0, key)
    tap_key_sig = signed.inputs[0].tap_key_sig
    assert tap_key_sig is not None
    spent = signed.spent_output(0)
    assert spent is not None
    redeem_script = spent.script_pubkey
    wrapped = create_psbt([OutPoint(bytes(32), 0)], signed.transaction_outputs())
    wrapped = set_witness_utxo(wrapped, 0, TxOut(spent.value, p2sh_script(redeem_script)))
    wrapped = with_input_records(
        wrapped,
        0,
        PsbtRecord(IN_REDEEM_SCRIPT, b"", redeem_script),
        PsbtRecord(IN_TAP_KEY_SIG, b"", tap_key_sig),
    )
    with pytest.raises(UnsupportedError, match="p2tr inputs inside P2SH") as exc:
        finalize(wrapped)
    assert exc.value.field == "inputs[0]"


# --- Roles: error paths -----------------------------------------------------------------


def test_ecdsa_signature_checks() -> None:
    psbt, key = p2wpkh_spend()
    digest = input_sighash(psbt, 0)
    der = key.sign(digest, hasher=None)
    pub = key.public_key.format()
    with pytest.raises(SignatureAssemblyError, match="sighash byte"):
        add_ecdsa_signature(psbt, 0, pub, der + b"\x02")
    with pytest.raises(SignatureAssemblyError, match="strict DER"):
        add_ecdsa_signature(psbt, 0, pub, b"\x30\x01\x01")
    other = make_key("someone else")
    with pytest.raises(SignatureAssemblyError, match="does not match the witness program"):
        add_ecdsa_signature(psbt, 0, other.public_key.format(), der + b"\x01")
    with pytest.raises(SignatureAssemblyError, match="compressed"):
        add_ecdsa_signature(psbt, 0, key.public_key.format(compressed=False), der + b"\x01")
    tr, _ = p2tr_spend()
    with pytest.raises(SignatureAssemblyError, match="P2WPKH"):
        add_ecdsa_signature(tr, 0, pub, der + b"\x01")
    # A high-s twin of a valid signature is refused (BIP146 LOW_S).
    r_len = der[3]
    r = int.from_bytes(der[4 : 4 + r_len], "big")
    s = int.from_bytes(der[6 + r_len :], "big")
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = (n - s).to_bytes(33, "big")
    r_bytes = der[4 : 4 + r_len]
    body = b"\x02" + bytes([len(r_bytes)]) + r_bytes + b"\x02\x21" + high_s
    with pytest.raises(SignatureAssemblyError, match="does not verify"):
        add_ecdsa_signature(psbt, 0, pub, b"\x30" + bytes([len(body)]) + body + b"\x01")
    assert r > 0


def test_sighash_type_is_honoured() -> None:
    psbt, key = p2wpkh_spend()
    psbt = set_sighash_type(psbt, 0, 0x83)
    digest = input_sighash(psbt, 0)
    signed = add_ecdsa_signature(
        psbt, 0, key.public_key.format(), key.sign(digest, hasher=None) + b"\x83"
    )
    assert extract_transaction(finalize(signed)).inputs[0].witness[0][-1] == 0x83


def test_taproot_signature_checks() -> None:
    psbt, key = p2tr_spend()
    signed = sign_p2tr(psbt, 0, key)
    sig = signed.inputs[0].tap_key_sig
    assert sig is not None
    with pytest.raises(SignatureAssemblyError, match="64 or 65"):
        add_taproot_key_signature(psbt, 0, sig[:63])
    with pytest.raises(SignatureAssemblyError, match="hash type 0"):
        add_taproot_key_signature(psbt, 0, sig + b"\x00")
    with pytest.raises(SignatureAssemblyError, match="not the input's"):
        add_taproot_key_signature(psbt, 0, sig + b"\x01")
    with pytest.raises(SignatureAssemblyError, match="does not verify"):
        add_taproot_key_signature(psbt, 0, sig[:-1] + bytes([sig[-1] ^ 1]))
    wpkh, _ = p2wpkh_spend()
    with pytest.raises(SignatureAssemblyError, match="P2TR"):
        add_taproot_key_signature(wpkh, 0, sig)


def test_taproot_internal_key_must_tweak_to_output() -> None:
    psbt, _ = p2tr_spend()
    wrong = bytes.fromhex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
    from shardvault.chains.bitcoin import set_tap_internal_key

    with pytest.raises(PsbtSignerRefusal, match="does not tweak"):
        input_sighash(set_tap_internal_key(psbt, 0, wrong), 0)


def test_finalize_and_extract_refuse_unsigned_inputs() -> None:
    psbt, _ = p2wpkh_spend()
    with pytest.raises(SignatureAssemblyError, match="no signature"):
        finalize(psbt)
    with pytest.raises(SignatureAssemblyError, match="not finalized"):
        extract_transaction(psbt)
    tr, _ = p2tr_spend()
    with pytest.raises(SignatureAssemblyError, match="no key-path signature"):
        finalize(tr)


def test_missing_utxo_and_unsupported_script() -> None:
    bare = create_psbt([OutPoint(bytes(32), 0)], [TxOut(Satoshi(1000), b"\x51")])
    with pytest.raises(PsbtSignerRefusal, match="neither a witness nor a non-witness UTXO"):
        input_sighash(bare, 0)
    from shardvault.chains.bitcoin import set_witness_utxo

    p2wsh = set_witness_utxo(bare, 0, TxOut(Satoshi(5000), b"\x00\x20" + bytes(32)))
    with pytest.raises(UnsupportedError):
        input_sighash(p2wsh, 0)
    with pytest.raises(ChainError) as exc:
        input_sighash(bare, 3)
    assert exc.value.field == "input_index"


def test_updater_records_round_trip() -> None:
    psbt, key = p2wpkh_spend()
    origin = KeyOrigin(bytes.fromhex("d90c6a4f"), (0x80000054, 0x80000000, 0x80000000, 0, 5))
    psbt = add_bip32_derivation(psbt, 0, key.public_key.format(), origin)
    xonly = key.public_key.format()[1:]
    psbt = add_tap_bip32_derivation(psbt, 0, xonly, origin)
    again = parse_psbt(psbt.serialize())
    assert again == psbt
    assert again.inputs[0].bip32_derivations == ((key.public_key.format(), origin),)
    assert str(origin) == "d90c6a4f/84'/0'/0'/0/5"
    with pytest.raises(DecodeError):
        add_bip32_derivation(psbt, 0, b"\x02" + bytes(31), origin)
    signed = sign_p2wpkh(psbt, 0, key)
    # The finalizer drops the derivation records and keeps the UTXO.
    final = finalize(signed)
    assert [r.key_type for r in final.input_maps[0]] == [0x01, 0x08]


def test_create_refuses_signed_inputs() -> None:
    from shardvault.chains.bitcoin import TxIn

    with pytest.raises(DecodeError):
        create_psbt([TxIn(OutPoint(bytes(32), 0), b"\x00")], [])


def test_text_decoding_errors() -> None:
    for bad in ("not a psbt!", "70736274ffzz", "cHNidP8=="):
        with pytest.raises(DecodeError):
            decode_psbt_text(bad)
    with pytest.raises(DecodeError, match="too long"):
        decode_psbt_text("A" * 9_000_000)
    with pytest.raises(DecodeError, match="limit"):
        parse_psbt(b"psbt\xff" + bytes(4_000_000))


def test_unsupported_version() -> None:
    # A v0 PSBT of 0 inputs/outputs with PSBT_GLOBAL_VERSION = 1.
    raw = bytes.fromhex("70736274ff01000a0000000000000000000001fb040100000000")
    with pytest.raises(UnsupportedError) as exc:
        parse_psbt(raw)
    assert exc.value.field == "global.version"


# --- Property tests ---------------------------------------------------------------------

_SEEDS = [bytes.fromhex(c["hex"]) for c in ALL_CASES if c["expect"] != "invalid"]


@given(
    seed=st.sampled_from(_SEEDS),
    position=st.integers(min_value=0),
    value=st.integers(min_value=0, max_value=255),
    cut=st.integers(min_value=0),
)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_psbt_parser_fuzz_only_typed_errors(
    seed: bytes, position: int, value: int, cut: int
) -> None:
    mutated = bytearray(seed)
    mutated[position % len(mutated)] = value
    for candidate in (bytes(mutated), seed[: cut % (len(seed) + 1)]):
        try:
            psbt = parse_psbt(candidate)
        except ChainError:
            continue
        # Whatever parses re-serializes to the same bytes.
        assert psbt.serialize() == candidate


@given(st.binary(max_size=300))
def test_psbt_parser_random_bytes(data: bytes) -> None:
    for candidate in (data, b"psbt\xff" + data):
        try:
            parse_psbt(candidate)
        except ChainError:
            pass


@given(
    amounts=st.lists(st.integers(min_value=0, max_value=21 * 10**14), min_size=0, max_size=4),
    locktime=st.integers(min_value=0, max_value=2**32 - 1),
    version=st.integers(min_value=-(2**31), max_value=2**31 - 1),
    n_inputs=st.integers(min_value=0, max_value=3),
)
def test_created_psbt_round_trip(
    amounts: list[int], locktime: int, version: int, n_inputs: int
) -> None:
    inputs = [OutPoint(bytes([i]) * 32, i) for i in range(n_inputs)]
    outputs = [TxOut(Satoshi(a), b"\x00\x14" + bytes(20)) for a in amounts]
    psbt = create_psbt(inputs, outputs, tx_version=version, locktime=locktime)
    again = parse_psbt(psbt.serialize())
    assert again == psbt
    assert again.unsigned_transaction().outputs == tuple(outputs)


def test_invalid_vectors_name_the_right_field() -> None:
    # A sample of BIP174's invalid cases, each with the field the error must name.
    expected = {
        "PSBT with unsigned tx serialized with witness serialization format": (
            "global.unsigned_tx"
        ),
        "PSBT with duplicate keys in an input": "inputs[0]",
        "PSBT with invalid input sighash type typed key": "inputs[0].sighash_type",
        "PSBT missing outputs": "outputs[0].key",
        "PSBT where inputs and outputs are provided but without an unsigned tx": (
            "global.unsigned_tx"
        ),
    }
    for case in BIP174:
        if case["description"] in expected:
            with pytest.raises(DecodeError) as exc:
                parse_psbt(bytes.fromhex(case["hex"]))
            assert exc.value.field == expected.pop(case["description"])
    assert not expected, f"descriptions not found: {expected}"


def test_v2_fields_without_a_computable_locktime() -> None:
    # BIP370's last locktime case cannot be assembled, yet its inputs and outputs (and any
    # fee) can still be read without computing the locktime.
    case = next(c for c in BIP370 if c.get("locktime_note"))
    psbt = parse_psbt(bytes.fromhex(case["hex"]))
    with pytest.raises(LocktimeConflictError):
        psbt.unsigned_transaction()
    assert len(psbt.transaction_outputs()) == len(psbt.outputs)
    assert psbt.prevout(0).txid == psbt.inputs[0].previous_txid
    psbt.fee()


def test_require_full_utxo_for_segwit_v0() -> None:
    from shardvault.chains.bitcoin import (
        Transaction,
        TxIn,
        add_ecdsa_signature,
        p2wpkh_script,
        set_non_witness_utxo,
        set_witness_utxo,
    )

    key = make_key("full utxo")
    spk = p2wpkh_script(key.public_key.format())
    previous = Transaction(2, (TxIn(OutPoint(bytes(32), 0)),), (TxOut(Satoshi(100_000), spk),), 0)
    psbt = create_psbt([OutPoint(previous.txid(), 0)], [TxOut(Satoshi(90_000), spk)])
    psbt = set_witness_utxo(psbt, 0, previous.outputs[0])
    with pytest.raises(PsbtSignerRefusal) as exc:
        input_sighash(psbt, 0, require_full_utxo=True)
    assert exc.value.field == "inputs[0].non_witness_utxo"
    full = set_non_witness_utxo(psbt, 0, previous)
    digest = input_sighash(full, 0, require_full_utxo=True)
    assert digest == input_sighash(psbt, 0)
    signed = add_ecdsa_signature(
        full, 0, key.public_key.format(), key.sign(digest, hasher=None) + b"\x01"
    )
    assert finalize(signed).inputs[0].non_witness_utxo == previous
    wrong = Transaction(2, (TxIn(OutPoint(bytes(32), 1)),), (TxOut(Satoshi(100_000), spk),), 0)
    with pytest.raises(DecodeError, match="not the transaction the input spends"):
        set_non_witness_utxo(psbt, 0, wrong)


def test_require_full_utxo_covers_p2sh_wrapped_siblings() -> None:
    """A P2SH-P2WPKH sibling's amount is committed by its own BIP143 signature only, as a
    native one's: without its previous transaction it is as unproven."""
    from shardvault.chains.bitcoin import (
        Transaction,
        TxIn,
        p2wpkh_script,
        set_non_witness_utxo,
        set_witness_utxo,
    )

    spk = p2wpkh_script(make_key("full utxo").public_key.format())
    redeem = p2wpkh_script(make_key("wrapped sibling").public_key.format())
    previous = Transaction(2, (TxIn(OutPoint(bytes(32), 0)),), (TxOut(Satoshi(100_000), spk),), 0)
    psbt = create_psbt(
        [OutPoint(previous.txid(), 0), OutPoint(bytes(range(32)), 0)],
        [TxOut(Satoshi(90_000), spk)],
    )
    psbt = set_non_witness_utxo(set_witness_utxo(psbt, 0, previous.outputs[0]), 0, previous)
    psbt = set_witness_utxo(psbt, 1, TxOut(Satoshi(1_000), p2sh_script(redeem)))
    psbt = with_input_records(psbt, 1, PsbtRecord(IN_REDEEM_SCRIPT, b"", redeem))
    with pytest.raises(PsbtSignerRefusal) as exc:
        input_sighash(psbt, 0, require_full_utxo=True)
    assert exc.value.field == "inputs[1].non_witness_utxo"
