"""Partially Signed Bitcoin Transactions: BIP174 (version 0) and BIP370 (version 2).

A PSBT is the magic ``psbt\\xff`` followed by a global map, one map per input and one per
output; each map is a list of ``<key> <value>`` pairs ended by a zero byte, every key and
value being CompactSize length-prefixed and every key starting with a CompactSize type
(BIP174 "Specification"). This module keeps each map's records in the order they came, so
that any valid PSBT re-serializes byte for byte, and validates every record of every type
BIP174, BIP371 (taproot fields) and BIP370 define, with the rules of BIP174 "Encoding"
and the per-type key and value formats. Unknown types are kept and passed through.

Roles (BIP174 "Roles"): :func:`create_psbt` is the Creator; the ``set_``/``add_``
functions the Updater; :func:`add_ecdsa_signature` and :func:`add_taproot_key_signature`
are the Signer for a signature made elsewhere (an MPC quorum, an HSM), which they verify
against the sighash computed here before attaching it; :func:`finalize` the Input
Finalizer for P2WPKH (native or nested in P2SH, BIP141) and taproot key-path inputs;
:func:`extract_transaction` the Transaction Extractor. :func:`check_input_signable` applies
BIP174's "Signer" checks that a signer must refuse (a witness UTXO for a non-witness input,
a redeemScript or witnessScript that does not hash to the script it claims).

Version 2 PSBTs are parsed and validated (BIP370 "Specification": required and excluded
fields, locktime ranges) and their transaction is assembled with BIP370's "Determining
Lock Time" rule.
"""

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from coincurve import PublicKey, PublicKeyXOnly

from shardvault.chains.amounts import MAX_SATOSHI, Satoshi
from shardvault.chains.bitcoin.encoding import (
    ByteReader,
    check_size,
    compact_size,
    hash160,
    hash256,
    ripemd160,
    sha256,
    u32,
    var_bytes,
)
from shardvault.chains.bitcoin.models import (
    SEQUENCE_FINAL,
    OutPoint,
    Transaction,
    TxIn,
    TxOut,
    read_transaction,
    serialize_witness,
)
from shardvault.chains.bitcoin.script import (
    ScriptType,
    check_compressed_pubkey,
    classify,
    is_witness_program,
    p2wpkh_script_code,
)
from shardvault.chains.bitcoin.sighash import (
    SIGHASH_ALL,
    SIGHASH_DEFAULT,
    segwit_v0_sighash,
    taproot_key_path_sighash,
)
from shardvault.chains.bitcoin.taproot import output_key
from shardvault.chains.errors import (
    ChainError,
    DecodeError,
    InvalidAddressError,
    InvalidAmountError,
    SignatureAssemblyError,
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
class PsbtRecord:
    """One key/value pair of a PSBT map: the key's type, the rest of the key, the value."""

    key_type: int
    key_data: bytes
    value: bytes

    @property
    def key(self) -> bytes:
        """The whole key: the CompactSize type then the key data."""
        return compact_size(self.key_type) + self.key_data

    def serialize(self) -> bytes:
        """``<keylen> <key> <valuelen> <value>``."""
        return var_bytes(self.key) + var_bytes(self.value)


PsbtMap = tuple[PsbtRecord, ...]
"""A PSBT map: its records in serialization order."""


@dataclass(frozen=True, slots=True)
class KeyOrigin:
    """BIP174 key origin: the master key fingerprint and the derivation path."""

    fingerprint: bytes
    path: tuple[int, ...]

    def serialize(self) -> bytes:
        """4-byte fingerprint then each path element as 32-bit little-endian."""
        return self.fingerprint + b"".join(u32(i) for i in self.path)

    def __str__(self) -> str:
        steps = [str(i & 0x7FFF_FFFF) + ("'" if i & 0x8000_0000 else "") for i in self.path]
        return "/".join([self.fingerprint.hex(), *steps])


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


# --- Decoding helpers -----------------------------------------------------------------


def _empty_key(record: PsbtRecord, field: str) -> None:
    if record.key_data:
        raise DecodeError("key must be the type byte alone", field=field)


def _fixed(value: bytes, size: int, field: str) -> bytes:
    if len(value) != size:
        raise DecodeError(f"value must be {size} bytes, got {len(value)}", field=field)
    return value


def _pubkey_key(key_data: bytes, field: str) -> bytes:
    # BIP174: a public key in a key is 33 (compressed) or 65 (uncompressed) bytes.
    if len(key_data) not in (33, 65):
        raise DecodeError(f"public key is {len(key_data)} bytes, not 33 or 65", field=field)
    try:
        PublicKey(key_data)
    except ValueError:
        raise DecodeError("public key is not a point on secp256k1", field=field) from None
    return key_data


def _xonly_key(key_data: bytes, field: str) -> bytes:
    if len(key_data) != 32:
        raise DecodeError(f"x-only key is {len(key_data)} bytes, not 32", field=field)
    try:
        PublicKeyXOnly(key_data)
    except ValueError:
        raise DecodeError("x-only key is not on secp256k1", field=field) from None
    return key_data


def _key_origin(value: bytes, field: str) -> KeyOrigin:
    if len(value) < 4 or len(value) % 4:
        raise DecodeError("key origin must be a fingerprint and 4-byte path steps", field=field)
    steps = tuple(int.from_bytes(value[i : i + 4], "little") for i in range(4, len(value), 4))
    return KeyOrigin(value[:4], steps)


def _is_strict_der(sig: bytes) -> bool:
    # BIP66 "DER encoding": 0x30 len 0x02 rlen r 0x02 slen s, minimal positive integers.
    # ``sig`` here excludes the trailing sighash byte.
    if not 8 <= len(sig) <= 72 or sig[0] != 0x30 or sig[1] != len(sig) - 2:
        return False
    r_len = sig[3]
    if sig[2] != 0x02 or r_len == 0 or 5 + r_len >= len(sig):
        return False
    s_len = sig[5 + r_len]
    if r_len + s_len + 6 != len(sig) or sig[4 + r_len] != 0x02 or s_len == 0:
        return False
    r, s = sig[4 : 4 + r_len], sig[6 + r_len :]
    for part in (r, s):
        if part[0] & 0x80:
            return False
        if len(part) > 1 and part[0] == 0 and not part[1] & 0x80:
            return False
    return True


def _ecdsa_sig(value: bytes, field: str) -> bytes:
    if len(value) < 2 or not _is_strict_der(value[:-1]):
        raise DecodeError("signature is not strict DER plus a sighash byte", field=field)
    return value


def _schnorr_sig(value: bytes, field: str) -> bytes:
    # BIP341: 64 bytes, or 65 with an explicit hash type that is not 0x00.
    if len(value) not in (64, 65):
        raise DecodeError(f"Schnorr signature is {len(value)} bytes, not 64 or 65", field=field)
    if len(value) == 65 and value[64] == SIGHASH_DEFAULT:
        raise DecodeError("a 65-byte Schnorr signature cannot use hash type 0", field=field)
    return value


def _u32_value(value: bytes, field: str) -> int:
    return int.from_bytes(_fixed(value, 4, field), "little")


def _witness_stack(value: bytes, field: str) -> tuple[bytes, ...]:
    reader = ByteReader(value)
    n = reader.count(field, 1)
    stack = tuple(reader.var_bytes(f"{field}[{i}]") for i in range(n))
    reader.expect_end(field)
    return stack


def _txout(value: bytes, field: str) -> TxOut:
    reader = ByteReader(value)
    amount = reader.i64(f"{field}.amount")
    if not 0 <= amount <= MAX_SATOSHI:
        raise InvalidAmountError("must be between 0 and 21e14 satoshi", field=f"{field}.amount")
    script = reader.var_bytes(f"{field}.script_pubkey")
    reader.expect_end(field)
    return TxOut(Satoshi(amount), script)


def _tap_bip32(record: PsbtRecord, field: str) -> tuple[bytes, KeyOrigin]:
    key = _xonly_key(record.key_data, field)
    reader = ByteReader(record.value)
    n = reader.count(f"{field}.leaf_hashes", 32)
    reader.read(32 * n, f"{field}.leaf_hashes")
    origin = _key_origin(reader.read(reader.remaining, field), field)
    return key, origin


def _check_proprietary(record: PsbtRecord, field: str) -> None:
    # BIP174: proprietary keys are <identifier length> <identifier> <subtype> <keydata>.
    reader = ByteReader(record.key_data)
    reader.var_bytes(f"{field}.identifier")
    reader.compact_size(f"{field}.subtype")


def _read_map(reader: ByteReader, field: str) -> PsbtMap:
    # BIP174 "Encoding": key-value pairs until a 0x00 separator; keys unique per map.
    records: list[PsbtRecord] = []
    seen: set[bytes] = set()
    while True:
        key_len = reader.compact_size(f"{field}.key")
        if key_len == 0:
            return tuple(records)
        key = reader.read(key_len, f"{field}.key")
        key_reader = ByteReader(key)
        key_type = key_reader.compact_size(f"{field}.key_type")
        key_data = key[key_reader.position :]
        value = reader.var_bytes(f"{field}[{key_type:#04x}].value")
        if key in seen:
            raise DecodeError(f"duplicate key of type {key_type:#04x}", field=field)
        seen.add(key)
        records.append(PsbtRecord(key_type, key_data, value))


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


# --- Creator and Updater -----------------------------------------------------------------


def _with_record(psbt_map: PsbtMap, record: PsbtRecord) -> PsbtMap:
    # Replace a record with the same key, or insert before the first larger key so that
    # maps built here stay in key order.
    out = [r for r in psbt_map if r.key != record.key]
    position = next((i for i, r in enumerate(out) if r.key > record.key), len(out))
    out.insert(position, record)
    return tuple(out)


def _replace_input(psbt: Psbt, index: int, records: PsbtMap) -> Psbt:
    maps = list(psbt.input_maps)
    maps[index] = records
    return _build(psbt.global_map, maps, psbt.output_maps)


def _check_input_index(psbt: Psbt, index: int) -> None:
    if not 0 <= index < len(psbt.inputs):
        raise ChainError(f"input {index} does not exist", field="input_index")


def create_psbt(
    inputs: Sequence[OutPoint | TxIn],
    outputs: Sequence[TxOut],
    *,
    tx_version: int = 2,
    locktime: int = 0,
) -> Psbt:
    """Creator (BIP174): a version 0 PSBT around an unsigned transaction.

    Raises:
        DecodeError: an input that carries a scriptSig or witness.
    """
    tx_inputs = tuple(i if isinstance(i, TxIn) else TxIn(i) for i in inputs)
    for i, txin in enumerate(tx_inputs):
        if txin.script_sig or txin.witness:
            raise DecodeError("must not carry a scriptSig or witness", field=f"inputs[{i}]")
    tx = Transaction(tx_version, tx_inputs, tuple(outputs), locktime)
    global_map = (PsbtRecord(GLOBAL_UNSIGNED_TX, b"", tx.serialize(include_witness=False)),)
    return _build(global_map, [() for _ in tx.inputs], [() for _ in tx.outputs])


def set_witness_utxo(psbt: Psbt, index: int, utxo: TxOut) -> Psbt:
    """Updater: record the output input ``index`` spends (amount and script)."""
    _check_input_index(psbt, index)
    record = PsbtRecord(IN_WITNESS_UTXO, b"", utxo.serialize())
    return _replace_input(psbt, index, _with_record(psbt.input_maps[index], record))


def set_non_witness_utxo(psbt: Psbt, index: int, previous_tx: Transaction) -> Psbt:
    """Updater: the whole transaction input ``index`` spends from.

    Raises:
        DecodeError: it is not the transaction the input names, or lacks the output.
    """
    _check_input_index(psbt, index)
    record = PsbtRecord(IN_NON_WITNESS_UTXO, b"", previous_tx.serialize())
    return _replace_input(psbt, index, _with_record(psbt.input_maps[index], record))


def set_sighash_type(psbt: Psbt, index: int, hash_type: int) -> Psbt:
    """Updater: the sighash type the signer must use for input ``index``."""
    _check_input_index(psbt, index)
    if not 0 <= hash_type <= 0xFFFF_FFFF:
        raise UnsupportedError("must fit in 32 bits", field="sighash_type")
    record = PsbtRecord(IN_SIGHASH_TYPE, b"", u32(hash_type))
    return _replace_input(psbt, index, _with_record(psbt.input_maps[index], record))


def add_bip32_derivation(psbt: Psbt, index: int, pubkey: bytes, origin: KeyOrigin) -> Psbt:
    """Updater: the key origin of a public key that signs input ``index``."""
    _check_input_index(psbt, index)
    _pubkey_key(pubkey, f"inputs[{index}].bip32_derivation")
    record = PsbtRecord(IN_BIP32_DERIVATION, pubkey, origin.serialize())
    return _replace_input(psbt, index, _with_record(psbt.input_maps[index], record))


def set_tap_internal_key(psbt: Psbt, index: int, internal_key: bytes) -> Psbt:
    """Updater: the taproot internal key of input ``index`` (BIP371)."""
    _check_input_index(psbt, index)
    _xonly_key(internal_key, f"inputs[{index}].tap_internal_key")
    record = PsbtRecord(IN_TAP_INTERNAL_KEY, b"", internal_key)
    return _replace_input(psbt, index, _with_record(psbt.input_maps[index], record))


def add_tap_bip32_derivation(
    psbt: Psbt, index: int, x_only: bytes, origin: KeyOrigin, leaf_hashes: Iterable[bytes] = ()
) -> Psbt:
    """Updater: the key origin of a taproot key of input ``index`` (BIP371)."""
    _check_input_index(psbt, index)
    _xonly_key(x_only, f"inputs[{index}].tap_bip32_derivation")
    hashes = list(leaf_hashes)
    if any(len(h) != 32 for h in hashes):
        raise DecodeError("leaf hashes must be 32 bytes", field="leaf_hashes")
    value = compact_size(len(hashes)) + b"".join(hashes) + origin.serialize()
    record = PsbtRecord(IN_TAP_BIP32_DERIVATION, x_only, value)
    return _replace_input(psbt, index, _with_record(psbt.input_maps[index], record))


# --- Signer ---------------------------------------------------------------------------------


def _spent_script(psbt: Psbt, index: int) -> bytes:
    spent = psbt.spent_output(index)
    if spent is None:
        raise PsbtSignerRefusal(
            "has neither a witness nor a non-witness UTXO", field=f"inputs[{index}]"
        )
    return spent.script_pubkey


def check_input_signable(psbt: Psbt, index: int) -> bytes:
    """BIP174 "Signer" checks; returns the script the input's signature commits to.

    Raises:
        PsbtSignerRefusal: no UTXO; a redeemScript that does not hash to the P2SH output;
            a witnessScript that does not hash to the P2WSH program; a witness UTXO for an
            input that is not a witness program; a taproot internal key that does not
            tweak to the output key.
    """
    _check_input_index(psbt, index)
    p = psbt.inputs[index]
    field = f"inputs[{index}]"
    script = _spent_script(psbt, index)
    if p.redeem_script is not None:
        if classify(script) is not ScriptType.P2SH or script[2:22] != hash160(p.redeem_script):
            raise PsbtSignerRefusal("redeemScript does not match the scriptPubKey", field=field)
        script = p.redeem_script
    if p.witness_script is not None:
        if classify(script) is not ScriptType.P2WSH or script[2:] != sha256(p.witness_script):
            raise PsbtSignerRefusal("witnessScript does not match the witness program", field=field)
    if p.witness_utxo is not None and p.non_witness_utxo is None and not is_witness_program(script):
        raise PsbtSignerRefusal("a witness UTXO is given for a non-witness input", field=field)
    if p.non_witness_utxo is not None and p.witness_utxo is not None:
        if p.non_witness_utxo.outputs[psbt.prevout(index).index] != p.witness_utxo:
            raise PsbtSignerRefusal("witness and non-witness UTXOs disagree", field=field)
    if classify(script) is ScriptType.P2TR and p.tap_internal_key is not None:
        tweaked = output_key(p.tap_internal_key, p.tap_merkle_root)
        if tweaked.x_only != script[2:]:
            raise PsbtSignerRefusal(
                "taproot internal key does not tweak to the output key", field=field
            )
    return script


def input_sighash(psbt: Psbt, index: int, *, require_full_utxo: bool = False) -> bytes:
    """The digest a signer signs for input ``index``: BIP143 for P2WPKH, BIP341 key path
    for P2TR, using the input's sighash type (default ALL, or DEFAULT for taproot).

    A BIP143 signature commits only to its own input's amount, so a signer shown false
    amounts for the other inputs can be led to pay a hidden fee; ``require_full_utxo``
    makes P2WPKH signing need every segwit v0 input's whole previous transaction
    (``non_witness_utxo``), whose txid proves the amounts. Taproot commits to every
    input's amount, so it does not need this.

    Raises:
        PsbtSignerRefusal: as :func:`check_input_signable`, a taproot input whose
            sibling inputs lack their UTXOs, or a missing previous transaction under
            ``require_full_utxo``.
        UnsupportedError: any other script type.
    """
    script = check_input_signable(psbt, index)
    p = psbt.inputs[index]
    tx = psbt.unsigned_transaction()
    kind = classify(script)
    if kind is ScriptType.P2WPKH:
        if require_full_utxo:
            for i, other in enumerate(psbt.inputs):
                spent_i = psbt.spent_output(i)
                is_v0 = spent_i is not None and spent_i.script_pubkey[:1] == b"\x00"
                if (spent_i is None or is_v0) and other.non_witness_utxo is None:
                    raise PsbtSignerRefusal(
                        "needs the previous transaction to prove its amount",
                        field=f"inputs[{i}].non_witness_utxo",
                    )
        spent = psbt.spent_output(index)
        assert spent is not None
        hash_type = SIGHASH_ALL if p.sighash_type is None else p.sighash_type
        return segwit_v0_sighash(tx, index, p2wpkh_script_code(script[2:]), spent.value, hash_type)
    if kind is ScriptType.P2TR:
        spent_outputs = []
        for i in range(len(tx.inputs)):
            spent_i = psbt.spent_output(i)
            if spent_i is None:
                raise PsbtSignerRefusal(
                    "taproot signing needs every input's UTXO", field=f"inputs[{i}]"
                )
            spent_outputs.append(spent_i)
        hash_type = SIGHASH_DEFAULT if p.sighash_type is None else p.sighash_type
        return taproot_key_path_sighash(tx, index, spent_outputs, hash_type)
    raise UnsupportedError(
        f"signing {kind.value} inputs is not supported", field=f"inputs[{index}]"
    )


def add_ecdsa_signature(psbt: Psbt, index: int, pubkey: bytes, signature: bytes) -> Psbt:
    """Signer: attach an ECDSA signature (DER plus the sighash byte) to a P2WPKH input.

    The signature is verified against :func:`input_sighash` and the key against the
    witness program before it is attached.

    Raises:
        PsbtSignerRefusal, UnsupportedError: as :func:`input_sighash`.
        SignatureAssemblyError: not P2WPKH, a key that is not the input's, a sighash byte
            other than the input's, non-DER or high-s encoding, or a signature that does
            not verify.
    """
    field = f"inputs[{index}].partial_sig"
    digest = input_sighash(psbt, index)
    script = _spent_script(psbt, index)
    if classify(script) is not ScriptType.P2WPKH:
        raise SignatureAssemblyError("ECDSA signatures are for P2WPKH inputs", field=field)
    try:
        check_compressed_pubkey(pubkey, field)
    except InvalidAddressError as exc:
        raise SignatureAssemblyError(str(exc)) from None
    if hash160(pubkey) != script[2:]:
        raise SignatureAssemblyError("public key does not match the witness program", field=field)
    expected_type = psbt.inputs[index].sighash_type
    expected_type = SIGHASH_ALL if expected_type is None else expected_type
    if len(signature) < 2 or signature[-1] != expected_type:
        raise SignatureAssemblyError(f"sighash byte must be {expected_type:#04x}", field=field)
    if not _is_strict_der(signature[:-1]):
        raise SignatureAssemblyError("signature is not strict DER", field=field)
    # libsecp256k1 rejects high-s signatures, as Bitcoin's standardness rules (BIP146) do.
    if not PublicKey(pubkey).verify(signature[:-1], digest, hasher=None):
        raise SignatureAssemblyError("signature does not verify for this input", field=field)
    record = PsbtRecord(IN_PARTIAL_SIG, pubkey, signature)
    return _replace_input(psbt, index, _with_record(psbt.input_maps[index], record))


def add_taproot_key_signature(psbt: Psbt, index: int, signature: bytes) -> Psbt:
    """Signer: attach a BIP340 signature (64 bytes, or 65 with a hash type) to a P2TR
    input's key path, after verifying it against the output key and :func:`input_sighash`.

    Raises:
        PsbtSignerRefusal, UnsupportedError: as :func:`input_sighash`.
        SignatureAssemblyError: not P2TR, wrong length, a hash type other than the
            input's, or a signature that does not verify.
    """
    field = f"inputs[{index}].tap_key_sig"
    digest = input_sighash(psbt, index)
    script = _spent_script(psbt, index)
    if classify(script) is not ScriptType.P2TR:
        raise SignatureAssemblyError("Schnorr key-path signatures are for P2TR", field=field)
    try:
        _schnorr_sig(signature, field)
    except DecodeError as exc:
        raise SignatureAssemblyError(str(exc)) from None
    expected_type = psbt.inputs[index].sighash_type or SIGHASH_DEFAULT
    actual_type = signature[64] if len(signature) == 65 else SIGHASH_DEFAULT
    if actual_type != expected_type:
        raise SignatureAssemblyError(
            f"hash type {actual_type:#04x} is not the input's {expected_type:#04x}", field=field
        )
    if not PublicKeyXOnly(script[2:]).verify(signature[:64], digest):
        raise SignatureAssemblyError("signature does not verify for this input", field=field)
    record = PsbtRecord(IN_TAP_KEY_SIG, b"", signature)
    return _replace_input(psbt, index, _with_record(psbt.input_maps[index], record))


# --- Finalizer and Extractor -----------------------------------------------------------------


def finalize(psbt: Psbt) -> Psbt:
    """Input Finalizer: build the final scriptSig and witness of every signed P2WPKH
    input, native or nested in P2SH, and of every signed P2TR key-path input, and clear
    the fields BIP174 says to clear. Already final inputs are left alone.

    Raises:
        PsbtSignerRefusal: as :func:`check_input_signable`.
        SignatureAssemblyError: an input without the signature it needs.
        UnsupportedError: an input of another script type, among them P2SH-wrapped P2WSH,
            P2SH with a non-segwit redeemScript, and a P2SH-wrapped witness version 1
            program (which BIP341 says is not taproot).
    """
    maps = list(psbt.input_maps)
    for index, p in enumerate(psbt.inputs):
        if p.is_finalized:
            continue
        # For a P2SH input this is the redeemScript, already checked against the output.
        script = check_input_signable(psbt, index)
        kind = classify(script)
        nested = p.redeem_script is not None
        script_sig: bytes | None = None
        if kind is ScriptType.P2WPKH:
            sigs = [(k, s) for k, s in p.partial_sigs if hash160(k) == script[2:]]
            if not sigs:
                raise SignatureAssemblyError(
                    "has no signature for its key", field=f"inputs[{index}].partial_sig"
                )
            key, sig = sigs[0]
            stack: tuple[bytes, ...] = (sig, key)
            if nested:
                # BIP141 "P2WPKH nested in BIP16 P2SH": the scriptSig is one direct push
                # of the 22-byte redeemScript (opcode 0x16 pushes the next 22 bytes).
                script_sig = bytes([len(script)]) + script
        elif kind is ScriptType.P2TR and not nested:
            if p.tap_key_sig is None:
                raise SignatureAssemblyError(
                    "has no key-path signature", field=f"inputs[{index}].tap_key_sig"
                )
            stack = (p.tap_key_sig,)
        else:
            # BIP341 "Script validation rules": a witness version 1 program inside P2SH is
            # not taproot, so a key-path witness is not what spends it.
            wrapped = " inside P2SH" if nested else ""
            raise UnsupportedError(
                f"finalizing {kind.value} inputs{wrapped} is not supported",
                field=f"inputs[{index}]",
            )
        kept = tuple(
            r
            for r in maps[index]
            if r.key_type in _KEPT_AFTER_FINALIZE or r.key_type not in _KNOWN_INPUT_TYPES
        )
        if script_sig is not None:
            kept = _with_record(kept, PsbtRecord(IN_FINAL_SCRIPTSIG, b"", script_sig))
        record = PsbtRecord(IN_FINAL_SCRIPTWITNESS, b"", serialize_witness(stack))
        maps[index] = _with_record(kept, record)
    return _build(psbt.global_map, maps, psbt.output_maps)


def extract_transaction(psbt: Psbt) -> Transaction:
    """Transaction Extractor: the network transaction of a fully finalized PSBT.

    Raises:
        SignatureAssemblyError: an input that is not finalized.
    """
    tx = psbt.unsigned_transaction()
    inputs = []
    for index, (txin, p) in enumerate(zip(tx.inputs, psbt.inputs, strict=True)):
        if not p.is_finalized:
            raise SignatureAssemblyError("is not finalized", field=f"inputs[{index}]")
        inputs.append(
            TxIn(
                txin.prevout,
                p.final_script_sig or b"",
                txin.sequence,
                p.final_script_witness or (),
            )
        )
    return Transaction(tx.version, tuple(inputs), tx.outputs, tx.locktime)


def input_is_signed(psbt: Psbt, index: int) -> bool:
    """Whether input ``index`` is final or carries any signature."""
    p = psbt.inputs[index]
    return p.is_finalized or bool(p.partial_sigs) or p.tap_key_sig is not None
