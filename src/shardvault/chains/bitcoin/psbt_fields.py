"""The records of a PSBT and the readers of their keys and values (BIP174 "Encoding",
BIP371 for the taproot fields): each reader checks one field's format and names the
field when it refuses. :mod:`.psbt` validates whole maps with them.
"""

from dataclasses import dataclass

from coincurve import PublicKey, PublicKeyXOnly

from shardvault.chains.amounts import MAX_SATOSHI, Satoshi
from shardvault.chains.bitcoin.encoding import (
    ByteReader,
    compact_size,
    u32,
    var_bytes,
)
from shardvault.chains.bitcoin.models import (
    TxOut,
)
from shardvault.chains.bitcoin.sighash import (
    SIGHASH_DEFAULT,
)
from shardvault.chains.errors import (
    DecodeError,
    InvalidAmountError,
)


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
