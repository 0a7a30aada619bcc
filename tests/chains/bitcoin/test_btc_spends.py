"""P2WPKH, P2SH-P2WPKH and P2TR key-path spends, end to end, checked by others' verifiers.

Each spend is built as a PSBT by shardvault (create, update), signed with a TEST-ONLY key
by coincurve over the sighash shardvault computed, attached through shardvault's Signer
(which verifies it), finalized and extracted by shardvault. The P2SH-P2WPKH signature and
redeemScript are attached as raw records instead, as from another wallet's PSBT: the
Signer takes only P2WPKH and P2TR, while the Finalizer also finalizes nested P2WPKH. Then:

* python-bitcointx's script interpreter ``VerifyScript`` runs the P2WPKH and P2SH-P2WPKH
  inputs with the P2SH and witness rules on (BIP143 sighash recomputed by bitcointx).
  bitcointx's interpreter treats every witness v1 program as "anyone can spend" (it has
  no taproot rules), so for P2TR we recompute the BIP341 sighash with bitcointx's
  ``SignatureHashSchnorr`` and verify the BIP340 signature against the output key with
  bitcointx's ``XOnlyPubKey.verify_schnorr``.
* bitcoinjs-lib (npm, CI installs it) runs ``validateSignaturesOfInput`` on the signed
  PSBT, then finalizes and extracts with its own code; its txid and raw hex must equal ours.
"""

import json
import shutil
import subprocess

import pytest
from bitcointx import select_chain_params
from bitcointx.core import CTransaction, CTxOut, ValidationError
from bitcointx.core.key import XOnlyPubKey
from bitcointx.core.script import CScript, CScriptWitness, SignatureHashSchnorr
from bitcointx.core.scripteval import (
    SCRIPT_VERIFY_P2SH,
    SCRIPT_VERIFY_WITNESS,
    VerifyScript,
    VerifyScriptError,
)

from shardvault.chains.bitcoin import (
    Psbt,
    Transaction,
    extract_transaction,
    finalize,
    input_sighash,
    parse_psbt,
)
from shardvault.chains.errors import SignatureAssemblyError

from .helpers import (
    REPO_ROOT,
    p2sh_p2wpkh_spend,
    p2tr_spend,
    p2wpkh_spend,
    sign_p2sh_p2wpkh,
    sign_p2tr,
    sign_p2wpkh,
)

NODE_SCRIPT = REPO_ROOT / "tests" / "chains" / "bitcoin" / "verify_psbt.cjs"


@pytest.fixture(autouse=True)
def _regtest() -> None:
    select_chain_params("bitcoin/regtest")


def _bitcointx_tx(tx: Transaction) -> CTransaction:
    return CTransaction.deserialize(tx.serialize())


def _run_bitcoinjs(psbt: Psbt) -> dict[str, object]:
    if not (REPO_ROOT / "node_modules" / "bitcoinjs-lib").is_dir():
        pytest.skip("node_modules is absent: run `npm install` (CI does)")
    node = shutil.which("node")
    assert node is not None, "node is required once node_modules exists"
    result = subprocess.run(
        [node, str(NODE_SCRIPT)],
        input=json.dumps({"psbt": psbt.to_base64()}),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    out: dict[str, object] = json.loads(result.stdout)
    return out


def test_p2wpkh_spend_accepted_by_bitcointx_script_interpreter() -> None:
    psbt, key = p2wpkh_spend()
    signed = sign_p2wpkh(psbt, 0, key)
    tx = extract_transaction(finalize(signed))
    spent = signed.spent_output(0)
    assert spent is not None
    ctx = _bitcointx_tx(tx)
    flags = {SCRIPT_VERIFY_P2SH, SCRIPT_VERIFY_WITNESS}
    VerifyScript(
        CScript(),
        CScript(spent.script_pubkey),
        ctx,
        0,
        flags=flags,
        amount=spent.value,
        witness=CScriptWitness(list(tx.inputs[0].witness)),
    )
    # The same witness must fail for any other amount: the BIP143 sighash commits to it.
    with pytest.raises(VerifyScriptError):
        VerifyScript(
            CScript(),
            CScript(spent.script_pubkey),
            ctx,
            0,
            flags=flags,
            amount=spent.value + 1,
            witness=CScriptWitness(list(tx.inputs[0].witness)),
        )
    # bitcointx re-parses our serialization to the same txid and wtxid.
    assert ctx.GetTxid()[::-1].hex() == tx.txid_hex
    assert ctx.serialize() == tx.serialize()


def test_p2sh_p2wpkh_spend_accepted_by_bitcointx_script_interpreter() -> None:
    psbt, key = p2sh_p2wpkh_spend()
    signed = sign_p2sh_p2wpkh(psbt, 0, key)
    redeem_script = signed.inputs[0].redeem_script
    assert redeem_script is not None
    final = finalize(signed)
    # BIP141 "P2WPKH nested in BIP16 P2SH": the scriptSig is exactly one push of the
    # 22-byte redeemScript ``OP_0 <20-byte key hash>``; the witness is <signature> <pubkey>.
    assert final.inputs[0].final_script_sig == b"\x16" + redeem_script
    assert final.inputs[0].final_script_witness == signed.inputs[0].partial_sigs[0][::-1]
    # BIP174 Finalizer: the UTXO and both final fields remain, nothing else.
    assert [r.key_type for r in final.input_maps[0]] == [0x01, 0x07, 0x08]
    tx = extract_transaction(final)
    assert tx.inputs[0].script_sig == b"\x16" + redeem_script
    spent = signed.spent_output(0)
    assert spent is not None
    ctx = _bitcointx_tx(tx)
    flags = {SCRIPT_VERIFY_P2SH, SCRIPT_VERIFY_WITNESS}
    witness = CScriptWitness(list(tx.inputs[0].witness))
    VerifyScript(
        CScript(tx.inputs[0].script_sig),
        CScript(spent.script_pubkey),
        ctx,
        0,
        flags=flags,
        amount=spent.value,
        witness=witness,
    )
    # The interpreter refuses the same witness behind an empty scriptSig (nothing for
    # OP_HASH160 to hash), and for any other amount (the BIP143 sighash commits to it).
    for script_sig, amount in ((b"", spent.value), (tx.inputs[0].script_sig, spent.value + 1)):
        with pytest.raises(ValidationError):
            VerifyScript(
                CScript(script_sig),
                CScript(spent.script_pubkey),
                ctx,
                0,
                flags=flags,
                amount=amount,
                witness=witness,
            )
    assert ctx.serialize() == tx.serialize()


def test_p2tr_key_path_spend_checked_by_bitcointx() -> None:
    psbt, key = p2tr_spend()
    signed = sign_p2tr(psbt, 0, key)
    tx = extract_transaction(finalize(signed))
    spent = signed.spent_output(0)
    assert spent is not None
    ctx = _bitcointx_tx(tx)
    theirs = SignatureHashSchnorr(ctx, 0, [CTxOut(spent.value, CScript(spent.script_pubkey))])
    assert theirs == input_sighash(psbt, 0)
    (signature,) = tx.inputs[0].witness
    assert len(signature) == 64
    output_key = XOnlyPubKey(spent.script_pubkey[2:])
    assert output_key.verify_schnorr(theirs, signature)
    assert not output_key.verify_schnorr(theirs, signature[:-1] + bytes([signature[-1] ^ 1]))


@pytest.mark.node
@pytest.mark.parametrize(
    "kind",
    [
        "p2wpkh",
        "p2sh-p2wpkh",
        "p2tr",
    ],
)
def test_spend_accepted_by_bitcoinjs(kind: str) -> None:
    if kind == "p2wpkh":
        psbt, key = p2wpkh_spend()
        signed = sign_p2wpkh(psbt, 0, key)
    elif kind == "p2sh-p2wpkh":
        psbt, key = p2sh_p2wpkh_spend()
        signed = sign_p2sh_p2wpkh(psbt, 0, key)
    else:
        psbt, key = p2tr_spend()
        signed = sign_p2tr(psbt, 0, key)
    result = _run_bitcoinjs(signed)
    assert result["valid"] == [True]
    ours = extract_transaction(finalize(signed))
    assert result["txid"] == ours.txid_hex
    assert result["hex"] == ours.serialize().hex()


@pytest.mark.node
def test_bitcoinjs_rejects_a_tampered_signature() -> None:
    psbt, key = p2wpkh_spend()
    signed = sign_p2wpkh(psbt, 0, key)
    raw = bytearray(signed.serialize())
    sig = signed.inputs[0].partial_sigs[0][1]
    at = bytes(raw).index(sig) + 10
    raw[at] ^= 0x01
    tampered = parse_psbt(bytes(raw))
    assert _run_bitcoinjs(tampered)["valid"] == [False]


def test_signer_refuses_signature_over_another_digest() -> None:
    psbt, key = p2wpkh_spend()
    other, _ = p2wpkh_spend(send=80_000)
    bad = key.sign(input_sighash(other, 0), hasher=None) + b"\x01"
    from shardvault.chains.bitcoin import add_ecdsa_signature

    with pytest.raises(SignatureAssemblyError) as exc:
        add_ecdsa_signature(psbt, 0, key.public_key.format(), bad)
    assert exc.value.field == "inputs[0].partial_sig"


def test_round_trip_of_the_signed_psbt_and_transaction() -> None:
    psbt, key = p2tr_spend()
    signed = sign_p2tr(psbt, 0, key)
    assert parse_psbt(signed.serialize()) == signed
    final = finalize(signed)
    # BIP174 Finalizer: only the UTXO and final fields remain.
    assert [r.key_type for r in final.input_maps[0]] == [0x01, 0x08]
    tx = extract_transaction(final)
    assert tx.vsize() == 111
    assert signed.fee() == 50_000


def _mixed_psbt() -> Psbt:
    """Two inputs (P2WPKH, then P2TR with SIGHASH_ALL), two outputs, both inputs signed."""
    from coincurve import PublicKeyXOnly

    from shardvault.chains.amounts import Satoshi
    from shardvault.chains.bitcoin import (
        TxOut,
        create_psbt,
        output_key,
        p2wpkh_script,
        set_sighash_type,
        set_tap_internal_key,
        set_witness_utxo,
    )

    from .helpers import funding_outpoint, make_key

    wpkh_key, tr_key = make_key("mixed p2wpkh"), make_key("mixed p2tr")
    internal = PublicKeyXOnly.from_secret(tr_key.secret).format()
    psbt = create_psbt(
        [funding_outpoint("mixed a"), funding_outpoint("mixed b")],
        [
            TxOut(Satoshi(120_000), output_key(internal).script_pubkey),
            TxOut(Satoshi(70_000), p2wpkh_script(wpkh_key.public_key.format())),
        ],
        locktime=800_000,
    )
    psbt = set_witness_utxo(
        psbt, 0, TxOut(Satoshi(90_000), p2wpkh_script(wpkh_key.public_key.format()))
    )
    psbt = set_witness_utxo(psbt, 1, TxOut(Satoshi(110_000), output_key(internal).script_pubkey))
    psbt = set_tap_internal_key(psbt, 1, internal)
    psbt = set_sighash_type(psbt, 1, 0x01)
    psbt = sign_p2wpkh(psbt, 0, wpkh_key)
    return sign_p2tr(psbt, 1, tr_key)


def test_mixed_inputs_checked_by_bitcointx() -> None:
    signed = _mixed_psbt()
    assert signed.fee() == 10_000
    tap_sig = signed.inputs[1].tap_key_sig
    assert tap_sig is not None
    assert len(tap_sig) == 65
    assert tap_sig[64] == 0x01
    tx = extract_transaction(finalize(signed))
    ctx = _bitcointx_tx(tx)
    spent = [signed.spent_output(i) for i in range(2)]
    assert spent[0] is not None
    assert spent[1] is not None
    VerifyScript(
        CScript(),
        CScript(spent[0].script_pubkey),
        ctx,
        0,
        flags={SCRIPT_VERIFY_P2SH, SCRIPT_VERIFY_WITNESS},
        amount=spent[0].value,
        witness=CScriptWitness(list(tx.inputs[0].witness)),
    )
    from bitcointx.core.script import SIGHASH_Type

    theirs = SignatureHashSchnorr(
        ctx,
        1,
        [CTxOut(o.value, CScript(o.script_pubkey)) for o in spent if o is not None],
        hashtype=SIGHASH_Type(0x01),
    )
    assert theirs == input_sighash(signed, 1)
    assert XOnlyPubKey(spent[1].script_pubkey[2:]).verify_schnorr(theirs, tap_sig[:64])


@pytest.mark.node
def test_mixed_inputs_accepted_by_bitcoinjs() -> None:
    signed = _mixed_psbt()
    result = _run_bitcoinjs(signed)
    assert result["valid"] == [True, True]
    ours = extract_transaction(finalize(signed))
    assert result["txid"] == ours.txid_hex
    assert result["hex"] == ours.serialize().hex()
