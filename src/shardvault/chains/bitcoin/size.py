"""The virtual size a transaction will have once signed, read from its PSBT (BIP141).

BIP141 "Transaction size calculations": a transaction's weight is its size without
witness data times three plus its size with it, and its virtual size is the weight
divided by four, rounded up. A fee rate is a fee over that size, so a co-signer that
caps the rate before anything is signed needs the size of the witnesses still to come.
Each input not yet finalized is counted with the smallest witness its spend has in
practice:

* P2WPKH (BIP141): two items, an ECDSA signature of :data:`ECDSA_SIGNATURE_SIZE` bytes
  and the 33-byte compressed key: 107 bytes with the item count and the two lengths. A
  low-s DER signature with 32-byte ``r`` and ``s`` is 70 bytes, plus the sighash byte.
  About half of all signatures need a 33rd byte for ``r`` (its top bit set), so the
  signed transaction is this size or a quarter vbyte per input larger; about one in 128
  has an ``r`` or ``s`` of 31 bytes or fewer and is a quarter vbyte per byte smaller.
* P2TR key path (BIP341): one item, a 64-byte BIP340 signature, or 65 bytes when the
  input names a sighash type other than DEFAULT: 66 or 67 bytes.
* A finalized input: its final scriptSig and witness as they are.
* Anything else: no scriptSig and no witness. That is a lower bound of any spend.

The size is therefore at most the signed transaction's (bar the rare short ECDSA
signature above), and a fee rate computed over it at least the rate the network will
see: a cap on it errs on the strict side.
"""

import dataclasses

from shardvault.chains.bitcoin.psbt import Psbt
from shardvault.chains.bitcoin.script import ScriptType, classify
from shardvault.chains.bitcoin.sighash import SIGHASH_DEFAULT

ECDSA_SIGNATURE_SIZE = 71
"""Bytes of a P2WPKH input's signature as counted: a low-s DER signature with 32-byte
``r`` and ``s`` (70 bytes) and the sighash byte."""

COMPRESSED_KEY_SIZE = 33
"""Bytes of the compressed public key in a P2WPKH witness."""

SCHNORR_SIGNATURE_SIZE = 64
"""Bytes of a BIP340 signature; BIP341 appends the sighash byte unless it is DEFAULT."""


def _unsigned_spend(psbt: Psbt, index: int) -> tuple[bytes, tuple[bytes, ...]]:
    """The scriptSig and witness input ``index`` is counted with (module docstring)."""
    psbt_input = psbt.inputs[index]
    if psbt_input.is_finalized:
        return psbt_input.final_script_sig or b"", psbt_input.final_script_witness or ()
    spent = psbt.spent_output(index)
    kind = None if spent is None else classify(spent.script_pubkey)
    if kind is ScriptType.P2WPKH:
        return b"", (bytes(ECDSA_SIGNATURE_SIZE), bytes(COMPRESSED_KEY_SIZE))
    if kind is ScriptType.P2TR:
        hash_type = psbt_input.sighash_type
        extra = 0 if hash_type is None or hash_type == SIGHASH_DEFAULT else 1
        return b"", (bytes(SCHNORR_SIGNATURE_SIZE + extra),)
    return b"", ()


def signed_vsize(psbt: Psbt) -> int:
    """The virtual size (vbytes) of ``psbt``'s transaction once every input is signed,
    with each unsigned input counted as the module docstring says.

    Raises:
        LocktimeConflictError: a version 2 PSBT whose inputs' locktimes conflict.
    """
    tx = psbt.unsigned_transaction()
    inputs = []
    for index, txin in enumerate(tx.inputs):
        script_sig, witness = _unsigned_spend(psbt, index)
        inputs.append(dataclasses.replace(txin, script_sig=script_sig, witness=witness))
    return dataclasses.replace(tx, inputs=tuple(inputs)).vsize()
