"""The signed virtual size of a PSBT (BIP141 weight), before and after signing.

The estimate counts each unsigned input with the witness its spend will have
(:mod:`shardvault.chains.bitcoin.size`); signed with TEST-ONLY keys, finalized and
measured by python-bitcointx, the transaction is that size or, for P2WPKH, a vbyte more
when the DER signature is 72 bytes.
"""

from bitcointx.core import CTransaction

from shardvault.chains.amounts import Satoshi
from shardvault.chains.bitcoin import (
    TxOut,
    create_psbt,
    extract_transaction,
    finalize,
    set_sighash_type,
    set_witness_utxo,
    signed_vsize,
)
from shardvault.chains.bitcoin.size import ECDSA_SIGNATURE_SIZE

from .helpers import funding_outpoint, p2tr_spend, p2wpkh_spend, sign_p2tr, sign_p2wpkh


def _bitcointx_vsize(raw: bytes) -> int:
    return int(CTransaction.deserialize(raw).get_virtual_size())


def test_p2wpkh_estimate_is_the_signed_size_or_a_vbyte_less() -> None:
    psbt, key = p2wpkh_spend()
    estimate = signed_vsize(psbt)
    # 10 bytes of version, counts and locktime, a 41-byte input, a 31-byte output; the
    # marker and a 107-byte witness weigh one unit per byte: ceil((82 * 4 + 109) / 4).
    assert estimate == 110
    signed = finalize(sign_p2wpkh(psbt, 0, key))
    raw = extract_transaction(signed).serialize()
    witness = signed.inputs[0].final_script_witness
    assert witness is not None
    assert len(witness[0]) in (ECDSA_SIGNATURE_SIZE, ECDSA_SIGNATURE_SIZE + 1)
    assert estimate <= _bitcointx_vsize(raw) <= estimate + 1
    # A finalized input is counted as it is.
    assert signed_vsize(signed) == _bitcointx_vsize(raw)


def test_taproot_estimate_is_exact_with_or_without_a_sighash_byte() -> None:
    psbt, key = p2tr_spend()
    for hash_type in (None, 0x01):
        unsigned = psbt if hash_type is None else set_sighash_type(psbt, 0, hash_type)
        raw = extract_transaction(finalize(sign_p2tr(unsigned, 0, key))).serialize()
        assert signed_vsize(unsigned) == _bitcointx_vsize(raw), hash_type


def test_an_input_of_another_kind_counts_nothing_a_lower_bound() -> None:
    """A P2PKH input's scriptSig is not known before it is signed; counting none gives
    a size no larger than the signed one, and a fee rate no smaller."""
    p2pkh = bytes.fromhex("76a914" + "11" * 20 + "88ac")
    psbt = create_psbt([funding_outpoint("p2pkh")], [TxOut(Satoshi(1_000), p2pkh)])
    psbt = set_witness_utxo(psbt, 0, TxOut(Satoshi(2_000), p2pkh))
    assert signed_vsize(psbt) == len(psbt.unsigned_transaction().serialize())
