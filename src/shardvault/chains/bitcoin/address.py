"""Bitcoin addresses: bech32 (BIP173), bech32m (BIP350) and legacy Base58Check.

Segwit version 0 programs use bech32 and versions 1 to 16 use bech32m (BIP350 "Addresses
for segregated witness outputs"). The checksum is the BCH code of BIP173 "Checksum", whose
final constant is 1 for bech32 and 0x2bc830a3 for bech32m. Decoding checks, in order: the
overall length (at most 90), character set and case, the separator, the checksum and its
variant, the human-readable part against the expected network, the witness version and
the program length (BIP141 "Witness program"). Base58Check (P2PKH and P2SH) is decoded for
display and for paying legacy destinations; its checksum is the first four bytes of the
double SHA256 of the payload.
"""

from dataclasses import dataclass
from enum import Enum

import base58

from shardvault.chains.bitcoin.encoding import hash256
from shardvault.chains.errors import InvalidAddressError


class Network(Enum):
    """A Bitcoin network; the value is its bech32 human-readable part."""

    MAINNET = "bc"
    TESTNET = "tb"
    SIGNET = "tb-signet"
    REGTEST = "bcrt"

    @property
    def hrp(self) -> str:
        """The bech32 human-readable part (signet shares testnet's ``tb``)."""
        return "tb" if self is Network.SIGNET else self.value

    @property
    def p2pkh_version(self) -> int:
        """The Base58Check version byte of pay-to-pubkey-hash addresses."""
        return 0x00 if self is Network.MAINNET else 0x6F

    @property
    def p2sh_version(self) -> int:
        """The Base58Check version byte of pay-to-script-hash addresses."""
        return 0x05 if self is Network.MAINNET else 0xC4

    @classmethod
    def from_name(cls, name: str) -> "Network":
        """Parse ``mainnet``/``bitcoin``, ``testnet``, ``signet`` or ``regtest``."""
        names = {
            "mainnet": cls.MAINNET,
            "bitcoin": cls.MAINNET,
            "main": cls.MAINNET,
            "testnet": cls.TESTNET,
            "test": cls.TESTNET,
            "signet": cls.SIGNET,
            "regtest": cls.REGTEST,
        }
        try:
            return names[name.lower()]
        except KeyError:
            raise InvalidAddressError(f"unknown network {name!r}", field="network") from None


NETWORK_NAMES = frozenset({"bitcoin", "testnet", "signet", "regtest"})
"""The names a Bitcoin network goes by in shardvault's policies, intents and co-signer
requests (``metadata.network``); :meth:`Network.from_name` reads each."""


class Bech32Variant(Enum):
    """The two checksum constants: BIP173 bech32 and BIP350 bech32m."""

    BECH32 = 1
    BECH32M = 0x2BC830A3


_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_MAX_LENGTH = 90


def _polymod(values: list[int]) -> int:
    # BIP173 "Checksum": the remainder of the BCH code over GF(32), as the BIP defines it.
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GENERATOR[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    # BIP173: the high bits of each HRP character, a zero, then the low bits.
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def bech32_encode(hrp: str, data: list[int], variant: Bech32Variant) -> str:
    """Encode 5-bit ``data`` under ``hrp`` with the checksum of ``variant``."""
    values = _hrp_expand(hrp) + data
    polymod = _polymod([*values, 0, 0, 0, 0, 0, 0]) ^ variant.value
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[d] for d in data + checksum)


def bech32_decode(text: str, *, field: str = "address") -> tuple[str, list[int], Bech32Variant]:
    """Decode a bech32 or bech32m string into its HRP, 5-bit data and checksum variant.

    Raises:
        InvalidAddressError: too long, mixed case, characters outside the charset, no
            separator, an empty or invalid HRP, or a checksum matching neither variant.
    """
    if len(text) > _MAX_LENGTH:
        raise InvalidAddressError(f"is longer than {_MAX_LENGTH} characters", field=field)
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise InvalidAddressError("contains a character outside US-ASCII 33-126", field=field)
    if text.lower() != text and text.upper() != text:
        raise InvalidAddressError("mixes upper and lower case", field=field)
    text = text.lower()
    sep = text.rfind("1")
    if sep < 1:
        raise InvalidAddressError("has no human-readable part before '1'", field=field)
    if sep + 7 > len(text):
        raise InvalidAddressError("checksum is shorter than 6 characters", field=field)
    hrp, rest = text[:sep], text[sep + 1 :]
    if any(c not in _CHARSET for c in rest):
        raise InvalidAddressError("data part has a character outside bech32's set", field=field)
    data = [_CHARSET.index(c) for c in rest]
    check = _polymod(_hrp_expand(hrp) + data)
    for variant in Bech32Variant:
        if check == variant.value:
            return hrp, data[:-6], variant
    raise InvalidAddressError("bech32 checksum is wrong", field=field)


def _convert_bits(
    data: list[int] | bytes, from_bits: int, to_bits: int, *, pad: bool, field: str
) -> list[int]:
    # BIP173 reference "convertbits": regroup bits; when not padding, leftover bits must
    # be fewer than from_bits and all zero.
    acc = 0
    bits = 0
    out = []
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    elif bits >= from_bits:
        raise InvalidAddressError("has more than 4 bits of padding", field=field)
    elif (acc << (to_bits - bits)) & maxv:
        raise InvalidAddressError("has non-zero padding bits", field=field)
    return out


@dataclass(frozen=True, slots=True)
class SegwitAddress:
    """A decoded segwit address: network, witness version and witness program."""

    network: Network
    witness_version: int
    program: bytes

    @property
    def script_pubkey(self) -> bytes:
        """BIP141: OP_n (OP_0 or OP_1..OP_16) followed by a push of the program."""
        op = 0 if self.witness_version == 0 else 0x50 + self.witness_version
        return bytes([op, len(self.program)]) + self.program

    def __str__(self) -> str:
        return encode_segwit_address(self.network, self.witness_version, self.program)


def _check_program(version: int, program: bytes, field: str) -> None:
    # BIP141 "Witness program" and BIP350: version 0..16, program 2..40 bytes, v0 20 or 32.
    if not 0 <= version <= 16:
        raise InvalidAddressError(f"witness version {version} is not 0-16", field=field)
    if not 2 <= len(program) <= 40:
        raise InvalidAddressError(
            f"witness program is {len(program)} bytes; it must be 2 to 40", field=field
        )
    if version == 0 and len(program) not in (20, 32):
        raise InvalidAddressError(
            f"version 0 program is {len(program)} bytes; it must be 20 or 32", field=field
        )


def encode_segwit_address(network: Network, witness_version: int, program: bytes) -> str:
    """Encode a witness program as a bech32 (v0) or bech32m (v1+) address.

    Raises:
        InvalidAddressError: a version or program length BIP141 does not allow.
    """
    _check_program(witness_version, program, "address")
    variant = Bech32Variant.BECH32 if witness_version == 0 else Bech32Variant.BECH32M
    data = [witness_version, *_convert_bits(program, 8, 5, pad=True, field="address")]
    return bech32_encode(network.hrp, data, variant)


def decode_segwit_address(
    address: str, network: Network, *, field: str = "address"
) -> SegwitAddress:
    """Decode and validate a segwit address for ``network``.

    Raises:
        InvalidAddressError: any bech32 failure, a human-readable part of another network,
            bech32 used for version 1+ or bech32m for version 0 (BIP350), or an invalid
            version or program length.
    """
    hrp, data, variant = bech32_decode(address, field=field)
    if hrp != network.hrp:
        raise InvalidAddressError(
            f"is for prefix {hrp!r}, not {network.name.lower()} ({network.hrp!r})", field=field
        )
    if not data:
        raise InvalidAddressError("has no witness version", field=field)
    version = data[0]
    if version > 16:
        raise InvalidAddressError(f"witness version {version} is not 0-16", field=field)
    expected = Bech32Variant.BECH32 if version == 0 else Bech32Variant.BECH32M
    if variant is not expected:
        raise InvalidAddressError(
            f"witness version {version} needs a {expected.name.lower()} checksum, "
            f"not {variant.name.lower()}",
            field=field,
        )
    program = bytes(_convert_bits(data[1:], 5, 8, pad=False, field=field))
    _check_program(version, program, field)
    return SegwitAddress(network, version, program)


def _base58check_decode(address: str, field: str) -> bytes:
    if len(address) > 64:
        raise InvalidAddressError("is too long for a Base58Check address", field=field)
    try:
        raw = base58.b58decode(address)
    except ValueError:
        raise InvalidAddressError("is not Base58", field=field) from None
    if len(raw) < 5 or hash256(raw[:-4])[:4] != raw[-4:]:
        raise InvalidAddressError("Base58Check checksum is wrong", field=field)
    return raw[:-4]


def script_pubkey_for_address(address: str, network: Network, *, field: str = "address") -> bytes:
    """The output script that pays ``address`` on ``network``: segwit or legacy.

    Raises:
        InvalidAddressError: malformed, wrong checksum or another network's address.
    """
    if not isinstance(address, str) or not address:
        raise InvalidAddressError("must be a non-empty string", field=field)
    if address.lower().startswith(network.hrp + "1"):
        return decode_segwit_address(address, network, field=field).script_pubkey
    payload = _base58check_decode(address, field)
    if len(payload) != 21:
        raise InvalidAddressError("Base58Check payload is not 21 bytes", field=field)
    version, digest = payload[0], payload[1:]
    if version == network.p2pkh_version:
        return b"\x76\xa9\x14" + digest + b"\x88\xac"
    if version == network.p2sh_version:
        return b"\xa9\x14" + digest + b"\x87"
    raise InvalidAddressError(
        f"version byte {version:#04x} is not a {network.name.lower()} address", field=field
    )


def address_from_script(script_pubkey: bytes, network: Network) -> str | None:
    """The standard address of an output script, or ``None`` for non-standard scripts."""
    spk = script_pubkey
    if len(spk) == 25 and spk[:3] == b"\x76\xa9\x14" and spk[23:] == b"\x88\xac":
        return str(base58.b58encode_check(bytes([network.p2pkh_version]) + spk[3:23]).decode())
    if len(spk) == 23 and spk[:2] == b"\xa9\x14" and spk[22] == 0x87:
        return str(base58.b58encode_check(bytes([network.p2sh_version]) + spk[2:22]).decode())
    if 4 <= len(spk) <= 42 and spk[1] == len(spk) - 2 and (spk[0] == 0 or 0x51 <= spk[0] <= 0x60):
        version = 0 if spk[0] == 0 else spk[0] - 0x50
        try:
            return encode_segwit_address(network, version, spk[2:])
        except InvalidAddressError:
            return None
    return None
