"""Bitcoin's byte-level encodings: little-endian integers, CompactSize, hashes.

CompactSize is the variable-length integer of the Bitcoin P2P protocol (Bitcoin Core
``serialize.h``; BIP144 and BIP174 use it for witness stacks and PSBT key/value lengths).
Decoding is strict: a value must use its shortest form, as Bitcoin Core's
``ReadCompactSize`` requires, so every byte string has at most one parse and re-encoding
reproduces it. The hashes (SHA256, double SHA256, HASH160 and BIP340 tagged hashes) come
from hashlib and pycryptodome; nothing here implements a primitive.
"""

import hashlib

from Crypto.Hash import RIPEMD160

from shardvault.chains.errors import DecodeError

MAX_DECODE_SIZE = 4_000_000
"""The largest transaction or PSBT accepted, in bytes: a block's whole weight budget."""


def sha256(data: bytes) -> bytes:
    """SHA256 of ``data``."""
    return hashlib.sha256(data).digest()


def hash256(data: bytes) -> bytes:
    """Bitcoin's double SHA256, used for txids, BIP143 and checksums."""
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def ripemd160(data: bytes) -> bytes:
    """RIPEMD160 of ``data``, from pycryptodome (OpenSSL 3 may lack it in hashlib)."""
    return RIPEMD160.new(data).digest()


def hash160(data: bytes) -> bytes:
    """RIPEMD160(SHA256(data)): the hash of a public key in P2WPKH and P2PKH."""
    return ripemd160(sha256(data))


def tagged_hash(tag: str, data: bytes) -> bytes:
    """BIP340 tagged hash: SHA256(SHA256(tag) || SHA256(tag) || data)."""
    tag_digest = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(tag_digest + tag_digest + data).digest()


def u32(value: int) -> bytes:
    """A 32-bit unsigned little-endian integer."""
    return value.to_bytes(4, "little")


def u64(value: int) -> bytes:
    """A 64-bit unsigned little-endian integer."""
    return value.to_bytes(8, "little")


def compact_size(value: int) -> bytes:
    """Encode ``value`` as a CompactSize in its shortest form."""
    if value < 0xFD:
        return bytes([value])
    if value <= 0xFFFF:
        return b"\xfd" + value.to_bytes(2, "little")
    if value <= 0xFFFF_FFFF:
        return b"\xfe" + value.to_bytes(4, "little")
    return b"\xff" + value.to_bytes(8, "little")


def var_bytes(data: bytes) -> bytes:
    """``data`` prefixed by its length as a CompactSize."""
    return compact_size(len(data)) + data


class ByteReader:
    """A cursor over bytes that raises :class:`DecodeError` naming the field on any short read.

    Every read names the field it is reading, so a truncated or malformed input reports
    where it went wrong (``inputs[2].script_sig``) rather than a bare index error.
    """

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        """How many bytes are left unread."""
        return len(self._data) - self._pos

    @property
    def position(self) -> int:
        """The offset of the next byte to read."""
        return self._pos

    def peek(self, n: int) -> bytes:
        """The next ``n`` bytes (fewer at the end) without consuming them."""
        return self._data[self._pos : self._pos + n]

    def read(self, n: int, field: str) -> bytes:
        """Consume exactly ``n`` bytes."""
        if n < 0 or n > self.remaining:
            raise DecodeError(f"needs {n} bytes but only {self.remaining} remain", field=field)
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def u8(self, field: str) -> int:
        """Consume one byte."""
        return self.read(1, field)[0]

    def u32(self, field: str) -> int:
        """Consume a 32-bit unsigned little-endian integer."""
        return int.from_bytes(self.read(4, field), "little")

    def i32(self, field: str) -> int:
        """Consume a 32-bit signed little-endian integer."""
        return int.from_bytes(self.read(4, field), "little", signed=True)

    def u64(self, field: str) -> int:
        """Consume a 64-bit unsigned little-endian integer."""
        return int.from_bytes(self.read(8, field), "little")

    def i64(self, field: str) -> int:
        """Consume a 64-bit signed little-endian integer."""
        return int.from_bytes(self.read(8, field), "little", signed=True)

    def compact_size(self, field: str) -> int:
        """Consume a CompactSize, refusing a non-shortest encoding."""
        first = self.u8(field)
        if first < 0xFD:
            return first
        width, minimum = {0xFD: (2, 0xFD), 0xFE: (4, 0x1_0000), 0xFF: (8, 0x1_0000_0000)}[first]
        value = int.from_bytes(self.read(width, field), "little")
        if value < minimum:
            raise DecodeError("CompactSize is not in its shortest form", field=field)
        return value

    def count(self, field: str, min_item_size: int) -> int:
        """Consume a CompactSize item count, refusing one the remaining bytes cannot hold."""
        n = self.compact_size(field)
        if n * min_item_size > self.remaining:
            raise DecodeError(
                f"declares {n} items but only {self.remaining} bytes remain", field=field
            )
        return n

    def var_bytes(self, field: str) -> bytes:
        """Consume a CompactSize length and that many bytes."""
        n = self.compact_size(field)
        return self.read(n, field)

    def expect_end(self, field: str) -> None:
        """Refuse trailing bytes."""
        if self.remaining:
            raise DecodeError(f"{self.remaining} unexpected trailing bytes", field=field)


def check_size(data: bytes, field: str, limit: int = MAX_DECODE_SIZE) -> None:
    """Refuse input longer than ``limit`` bytes before decoding it."""
    if len(data) > limit:
        raise DecodeError(f"is {len(data)} bytes; the limit is {limit}", field=field)
