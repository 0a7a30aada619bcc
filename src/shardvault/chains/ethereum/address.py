"""Ethereum addresses: derivation from a public key and EIP-55 mixed-case checksums.

An address is the last 20 bytes of keccak256 of the 64-byte uncompressed public key
(Yellow Paper, Appendix F, equation 284). EIP-55 ("Mixed-case checksum address encoding")
upper-cases each hex letter whose matching nibble of keccak256(lowercase hex) is >= 8.
Input in mixed case must carry a correct checksum; all-lower or all-upper input carries no
checksum and is accepted unless the caller asks for one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import coincurve
from eth_hash.auto import keccak

from shardvault.chains.errors import InvalidAddressError

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True)
class Address:
    """A 20-byte Ethereum account address; ``str()`` gives its EIP-55 checksummed form."""

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != 20:
            raise InvalidAddressError("must be exactly 20 bytes", field="address")

    @property
    def checksummed(self) -> str:
        """The EIP-55 mixed-case hex form, with its ``0x`` prefix."""
        return to_checksum(self.raw)

    def __str__(self) -> str:
        return self.checksummed

    def __repr__(self) -> str:
        return f"Address({self.checksummed})"


@functools.lru_cache(maxsize=4096)
def to_checksum(raw: bytes) -> str:
    """Encode 20 address bytes as EIP-55 mixed-case hex with a ``0x`` prefix.

    Remembered for the last 4096 addresses: a transfer's source and destination are
    encoded and checked several times on its way (a keccak each time)."""
    lower = raw.hex()
    # EIP-55: hash the lowercase ASCII hex (without 0x) and upper-case letter i when
    # nibble i of that hash is 8 or more.
    digest = keccak(lower.encode("ascii")).hex()
    chars = [
        c.upper() if c.isalpha() and int(digest[i], 16) >= 8 else c for i, c in enumerate(lower)
    ]
    return "0x" + "".join(chars)


def parse_address(text: str, *, field: str = "address", require_checksum: bool = False) -> Address:
    """Parse a ``0x``-prefixed 40-hex-digit address, checking its EIP-55 checksum.

    Mixed-case input must match its checksum exactly. All-lowercase or all-uppercase
    input has no checksum; it is refused when ``require_checksum`` is set.

    Raises:
        InvalidAddressError: not a string, wrong prefix or length, a non-hex character,
            a wrong checksum, or no checksum when one is required; the message names ``field``.
    """
    if not isinstance(text, str):
        raise InvalidAddressError("must be a 0x-prefixed hex string", field=field)
    if len(text) != 42 or text[:2] not in ("0x", "0X"):
        raise InvalidAddressError("must be 0x followed by 40 hex digits", field=field)
    body = text[2:]
    if not set(body) <= _HEX_DIGITS:
        raise InvalidAddressError("contains a character that is not a hex digit", field=field)
    raw = bytes.fromhex(body)
    has_lower = any(c in "abcdef" for c in body)
    has_upper = any(c in "ABCDEF" for c in body)
    if has_lower and has_upper:
        if to_checksum(raw)[2:] != body:
            raise InvalidAddressError("EIP-55 checksum does not match", field=field)
    elif require_checksum and (has_lower or has_upper):
        raise InvalidAddressError("must be given in EIP-55 checksummed form", field=field)
    return Address(raw)


def address_from_public_key(public_key: bytes) -> Address:
    """Derive the address of a secp256k1 public key (33-byte compressed or 65-byte form).

    Raises:
        InvalidAddressError: the bytes are not a valid secp256k1 point.
    """
    try:
        point = coincurve.PublicKey(public_key).format(compressed=False)
    except (ValueError, TypeError) as exc:
        raise InvalidAddressError(
            "is not a valid secp256k1 public key", field="public_key"
        ) from exc
    return Address(keccak(point[1:])[-20:])
