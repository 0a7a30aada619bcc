"""Test-only keys and builders shared by the Bitcoin tests.

Every secret here is a TEST-ONLY key derived from a public label; none holds value.
"""

import dataclasses
import hashlib
from pathlib import Path

from coincurve import PrivateKey, PublicKeyXOnly

from shardvault.chains.amounts import Satoshi
from shardvault.chains.bitcoin import (
    OutPoint,
    Psbt,
    TxOut,
    add_ecdsa_signature,
    add_taproot_key_signature,
    create_psbt,
    input_sighash,
    output_key,
    p2wpkh_script,
    parse_psbt,
    set_tap_internal_key,
    set_witness_utxo,
    taproot_tweak,
)
from shardvault.chains.bitcoin.encoding import hash160
from shardvault.chains.bitcoin.psbt import (
    IN_PARTIAL_SIG,
    IN_REDEEM_SCRIPT,
    PsbtRecord,
)
from shardvault.chains.bitcoin.taproot import SECP256K1_ORDER

REPO_ROOT = Path(__file__).resolve().parents[3]


def make_key(label: str) -> PrivateKey:
    """A TEST-ONLY secp256k1 key: SHA256 of a public label."""
    return PrivateKey(hashlib.sha256(b"shardvault test-only key " + label.encode()).digest())


def taproot_signing_key(key: PrivateKey, merkle_root: bytes | None = None) -> PrivateKey:
    """BIP341 ``taproot_tweak_seckey``: negate for odd y, then add the tweak (test side)."""
    xonly = PublicKeyXOnly.from_secret(key.secret)
    d = key.to_int()
    if xonly.parity:
        d = SECP256K1_ORDER - d
    t = int.from_bytes(taproot_tweak(xonly.format(), merkle_root), "big")
    return PrivateKey.from_int((d + t) % SECP256K1_ORDER)


def funding_outpoint(label: str) -> OutPoint:
    """A made-up previous output to spend (script checks do not look it up)."""
    return OutPoint(hashlib.sha256(label.encode()).digest(), 1)


def p2wpkh_spend(amount: int = 100_000, send: int = 90_000) -> tuple[Psbt, PrivateKey]:
    """A one-input P2WPKH PSBT paying ``send`` back to a P2WPKH output, unsigned."""
    key = make_key("p2wpkh")
    spk = p2wpkh_script(key.public_key.format())
    psbt = create_psbt(
        [funding_outpoint("p2wpkh funding")],
        [TxOut(Satoshi(send), p2wpkh_script(make_key("payee").public_key.format()))],
    )
    psbt = set_witness_utxo(psbt, 0, TxOut(Satoshi(amount), spk))
    return psbt, key


def p2tr_spend(amount: int = 200_000, send: int = 150_000) -> tuple[Psbt, PrivateKey]:
    """A one-input P2TR key-path PSBT paying ``send`` to a P2TR output, unsigned."""
    key = make_key("p2tr")
    internal = PublicKeyXOnly.from_secret(key.secret).format()
    spk = output_key(internal).script_pubkey
    payee = PublicKeyXOnly.from_secret(make_key("payee").secret).format()
    psbt = create_psbt(
        [funding_outpoint("p2tr funding")],
        [TxOut(Satoshi(send), output_key(payee).script_pubkey)],
    )
    psbt = set_witness_utxo(psbt, 0, TxOut(Satoshi(amount), spk))
    psbt = set_tap_internal_key(psbt, 0, internal)
    return psbt, key


def with_input_records(psbt: Psbt, index: int, *records: PsbtRecord) -> Psbt:
    """Append raw records to input ``index`` and re-parse, for fields shardvault has no
    Updater or Signer function for (a redeemScript, a signature made by another wallet)."""
    maps = list(psbt.input_maps)
    maps[index] = (*maps[index], *records)
    return parse_psbt(dataclasses.replace(psbt, input_maps=tuple(maps)).serialize())


def p2sh_script(redeem_script: bytes) -> bytes:
    """``OP_HASH160 <HASH160(redeem_script)> OP_EQUAL`` (BIP16), built test-side."""
    return b"\xa9\x14" + hash160(redeem_script) + b"\x87"


def p2sh_p2wpkh_spend(amount: int = 100_000, send: int = 90_000) -> tuple[Psbt, PrivateKey]:
    """A one-input P2SH-P2WPKH ("nested segwit") PSBT with its redeemScript, unsigned."""
    key = make_key("p2sh-p2wpkh")
    redeem_script = p2wpkh_script(key.public_key.format())
    psbt = create_psbt(
        [funding_outpoint("p2sh-p2wpkh funding")],
        [TxOut(Satoshi(send), p2wpkh_script(make_key("payee").public_key.format()))],
    )
    psbt = set_witness_utxo(psbt, 0, TxOut(Satoshi(amount), p2sh_script(redeem_script)))
    return with_input_records(psbt, 0, PsbtRecord(IN_REDEEM_SCRIPT, b"", redeem_script)), key


def sign_p2sh_p2wpkh(psbt: Psbt, index: int, key: PrivateKey) -> Psbt:
    """Sign over OUR BIP143 sighash and attach the partial signature as a raw record, the
    way a PSBT signed by another wallet arrives (shardvault's Signer takes only P2WPKH)."""
    digest = input_sighash(psbt, index)
    signature = key.sign(digest, hasher=None) + b"\x01"
    record = PsbtRecord(IN_PARTIAL_SIG, key.public_key.format(), signature)
    return with_input_records(psbt, index, record)


def sign_p2wpkh(psbt: Psbt, index: int, key: PrivateKey) -> Psbt:
    """Sign over OUR sighash with coincurve and attach the DER signature + SIGHASH_ALL."""
    digest = input_sighash(psbt, index)
    signature = key.sign(digest, hasher=None) + b"\x01"
    return add_ecdsa_signature(psbt, index, key.public_key.format(), signature)


def sign_p2tr(psbt: Psbt, index: int, key: PrivateKey) -> Psbt:
    """Sign over OUR BIP341 sighash with coincurve's BIP340 signer and attach it."""
    digest = input_sighash(psbt, index)
    signature = taproot_signing_key(key).sign_schnorr(digest, bytes(32))
    hash_type = psbt.inputs[index].sighash_type or 0
    if hash_type:
        # BIP341: any hash type but DEFAULT is appended to the 64-byte signature.
        signature += bytes([hash_type])
    return add_taproot_key_signature(psbt, index, signature)
