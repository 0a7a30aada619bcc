"""BIP32 public (non-hardened) derivation, extended public keys, and the additive scheme.

Source: BIP32 (bitcoin/bips ``bip-0032.mediawiki``), "Public parent key → public child key"
(``CKDpub``) and "Serialization format"; HMAC-SHA512 from :mod:`hmac`/:mod:`hashlib`,
Base58Check from the ``base58`` package, point arithmetic from libsecp256k1.

For a threshold key only the public key and chain code are public, so only non-hardened
derivation is possible: ``I = HMAC-SHA512(c_par, serP(K_par) || ser32(i))``, ``I_L`` is the
tweak, ``K_i = K_par + I_L·G`` and ``c_i = I_R``. Each party adds the same sum of tweaks to
its Shamir share: since the Lagrange coefficients of any quorum sum to one,
``Σ λ_j (x_j + t) = x + t``, so the tweaked shares are shares of the derived key (this is
the only consistent per-share adjustment: adding ``t·λ_j`` would depend on the quorum).

The same idea serves FROST keys (Ed25519 and BIP340), for which BIP32 itself is not
defined. shardvault's documented BIP32-style additive scheme for them is
``I = HMAC-SHA512(c_par, pk_par || ser32(i))`` with ``pk_par`` the group's own 32- or
33-byte public-key encoding, ``t = int(I_L) mod order`` (big-endian) and
``pk_i = pk_par + t·G``, ``c_i = I_R``; for BIP340, ``pk_par`` is the 33-byte compressed key
of the (possibly odd) internal point, and the signing view normalises to even y afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import base58

from shardvault.crypto.errors import EncodingError, MisuseError
from shardvault.crypto.group import SECP256K1, Group, Point, Scalar

HARDENED = 0x80000000
"""The first hardened child index (``2^31``); public derivation cannot reach it."""

XPUB_VERSION = bytes.fromhex("0488B21E")
"""Version bytes of a mainnet extended public key (``xpub``)."""

TPUB_VERSION = bytes.fromhex("043587CF")
"""Version bytes of a testnet extended public key (``tpub``)."""


class InvalidChildError(MisuseError):
    """BIP32's "proceed with the next value for i" case: ``I_L ≥ n`` or the child is the
    point at infinity (probability below 2^-127)."""


def parse_path(path: str) -> list[int]:
    """Parse ``m/44/60/0/0/7`` into child indices (non-hardened only).

    Raises:
        MisuseError: not starting with ``m``, a hardened step, or an index out of range.
    """
    parts = path.strip().split("/")
    if parts[0] != "m":
        raise MisuseError("a derivation path starts with 'm'")
    out: list[int] = []
    for part in parts[1:]:
        if part.endswith(("'", "h", "H")):
            raise MisuseError("hardened derivation is impossible from a threshold public key")
        if not part.isdigit():
            raise MisuseError(f"path step {part!r} is not a number")
        index = int(part)
        if index >= HARDENED:
            raise MisuseError(f"path step {index} is a hardened index")
        out.append(index)
    return out


def ckd_pub(parent: Point, chain_code: bytes, index: int) -> tuple[Scalar, Point, bytes]:
    """BIP32 ``CKDpub((K_par, c_par), i)`` for non-hardened ``i``: ``(I_L, K_i, c_i)``.

    Raises:
        MisuseError: a hardened index or a chain code that is not 32 bytes.
        InvalidChildError: ``I_L ≥ n`` or ``K_i`` is the identity (use the next index).
    """
    if not 0 <= index < HARDENED:
        raise MisuseError("CKDpub is defined for non-hardened indices only")
    if len(chain_code) != 32:
        raise MisuseError("chain code must be 32 bytes")
    digest = hmac.new(
        chain_code, parent.to_bytes() + index.to_bytes(4, "big"), hashlib.sha512
    ).digest()
    left = int.from_bytes(digest[:32], "big")
    if left >= SECP256K1.order:
        raise InvalidChildError(f"child {index} is invalid (I_L >= n)")
    tweak = SECP256K1.scalar(left)
    child = parent + SECP256K1.base_multiply(tweak)
    if child.is_identity():
        raise InvalidChildError(f"child {index} is the point at infinity")
    return tweak, child, digest[32:]


def derive_path(
    public_key: Point, chain_code: bytes, indices: list[int]
) -> tuple[Scalar, Point, bytes]:
    """Apply ``CKDpub`` along ``indices``: ``(total tweak, child key, child chain code)``."""
    total = SECP256K1.scalar(0)
    key, code = public_key, chain_code
    for index in indices:
        tweak, key, code = ckd_pub(key, code, index)
        total = total + tweak
    return total, key, code


def additive_tweak(
    group: Group, public_key: bytes, chain_code: bytes, index: int
) -> tuple[Scalar, bytes]:
    """The BIP32-style additive step for FROST keys (module docstring): ``(t, c_i)``.

    Raises:
        MisuseError: a hardened index or a chain code that is not 32 bytes.
    """
    if not 0 <= index < HARDENED:
        raise MisuseError("additive derivation is defined for non-hardened indices only")
    if len(chain_code) != 32:
        raise MisuseError("chain code must be 32 bytes")
    digest = hmac.new(chain_code, public_key + index.to_bytes(4, "big"), hashlib.sha512).digest()
    return group.scalar(int.from_bytes(digest[:32], "big")), digest[32:]


def fingerprint(public_key: Point) -> bytes:
    """The first four bytes of ``HASH160(serP(K))`` (BIP32 "Key identifiers")."""
    sha = hashlib.sha256(public_key.to_bytes()).digest()
    return hashlib.new("ripemd160", sha).digest()[:4]


@dataclass(frozen=True, slots=True)
class ExtendedPublicKey:
    """A BIP32 extended public key (BIP32 "Serialization format")."""

    public_key: Point
    chain_code: bytes
    depth: int = 0
    parent_fingerprint: bytes = bytes(4)
    child_number: int = 0
    version: bytes = XPUB_VERSION

    def child(self, index: int) -> ExtendedPublicKey:
        """``CKDpub`` to ``index`` as an extended key.

        Raises:
            MisuseError: a hardened index, or depth beyond 255.
            InvalidChildError: BIP32's invalid-child case.
        """
        if self.depth >= 255:
            raise MisuseError("BIP32 depth is at most 255")
        _, key, code = ckd_pub(self.public_key, self.chain_code, index)
        return ExtendedPublicKey(
            key, code, self.depth + 1, fingerprint(self.public_key), index, self.version
        )

    def derive(self, path: str) -> ExtendedPublicKey:
        """Follow a non-hardened path such as ``m/0/1``."""
        key = self
        for index in parse_path(path):
            key = key.child(index)
        return key

    def serialize(self) -> str:
        """Base58Check of ``version || depth || fingerprint || child || chain code || key``."""
        payload = (
            self.version
            + bytes([self.depth])
            + self.parent_fingerprint
            + self.child_number.to_bytes(4, "big")
            + self.chain_code
            + self.public_key.to_bytes()
        )
        return base58.b58encode_check(payload).decode()

    @classmethod
    def parse(cls, text: str) -> ExtendedPublicKey:
        """Decode and validate an ``xpub``/``tpub`` string.

        Raises:
            EncodingError: bad checksum, length, version, a zero-depth key with a parent,
                or an invalid point.
        """
        try:
            payload = base58.b58decode_check(text)
        except ValueError as exc:
            raise EncodingError("extended key has a bad Base58Check encoding") from exc
        if len(payload) != 78:
            raise EncodingError("extended key payload must be 78 bytes")
        version = payload[:4]
        if version not in (XPUB_VERSION, TPUB_VERSION):
            raise EncodingError("not an extended public key version")
        depth = payload[4]
        parent = payload[5:9]
        child = int.from_bytes(payload[9:13], "big")
        if depth == 0 and (parent != bytes(4) or child != 0):
            raise EncodingError("a depth-0 key must have no parent and child number 0")
        return cls(
            SECP256K1.decode_point(payload[45:78]), payload[13:45], depth, parent, child, version
        )
