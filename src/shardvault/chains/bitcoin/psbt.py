"""Partially Signed Bitcoin Transactions: BIP174 (version 0) and BIP370 (version 2).

A PSBT is the magic ``psbt\\xff`` followed by a global map, one map per input and one per
output; each map is a list of ``<key> <value>`` pairs ended by a zero byte, every key and
value being CompactSize length-prefixed and every key starting with a CompactSize type
(BIP174 "Specification"). This module keeps each map's records in the order they came, so
that any valid PSBT re-serializes byte for byte, and validates every record of every type
BIP174, BIP371 (taproot fields) and BIP370 define, with the rules of BIP174 "Encoding"
and the per-type key and value formats. Unknown types are kept and passed through.

The roles that make and change a PSBT (BIP174 "Roles": Creator, Updater, Signer, Input
Finalizer, Transaction Extractor) are in :mod:`.psbt_roles`.

Version 2 PSBTs are parsed and validated (BIP370 "Specification": required and excluded
fields, locktime ranges) and their transaction is assembled with BIP370's "Determining
Lock Time" rule.
"""

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from shardvault.chains.amounts import MAX_SATOSHI, Satoshi
from shardvault.chains.bitcoin.encoding import (
    ByteReader,
    check_size,
    hash160,
    hash256,
    ripemd160,
    sha256,
)
from shardvault.chains.bitcoin.models import (
    SEQUENCE_FINAL,
    OutPoint,
    Transaction,
    TxIn,
    TxOut,
    read_transaction,
)
from shardvault.chains.bitcoin.psbt_fields import (
    KeyOrigin as KeyOrigin,
)
from shardvault.chains.bitcoin.psbt_fields import (
    PsbtMap as PsbtMap,
)
from shardvault.chains.bitcoin.psbt_fields import (
    PsbtRecord as PsbtRecord,
)
from shardvault.chains.bitcoin.psbt_fields import (
    _check_proprietary,
    _ecdsa_sig,
    _empty_key,
    _fixed,
    _key_origin,
    _pubkey_key,
    _read_map,
    _schnorr_sig,
    _tap_bip32,
    _txout,
    _u32_value,
    _witness_stack,
    _xonly_key,
)
from shardvault.chains.errors import (
    ChainError,
    DecodeError,
    InvalidAmountError,
    UnsupportedError,
)

MAGIC = b"psbt\xff"
"""BIP174: every PSBT starts with these five bytes."""

# Global types (BIP174, BIP370).
GLOBAL_UNSIGNED_TX = 0x00
GLOBAL_XPUB = 0x01
GLOBAL_TX_VERSION = 0x02
GLOBAL_FALLBACK_LOCKTIME = 0x03
GLOBAL_INPUT_COUNT = 0x04
GLOBAL_OUTPUT_COUNT = 0x05
GLOBAL_TX_MODIFIABLE = 0x06
GLOBAL_VERSION = 0xFB
PROPRIETARY = 0xFC

# Input types (BIP174, BIP371, BIP370).
IN_NON_WITNESS_UTXO = 0x00
IN_WITNESS_UTXO = 0x01
IN_PARTIAL_SIG = 0x02
IN_SIGHASH_TYPE = 0x03
IN_REDEEM_SCRIPT = 0x04
IN_WITNESS_SCRIPT = 0x05
IN_BIP32_DERIVATION = 0x06
IN_FINAL_SCRIPTSIG = 0x07
IN_FINAL_SCRIPTWITNESS = 0x08
IN_POR_COMMITMENT = 0x09
IN_RIPEMD160 = 0x0A
IN_SHA256 = 0x0B
IN_HASH160 = 0x0C
IN_HASH256 = 0x0D
IN_PREVIOUS_TXID = 0x0E
IN_OUTPUT_INDEX = 0x0F
IN_SEQUENCE = 0x10
IN_REQUIRED_TIME_LOCKTIME = 0x11
IN_REQUIRED_HEIGHT_LOCKTIME = 0x12
IN_TAP_KEY_SIG = 0x13
IN_TAP_SCRIPT_SIG = 0x14
IN_TAP_LEAF_SCRIPT = 0x15
IN_TAP_BIP32_DERIVATION = 0x16
IN_TAP_INTERNAL_KEY = 0x17
IN_TAP_MERKLE_ROOT = 0x18

# Output types (BIP174, BIP371, BIP370).
OUT_REDEEM_SCRIPT = 0x00
OUT_WITNESS_SCRIPT = 0x01
OUT_BIP32_DERIVATION = 0x02
OUT_AMOUNT = 0x03
OUT_SCRIPT = 0x04
OUT_TAP_INTERNAL_KEY = 0x05
OUT_TAP_TREE = 0x06
OUT_TAP_BIP32_DERIVATION = 0x07

LOCKTIME_THRESHOLD = 500_000_000
"""Locktimes below this are block heights, at or above it Unix times (BIP65)."""

_GLOBAL_V2_ONLY = frozenset(
    {
        GLOBAL_TX_VERSION,
        GLOBAL_FALLBACK_LOCKTIME,
        GLOBAL_INPUT_COUNT,
        GLOBAL_OUTPUT_COUNT,
        GLOBAL_TX_MODIFIABLE,
    }
)
_INPUT_V2_ONLY = frozenset(
    {
        IN_PREVIOUS_TXID,
        IN_OUTPUT_INDEX,
        IN_SEQUENCE,
        IN_REQUIRED_TIME_LOCKTIME,
        IN_REQUIRED_HEIGHT_LOCKTIME,
    }
)
_OUTPUT_V2_ONLY = frozenset({OUT_AMOUNT, OUT_SCRIPT})

# BIP174 "Input Finalizer": after finalizing, only these input types survive (with the
# final fields and any type this module does not know).
_KNOWN_INPUT_TYPES = frozenset(range(0x00, 0x19))
_KEPT_AFTER_FINALIZE = frozenset(
    {IN_NON_WITNESS_UTXO, IN_WITNESS_UTXO, IN_FINAL_SCRIPTSIG, IN_FINAL_SCRIPTWITNESS}
    | _INPUT_V2_ONLY
)


class PsbtSignerRefusal(ChainError):
    """A PSBT that parses but that BIP174 says a signer must refuse to sign."""


class LocktimeConflictError(ChainError):
    """BIP370: inputs require a height locktime and a time locktime that cannot coexist."""


@dataclass(frozen=True, slots=True)
class PsbtInput:
    """The typed fields of one input map (unset fields are ``None`` or empty)."""

    non_witness_utxo: Transaction | None = None
    witness_utxo: TxOut | None = None
    partial_sigs: tuple[tuple[bytes, bytes], ...] = ()
    sighash_type: int | None = None
    redeem_script: bytes | None = None
    witness_script: bytes | None = None
    bip32_derivations: tuple[tuple[bytes, KeyOrigin], ...] = ()
    final_script_sig: bytes | None = None
    final_script_witness: tuple[bytes, ...] | None = None
    tap_key_sig: bytes | None = None
    tap_internal_key: bytes | None = None
    tap_merkle_root: bytes | None = None
    tap_bip32_derivations: tuple[tuple[bytes, KeyOrigin], ...] = ()
    previous_txid: bytes | None = None
    output_index: int | None = None
    sequence: int | None = None
    required_time_locktime: int | None = None
    required_height_locktime: int | None = None

    @property
    def is_finalized(self) -> bool:
        """Whether the Input Finalizer has run (a final scriptSig or witness is present)."""
        return self.final_script_sig is not None or self.final_script_witness is not None


@dataclass(frozen=True, slots=True)
class PsbtOutput:
    """The typed fields of one output map."""

    redeem_script: bytes | None = None
    witness_script: bytes | None = None
    bip32_derivations: tuple[tuple[bytes, KeyOrigin], ...] = ()
    amount: int | None = None
    script: bytes | None = None
    tap_internal_key: bytes | None = None
    tap_bip32_derivations: tuple[tuple[bytes, KeyOrigin], ...] = ()


@dataclass(frozen=True, slots=True)
class PsbtGlobal:
    """The typed fields of the global map."""

    version: int
    unsigned_tx: Transaction | None = None
    xpubs: tuple[tuple[bytes, KeyOrigin], ...] = ()
    tx_version: int | None = None
    fallback_locktime: int | None = None
    input_count: int | None = None
    output_count: int | None = None
    tx_modifiable: int | None = None


@dataclass(frozen=True, slots=True)
class Psbt:
    """A parsed, validated PSBT: raw records for byte-exact output plus typed views.

    Build one with :func:`parse_psbt`, :func:`create_psbt` or an Updater/Signer function;
    they keep the records and views consistent.
    """

    global_map: PsbtMap
    input_maps: tuple[PsbtMap, ...]
    output_maps: tuple[PsbtMap, ...]
    globals: PsbtGlobal
    inputs: tuple[PsbtInput, ...]
    outputs: tuple[PsbtOutput, ...]

    @property
    def version(self) -> int:
        """0 (BIP174) or 2 (BIP370)."""
        return self.globals.version

    def serialize(self) -> bytes:
        """The binary PSBT."""
        parts = [MAGIC]
        for psbt_map in (self.global_map, *self.input_maps, *self.output_maps):
            parts.extend(record.serialize() for record in psbt_map)
            parts.append(b"\x00")
        return b"".join(parts)

    def to_base64(self) -> str:
        """The PSBT in base64, as Bitcoin Core's RPCs exchange it."""
        return base64.b64encode(self.serialize()).decode()

    def unsigned_transaction(self) -> Transaction:
        """The transaction being signed, without scriptSigs or witnesses.

        Raises:
            LocktimeConflictError: version 2 inputs whose locktime needs cannot be met.
        """
        if self.globals.unsigned_tx is not None:
            return self.globals.unsigned_tx
        return _assemble_v2_transaction(self)

    def computed_locktime(self) -> int:
        """The locktime of the transaction: v0 from the unsigned tx, v2 per BIP370.

        Raises:
            LocktimeConflictError: version 2 inputs need both a height and a time lock.
        """
        if self.globals.unsigned_tx is not None:
            return self.globals.unsigned_tx.locktime
        return _v2_locktime(self)

    def prevout(self, index: int) -> OutPoint:
        """The outpoint input ``index`` spends (v0: the unsigned tx; v2: its own fields)."""
        if self.globals.unsigned_tx is not None:
            return self.globals.unsigned_tx.inputs[index].prevout
        psbt_input = self.inputs[index]
        assert psbt_input.previous_txid is not None
        assert psbt_input.output_index is not None
        return OutPoint(psbt_input.previous_txid, psbt_input.output_index)

    def transaction_outputs(self) -> tuple[TxOut, ...]:
        """The outputs being created, without assembling the whole transaction."""
        if self.globals.unsigned_tx is not None:
            return self.globals.unsigned_tx.outputs
        return tuple(_v2_output(o) for o in self.outputs)

    def spent_output(self, index: int) -> TxOut | None:
        """The output input ``index`` spends, from its witness or non-witness UTXO."""
        psbt_input = self.inputs[index]
        if psbt_input.witness_utxo is not None:
            return psbt_input.witness_utxo
        if psbt_input.non_witness_utxo is not None:
            return psbt_input.non_witness_utxo.outputs[self.prevout(index).index]
        return None

    def fee(self) -> Satoshi | None:
        """Inputs minus outputs, or ``None`` when an input's amount is unknown.

        Raises:
            InvalidAmountError: the outputs exceed the inputs.
        """
        spent = [self.spent_output(i) for i in range(len(self.inputs))]
        if any(out is None for out in spent):
            return None
        total_in = sum(out.value for out in spent if out is not None)
        total_out = sum(out.value for out in self.transaction_outputs())
        if total_out > total_in:
            raise InvalidAmountError(
                f"outputs ({total_out}) exceed inputs ({total_in})", field="fee"
            )
        return Satoshi(total_in - total_out)


# --- Validation of each map -------------------------------------------------------------


def _decode_global(records: PsbtMap) -> PsbtGlobal:
    version = 0
    for record in records:
        if record.key_type == GLOBAL_VERSION:
            _empty_key(record, "global.version")
            version = _u32_value(record.value, "global.version")
    if version not in (0, 2):
        raise UnsupportedError(f"PSBT version {version} is not 0 or 2", field="global.version")
    unsigned_tx: Transaction | None = None
    xpubs: list[tuple[bytes, KeyOrigin]] = []
    fields: dict[int, int] = {}
    for record in records:
        kind = record.key_type
        field = f"global[{kind:#04x}]"
        if kind in _GLOBAL_V2_ONLY and version != 2:
            raise DecodeError("is a version 2 field in a version 0 PSBT", field=field)
        if kind == GLOBAL_UNSIGNED_TX:
            _empty_key(record, "global.unsigned_tx")
            if version == 2:
                raise DecodeError(
                    "a version 2 PSBT must not carry an unsigned tx", field="global.unsigned_tx"
                )
            unsigned_tx = _decode_unsigned_tx(record.value)
        elif kind == GLOBAL_XPUB:
            if len(record.key_data) != 78:
                raise DecodeError("extended public key must be 78 bytes", field="global.xpub")
            _pubkey_key(record.key_data[45:], "global.xpub")
            xpubs.append((record.key_data, _key_origin(record.value, "global.xpub")))
        elif kind in (GLOBAL_TX_VERSION, GLOBAL_FALLBACK_LOCKTIME):
            _empty_key(record, field)
            fields[kind] = _u32_value(record.value, field)
        elif kind in (GLOBAL_INPUT_COUNT, GLOBAL_OUTPUT_COUNT):
            _empty_key(record, field)
            value_reader = ByteReader(record.value)
            fields[kind] = value_reader.compact_size(field)
            value_reader.expect_end(field)
        elif kind == GLOBAL_TX_MODIFIABLE:
            _empty_key(record, field)
            fields[kind] = _fixed(record.value, 1, field)[0]
        elif kind == PROPRIETARY:
            _check_proprietary(record, field)
    if version == 0 and unsigned_tx is None:
        raise DecodeError("a version 0 PSBT needs the unsigned tx", field="global.unsigned_tx")
    if version == 2:
        for kind, name in (
            (GLOBAL_TX_VERSION, "tx_version"),
            (GLOBAL_INPUT_COUNT, "input_count"),
            (GLOBAL_OUTPUT_COUNT, "output_count"),
        ):
            if kind not in fields:
                raise DecodeError("is required in a version 2 PSBT", field=f"global.{name}")
        if fields[GLOBAL_TX_VERSION] < 2:
            raise DecodeError("must be at least 2 in a version 2 PSBT", field="global.tx_version")
    return PsbtGlobal(
        version=version,
        unsigned_tx=unsigned_tx,
        xpubs=tuple(xpubs),
        tx_version=fields.get(GLOBAL_TX_VERSION),
        fallback_locktime=fields.get(GLOBAL_FALLBACK_LOCKTIME),
        input_count=fields.get(GLOBAL_INPUT_COUNT),
        output_count=fields.get(GLOBAL_OUTPUT_COUNT),
        tx_modifiable=fields.get(GLOBAL_TX_MODIFIABLE),
    )


def _decode_unsigned_tx(value: bytes) -> Transaction:
    # BIP174: serialized without witness, every scriptSig and witness empty.
    reader = ByteReader(value)
    try:
        tx = read_transaction(reader, allow_witness=False)
        reader.expect_end("global.unsigned_tx")
    except ChainError:
        # Name the usual cause: the extended (segwit) serialization, which BIP174 forbids.
        if value[4:6] == b"\x00\x01":
            raise DecodeError(
                "unsigned tx does not parse; it looks like the witness serialization",
                field="global.unsigned_tx",
            ) from None
        raise
    for i, txin in enumerate(tx.inputs):
        if txin.script_sig:
            raise DecodeError(
                "unsigned tx input has a scriptSig", field=f"global.unsigned_tx.inputs[{i}]"
            )
    return tx


def _decode_input(records: PsbtMap, index: int, version: int) -> PsbtInput:
    values: dict[str, object] = {}
    partial_sigs: list[tuple[bytes, bytes]] = []
    derivations: list[tuple[bytes, KeyOrigin]] = []
    tap_derivations: list[tuple[bytes, KeyOrigin]] = []
    base = f"inputs[{index}]"
    for record in records:
        kind, value = record.key_type, record.value
        field = f"{base}[{kind:#04x}]"
        if kind in _INPUT_V2_ONLY and version != 2:
            raise DecodeError("is a version 2 field in a version 0 PSBT", field=field)
        if kind == IN_NON_WITNESS_UTXO:
            _empty_key(record, f"{base}.non_witness_utxo")
            reader = ByteReader(value)
            values["non_witness_utxo"] = read_transaction(reader)
            reader.expect_end(f"{base}.non_witness_utxo")
        elif kind == IN_WITNESS_UTXO:
            _empty_key(record, f"{base}.witness_utxo")
            values["witness_utxo"] = _txout(value, f"{base}.witness_utxo")
        elif kind == IN_PARTIAL_SIG:
            key = _pubkey_key(record.key_data, f"{base}.partial_sig")
            partial_sigs.append((key, _ecdsa_sig(value, f"{base}.partial_sig")))
        elif kind == IN_SIGHASH_TYPE:
            _empty_key(record, f"{base}.sighash_type")
            values["sighash_type"] = _u32_value(value, f"{base}.sighash_type")
        elif kind in (IN_REDEEM_SCRIPT, IN_WITNESS_SCRIPT, IN_FINAL_SCRIPTSIG, IN_POR_COMMITMENT):
            name = {
                IN_REDEEM_SCRIPT: "redeem_script",
                IN_WITNESS_SCRIPT: "witness_script",
                IN_FINAL_SCRIPTSIG: "final_script_sig",
                IN_POR_COMMITMENT: "por_commitment",
            }[kind]
            _empty_key(record, f"{base}.{name}")
            values[name] = value
        elif kind == IN_BIP32_DERIVATION:
            key = _pubkey_key(record.key_data, f"{base}.bip32_derivation")
            derivations.append((key, _key_origin(value, f"{base}.bip32_derivation")))
        elif kind == IN_FINAL_SCRIPTWITNESS:
            _empty_key(record, f"{base}.final_script_witness")
            values["final_script_witness"] = _witness_stack(value, f"{base}.final_script_witness")
        elif kind in (IN_RIPEMD160, IN_SHA256, IN_HASH160, IN_HASH256):
            _check_preimage(record, base)
        elif kind == IN_PREVIOUS_TXID:
            _empty_key(record, f"{base}.previous_txid")
            values["previous_txid"] = _fixed(value, 32, f"{base}.previous_txid")
        elif kind in (IN_OUTPUT_INDEX, IN_SEQUENCE):
            name = "output_index" if kind == IN_OUTPUT_INDEX else "sequence"
            _empty_key(record, f"{base}.{name}")
            values[name] = _u32_value(value, f"{base}.{name}")
        elif kind == IN_REQUIRED_TIME_LOCKTIME:
            _empty_key(record, f"{base}.required_time_locktime")
            locktime = _u32_value(value, f"{base}.required_time_locktime")
            if locktime < LOCKTIME_THRESHOLD:
                raise DecodeError(
                    "must be at least 500000000", field=f"{base}.required_time_locktime"
                )
            values["required_time_locktime"] = locktime
        elif kind == IN_REQUIRED_HEIGHT_LOCKTIME:
            _empty_key(record, f"{base}.required_height_locktime")
            locktime = _u32_value(value, f"{base}.required_height_locktime")
            if not 0 < locktime < LOCKTIME_THRESHOLD:
                raise DecodeError(
                    "must be between 1 and 499999999", field=f"{base}.required_height_locktime"
                )
            values["required_height_locktime"] = locktime
        elif kind == IN_TAP_KEY_SIG:
            _empty_key(record, f"{base}.tap_key_sig")
            values["tap_key_sig"] = _schnorr_sig(value, f"{base}.tap_key_sig")
        elif kind == IN_TAP_SCRIPT_SIG:
            if len(record.key_data) != 64:
                raise DecodeError("key must be an x-only key and a leaf hash", field=field)
            _xonly_key(record.key_data[:32], f"{base}.tap_script_sig")
            _schnorr_sig(value, f"{base}.tap_script_sig")
        elif kind == IN_TAP_LEAF_SCRIPT:
            size = len(record.key_data)
            if size < 33 or (size - 33) % 32 or size > 33 + 32 * 128:
                raise DecodeError("control block has an invalid length", field=field)
            if not value:
                raise DecodeError("leaf script needs its leaf version byte", field=field)
        elif kind == IN_TAP_BIP32_DERIVATION:
            tap_derivations.append(_tap_bip32(record, f"{base}.tap_bip32_derivation"))
        elif kind == IN_TAP_INTERNAL_KEY:
            _empty_key(record, f"{base}.tap_internal_key")
            values["tap_internal_key"] = _xonly_key(value, f"{base}.tap_internal_key")
        elif kind == IN_TAP_MERKLE_ROOT:
            _empty_key(record, f"{base}.tap_merkle_root")
            values["tap_merkle_root"] = _fixed(value, 32, f"{base}.tap_merkle_root")
        elif kind == PROPRIETARY:
            _check_proprietary(record, field)
    if version == 2:
        for name in ("previous_txid", "output_index"):
            if name not in values:
                raise DecodeError("is required in a version 2 PSBT", field=f"{base}.{name}")
    values.pop("por_commitment", None)
    return PsbtInput(
        partial_sigs=tuple(partial_sigs),
        bip32_derivations=tuple(derivations),
        tap_bip32_derivations=tuple(tap_derivations),
        **values,  # type: ignore[arg-type]
    )


def _check_preimage(record: PsbtRecord, base: str) -> None:
    # BIP174: the key holds a hash, the value its preimage; they must agree.
    hashers = {
        IN_RIPEMD160: ("ripemd160_preimage", 20, ripemd160),
        IN_SHA256: ("sha256_preimage", 32, sha256),
        IN_HASH160: ("hash160_preimage", 20, hash160),
        IN_HASH256: ("hash256_preimage", 32, hash256),
    }
    name, size, hasher = hashers[record.key_type]
    if len(record.key_data) != size:
        raise DecodeError(f"hash in the key must be {size} bytes", field=f"{base}.{name}")
    if hasher(record.value) != record.key_data:
        raise DecodeError("preimage does not hash to the key", field=f"{base}.{name}")


def _decode_output(records: PsbtMap, index: int, version: int) -> PsbtOutput:
    values: dict[str, object] = {}
    derivations: list[tuple[bytes, KeyOrigin]] = []
    tap_derivations: list[tuple[bytes, KeyOrigin]] = []
    base = f"outputs[{index}]"
    for record in records:
        kind, value = record.key_type, record.value
        field = f"{base}[{kind:#04x}]"
        if kind in _OUTPUT_V2_ONLY and version != 2:
            raise DecodeError("is a version 2 field in a version 0 PSBT", field=field)
        if kind in (OUT_REDEEM_SCRIPT, OUT_WITNESS_SCRIPT, OUT_SCRIPT):
            name = {
                OUT_REDEEM_SCRIPT: "redeem_script",
                OUT_WITNESS_SCRIPT: "witness_script",
                OUT_SCRIPT: "script",
            }[kind]
            _empty_key(record, f"{base}.{name}")
            values[name] = value
        elif kind == OUT_BIP32_DERIVATION:
            key = _pubkey_key(record.key_data, f"{base}.bip32_derivation")
            derivations.append((key, _key_origin(value, f"{base}.bip32_derivation")))
        elif kind == OUT_AMOUNT:
            _empty_key(record, f"{base}.amount")
            amount = int.from_bytes(_fixed(value, 8, f"{base}.amount"), "little", signed=True)
            if not 0 <= amount <= MAX_SATOSHI:
                raise InvalidAmountError("must be between 0 and 21e14", field=f"{base}.amount")
            values["amount"] = amount
        elif kind == OUT_TAP_INTERNAL_KEY:
            _empty_key(record, f"{base}.tap_internal_key")
            values["tap_internal_key"] = _xonly_key(value, f"{base}.tap_internal_key")
        elif kind == OUT_TAP_TREE:
            _empty_key(record, f"{base}.tap_tree")
            _check_tap_tree(value, f"{base}.tap_tree")
        elif kind == OUT_TAP_BIP32_DERIVATION:
            tap_derivations.append(_tap_bip32(record, f"{base}.tap_bip32_derivation"))
        elif kind == PROPRIETARY:
            _check_proprietary(record, field)
    if version == 2:
        for name in ("amount", "script"):
            if name not in values:
                raise DecodeError("is required in a version 2 PSBT", field=f"{base}.{name}")
    return PsbtOutput(
        bip32_derivations=tuple(derivations),
        tap_bip32_derivations=tuple(tap_derivations),
        **values,  # type: ignore[arg-type]
    )


def _check_tap_tree(value: bytes, field: str) -> None:
    # BIP371: one or more {depth, leaf version, script} tuples, depth at most 128.
    reader = ByteReader(value)
    if not value:
        raise DecodeError("taproot tree must not be empty", field=field)
    while reader.remaining:
        if reader.u8(f"{field}.depth") > 128:
            raise DecodeError("leaf depth exceeds 128", field=field)
        reader.u8(f"{field}.leaf_version")
        reader.var_bytes(f"{field}.script")


def _build(
    global_map: PsbtMap, input_maps: Sequence[PsbtMap], output_maps: Sequence[PsbtMap]
) -> Psbt:
    globals_ = _decode_global(global_map)
    version = globals_.version
    inputs = tuple(_decode_input(m, i, version) for i, m in enumerate(input_maps))
    outputs = tuple(_decode_output(m, i, version) for i, m in enumerate(output_maps))
    tx = globals_.unsigned_tx
    expected_inputs = len(tx.inputs) if tx is not None else globals_.input_count
    expected_outputs = len(tx.outputs) if tx is not None else globals_.output_count
    if len(inputs) != expected_inputs:
        raise DecodeError(
            f"has {len(inputs)} input maps for {expected_inputs} inputs", field="inputs"
        )
    if len(outputs) != expected_outputs:
        raise DecodeError(
            f"has {len(outputs)} output maps for {expected_outputs} outputs", field="outputs"
        )
    for i, psbt_input in enumerate(inputs):
        if psbt_input.non_witness_utxo is None:
            continue
        if tx is not None:
            prevout = tx.inputs[i].prevout
        else:
            assert psbt_input.previous_txid is not None
            assert psbt_input.output_index is not None
            prevout = OutPoint(psbt_input.previous_txid, psbt_input.output_index)
        # BIP174: the non-witness UTXO is the whole previous transaction; it must be the
        # one the input spends and have the output the input names.
        if psbt_input.non_witness_utxo.txid() != prevout.txid:
            raise DecodeError(
                "non-witness UTXO is not the transaction the input spends",
                field=f"inputs[{i}].non_witness_utxo",
            )
        if prevout.index >= len(psbt_input.non_witness_utxo.outputs):
            raise DecodeError(
                "non-witness UTXO has no output at the spent index",
                field=f"inputs[{i}].non_witness_utxo",
            )
    return Psbt(
        global_map=global_map,
        input_maps=tuple(input_maps),
        output_maps=tuple(output_maps),
        globals=globals_,
        inputs=inputs,
        outputs=outputs,
    )


def parse_psbt(data: bytes) -> Psbt:
    """Parse and validate a binary PSBT (version 0 or 2).

    Raises:
        DecodeError: not a PSBT, truncated, trailing data, a duplicate key, a record of the
            wrong size or format, a field not allowed in this version, a missing required
            field, or map counts that disagree with the transaction.
        InvalidAmountError: an amount outside the money range.
        UnsupportedError: a PSBT version other than 0 or 2.
    """
    check_size(data, "psbt")
    if not data.startswith(MAGIC):
        raise DecodeError("does not start with the PSBT magic 'psbt\\xff'", field="psbt")
    reader = ByteReader(data)
    reader.read(len(MAGIC), "psbt.magic")
    global_map = _read_map(reader, "global")
    globals_ = _decode_global(global_map)
    if globals_.unsigned_tx is not None:
        n_inputs = len(globals_.unsigned_tx.inputs)
        n_outputs = len(globals_.unsigned_tx.outputs)
    else:
        assert globals_.input_count is not None
        assert globals_.output_count is not None
        n_inputs, n_outputs = globals_.input_count, globals_.output_count
    if n_inputs + n_outputs > reader.remaining:
        raise DecodeError("declares more maps than the data can hold", field="psbt")
    # Each map is validated as soon as it is read, so that the error names the first bad
    # record rather than a later symptom such as trailing data.
    input_maps = []
    for i in range(n_inputs):
        input_maps.append(_read_map(reader, f"inputs[{i}]"))
        _decode_input(input_maps[-1], i, globals_.version)
    output_maps = []
    for i in range(n_outputs):
        output_maps.append(_read_map(reader, f"outputs[{i}]"))
        _decode_output(output_maps[-1], i, globals_.version)
    reader.expect_end("psbt")
    return _build(global_map, input_maps, output_maps)


def decode_psbt_text(text: str) -> Psbt:
    """Parse a PSBT given as base64 (Bitcoin Core's form) or hex.

    Raises:
        DecodeError: neither valid base64 nor hex, or as :func:`parse_psbt`.
    """
    text = text.strip()
    if len(text) > 2 * 4_000_000:
        raise DecodeError("is too long", field="psbt")
    if text[:10].lower() == MAGIC.hex():
        try:
            return parse_psbt(bytes.fromhex(text))
        except ValueError:
            raise DecodeError("is not valid hex", field="psbt") from None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError("is neither base64 nor hex", field="psbt") from None
    return parse_psbt(raw)


# --- BIP370 version 2 --------------------------------------------------------------------


def _v2_locktime(psbt: Psbt) -> int:
    # BIP370 "Determining Lock Time": with no input requirements, the fallback (or 0);
    # otherwise a type every input with a requirement supports, height preferred, at the
    # maximum any input requires.
    constrained = [
        p
        for p in psbt.inputs
        if p.required_time_locktime is not None or p.required_height_locktime is not None
    ]
    if not constrained:
        return psbt.globals.fallback_locktime or 0
    heights_ok = all(p.required_height_locktime is not None for p in constrained)
    times_ok = all(p.required_time_locktime is not None for p in constrained)
    if heights_ok:
        return max(p.required_height_locktime or 0 for p in constrained)
    if times_ok:
        return max(p.required_time_locktime or 0 for p in constrained)
    raise LocktimeConflictError(
        "some inputs need a height locktime and others a time locktime", field="locktime"
    )


def _v2_output(output: PsbtOutput) -> TxOut:
    assert output.amount is not None
    assert output.script is not None
    return TxOut(Satoshi(output.amount), output.script)


def _assemble_v2_transaction(psbt: Psbt) -> Transaction:
    inputs = []
    for p in psbt.inputs:
        assert p.previous_txid is not None
        assert p.output_index is not None
        sequence = SEQUENCE_FINAL if p.sequence is None else p.sequence
        inputs.append(TxIn(OutPoint(p.previous_txid, p.output_index), b"", sequence))
    outputs = [_v2_output(o) for o in psbt.outputs]
    assert psbt.globals.tx_version is not None
    return Transaction(psbt.globals.tx_version, tuple(inputs), tuple(outputs), _v2_locktime(psbt))
