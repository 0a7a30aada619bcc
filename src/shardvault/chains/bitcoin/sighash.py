"""Signature hashes for segwit v0 (BIP143) and taproot key-path spends (BIP341).

BIP143 "Specification" defines the double-SHA256 preimage of a version 0 witness input:
version, hashPrevouts, hashSequence, outpoint, scriptCode, amount, nSequence, hashOutputs,
locktime and the sighash type, with the ANYONECANPAY, SINGLE and NONE special cases.

BIP341 "Common signature message" defines ``SigMsg(hash_type, ext_flag)`` hashed as
``hash_TapSighash(0x00 || SigMsg)``; this module implements the key path (``ext_flag`` 0)
without an annex, for every valid hash type (0x00 DEFAULT, 0x01-0x03, 0x81-0x83).
"""

from collections.abc import Sequence

from shardvault.chains.bitcoin.encoding import hash256, sha256, tagged_hash, u32, u64, var_bytes
from shardvault.chains.bitcoin.models import Transaction, TxOut
from shardvault.chains.errors import ChainError, UnsupportedError

SIGHASH_DEFAULT = 0x00
"""BIP341: signs everything, like ALL, and leaves the hash type byte off the signature."""

SIGHASH_ALL = 0x01
"""Sign all inputs and all outputs."""

SIGHASH_NONE = 0x02
"""Sign all inputs and no outputs."""

SIGHASH_SINGLE = 0x03
"""Sign all inputs and the output at this input's index."""

SIGHASH_ANYONECANPAY = 0x80
"""Modifier: sign only this input."""

_TAPROOT_HASH_TYPES = frozenset({0x00, 0x01, 0x02, 0x03, 0x81, 0x82, 0x83})


class SighashError(ChainError):
    """The sighash cannot be computed: bad index, missing amounts, SINGLE without output."""


def _check_index(tx: Transaction, index: int) -> None:
    if not 0 <= index < len(tx.inputs):
        raise SighashError(
            f"input {index} does not exist ({len(tx.inputs)} inputs)", field="input_index"
        )


def segwit_v0_sighash(
    tx: Transaction, index: int, script_code: bytes, amount: int, hash_type: int = SIGHASH_ALL
) -> bytes:
    """BIP143 signature hash of input ``index``.

    ``script_code`` is serialized with its length prefix, as BIP143 item 5 says (for
    P2WPKH, :func:`shardvault.chains.bitcoin.script.p2wpkh_script_code`).

    Raises:
        SighashError: ``index`` out of range.
        UnsupportedError: ``hash_type`` does not fit in 32 bits.
    """
    _check_index(tx, index)
    if not 0 <= hash_type <= 0xFFFF_FFFF:
        raise UnsupportedError("must fit in 32 bits", field="sighash_type")
    base = hash_type & 0x1F
    anyone_can_pay = bool(hash_type & SIGHASH_ANYONECANPAY)
    zero = bytes(32)
    hash_prevouts = zero
    hash_sequence = zero
    hash_outputs = zero
    if not anyone_can_pay:
        hash_prevouts = hash256(b"".join(txin.prevout.serialize() for txin in tx.inputs))
    if not anyone_can_pay and base not in (SIGHASH_SINGLE, SIGHASH_NONE):
        hash_sequence = hash256(b"".join(u32(txin.sequence) for txin in tx.inputs))
    if base not in (SIGHASH_SINGLE, SIGHASH_NONE):
        hash_outputs = hash256(b"".join(txout.serialize() for txout in tx.outputs))
    elif base == SIGHASH_SINGLE and index < len(tx.outputs):
        hash_outputs = hash256(tx.outputs[index].serialize())
    txin = tx.inputs[index]
    preimage = b"".join(
        (
            tx.version.to_bytes(4, "little", signed=True),
            hash_prevouts,
            hash_sequence,
            txin.prevout.serialize(),
            script_code,
            u64(amount),
            u32(txin.sequence),
            hash_outputs,
            u32(tx.locktime),
            u32(hash_type),
        )
    )
    return hash256(preimage)


def taproot_key_path_sighash(
    tx: Transaction,
    index: int,
    spent_outputs: Sequence[TxOut],
    hash_type: int = SIGHASH_DEFAULT,
) -> bytes:
    """BIP341 signature hash for a key-path spend of input ``index`` (no annex).

    ``spent_outputs`` are the outputs every input spends, in input order: BIP341 commits
    to all their amounts and scripts.

    Raises:
        SighashError: index out of range, ``spent_outputs`` not one per input, or SINGLE
            with no output at this index.
        UnsupportedError: a hash type BIP341 does not define.
    """
    _check_index(tx, index)
    if hash_type not in _TAPROOT_HASH_TYPES:
        raise UnsupportedError(f"{hash_type:#x} is not a taproot hash type", field="sighash_type")
    if len(spent_outputs) != len(tx.inputs):
        raise SighashError(
            f"{len(spent_outputs)} spent outputs for {len(tx.inputs)} inputs",
            field="spent_outputs",
        )
    output_type = SIGHASH_ALL if hash_type == SIGHASH_DEFAULT else hash_type & 0x03
    anyone_can_pay = bool(hash_type & SIGHASH_ANYONECANPAY)
    # BIP341 "Common signature message", field by field.
    parts = [bytes([hash_type]), tx.version.to_bytes(4, "little", signed=True), u32(tx.locktime)]
    if not anyone_can_pay:
        parts.append(sha256(b"".join(txin.prevout.serialize() for txin in tx.inputs)))
        parts.append(sha256(b"".join(u64(out.value) for out in spent_outputs)))
        parts.append(sha256(b"".join(var_bytes(out.script_pubkey) for out in spent_outputs)))
        parts.append(sha256(b"".join(u32(txin.sequence) for txin in tx.inputs)))
    if output_type not in (SIGHASH_NONE, SIGHASH_SINGLE):
        parts.append(sha256(b"".join(out.serialize() for out in tx.outputs)))
    # spend_type = ext_flag * 2 + annex_present; key path without annex is 0.
    parts.append(b"\x00")
    txin = tx.inputs[index]
    if anyone_can_pay:
        spent = spent_outputs[index]
        parts.append(txin.prevout.serialize())
        parts.append(u64(spent.value))
        parts.append(var_bytes(spent.script_pubkey))
        parts.append(u32(txin.sequence))
    else:
        parts.append(u32(index))
    if output_type == SIGHASH_SINGLE:
        if index >= len(tx.outputs):
            raise SighashError("SIGHASH_SINGLE needs an output at this index", field="input_index")
        parts.append(sha256(tx.outputs[index].serialize()))
    return tagged_hash("TapSighash", b"\x00" + b"".join(parts))
