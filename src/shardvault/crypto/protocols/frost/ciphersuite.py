"""FROST ciphersuites: the group, the hash functions H1..H5 and the challenge.

RFC 9591 §6 defines each ciphersuite by a group, a context string and five hash functions:

* ``H1`` (binding factors), ``H2`` (challenge), ``H3`` (nonces) map to scalars;
* ``H4`` (message) and ``H5`` (commitment list) return digests.

Implemented here:

* FROST(Ed25519, SHA-512), RFC 9591 §6.1, context ``FROST-ED25519-SHA512-v1``. ``H2`` has
  no context string, so that signatures verify as plain RFC 8032 Ed25519 signatures.
* FROST(secp256k1, SHA-256), RFC 9591 §6.5, context ``FROST-secp256k1-SHA256-v1``. The
  scalar hashes are ``hash_to_field`` of RFC 9380 §5.2 with ``expand_message_xmd``
  (RFC 9380 §5.3.1) and ``L = 48``.
* The BIP340 variant for Taproot (shardvault's ``schnorr-bip340`` scheme), context
  ``FROST-secp256k1-SHA256-TR-v1``: as FROST(secp256k1, SHA-256), but the challenge is
  BIP340's tagged hash ``int(hash_BIP0340/challenge(bytes(R) || bytes(P) || m)) mod n`` over
  x-only encodings, and signatures are BIP340's 64 bytes ``bytes(R) || bytes(z)``.

Each suite also defines ``HDKG`` (tag ``dkg``) for the proof of knowledge in the
distributed key generation; RFC 9591 leaves the DKG out, and the tag follows the practice
of the FROST reference implementation's ciphersuites.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import Final

from shardvault.crypto.group import ED25519, SECP256K1, Group, Point, Scalar


def expand_message_xmd_sha256(message: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 §5.3.1 ``expand_message_xmd`` with SHA-256.

    This is a construction over SHA-256 (from :mod:`hashlib`), not a hash of its own.
    """
    b_in_bytes, s_in_bytes = 32, 64
    ell = -(-length // b_in_bytes)
    if ell > 255 or length > 65535 or len(dst) > 255:
        raise ValueError("expand_message_xmd parameters out of range")
    dst_prime = dst + bytes([len(dst)])
    msg_prime = bytes(s_in_bytes) + message + length.to_bytes(2, "big") + b"\x00" + dst_prime
    b_0 = hashlib.sha256(msg_prime).digest()
    blocks = [hashlib.sha256(b_0 + b"\x01" + dst_prime).digest()]
    for i in range(2, ell + 1):
        mixed = bytes(x ^ y for x, y in zip(b_0, blocks[-1], strict=True))
        blocks.append(hashlib.sha256(mixed + bytes([i]) + dst_prime).digest())
    return b"".join(blocks)[:length]


def tagged_hash(tag: str, message: bytes) -> bytes:
    """BIP340 ``hash_tag(x) = SHA256(SHA256(tag) || SHA256(tag) || x)``."""
    tag_digest = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(tag_digest + tag_digest + message).digest()


class Ciphersuite(ABC):
    """One FROST ciphersuite (RFC 9591 §6)."""

    name: str
    """The scheme name shardvault uses on the command line and in share files."""

    context: bytes
    """The RFC 9591 context string, prefixed to every domain-separated hash."""

    group: Group
    """The prime-order group."""

    signature_length: int
    """The length of an aggregate signature in bytes."""

    @abstractmethod
    def _hash_to_scalar(self, tag: bytes, message: bytes) -> Scalar: ...

    @abstractmethod
    def _hash(self, data: bytes) -> bytes: ...

    def h1(self, message: bytes) -> Scalar:
        """RFC 9591 ``H1``: binding factors."""
        return self._hash_to_scalar(b"rho", message)

    def h3(self, message: bytes) -> Scalar:
        """RFC 9591 ``H3``: nonce generation."""
        return self._hash_to_scalar(b"nonce", message)

    def h4(self, message: bytes) -> bytes:
        """RFC 9591 ``H4``: the message digest in the binding-factor input."""
        return self._hash(self.context + b"msg" + message)

    def h5(self, message: bytes) -> bytes:
        """RFC 9591 ``H5``: the digest of the encoded commitment list."""
        return self._hash(self.context + b"com" + message)

    def hdkg(self, message: bytes) -> Scalar:
        """``HDKG``: the challenge of the DKG's proof of knowledge."""
        return self._hash_to_scalar(b"dkg", message)

    @abstractmethod
    def challenge(self, group_commitment: Point, group_public_key: Point, message: bytes) -> Scalar:
        """RFC 9591 §4.6 ``compute_challenge`` (or BIP340's challenge for the x-only suite)."""

    def encode_public_key(self, key: Point) -> bytes:
        """The public key in the encoding the chain uses."""
        return key.to_bytes()

    @abstractmethod
    def encode_signature(self, group_commitment: Point, z: Scalar) -> bytes:
        """The aggregate signature's byte form."""

    @property
    def x_only(self) -> bool:
        """Whether keys and commitments are normalised to even y (BIP340)."""
        return False

    def __repr__(self) -> str:
        return f"Ciphersuite({self.name})"


class Ed25519Sha512(Ciphersuite):
    """FROST(Ed25519, SHA-512), RFC 9591 §6.1."""

    name = "eddsa-ed25519"
    context = b"FROST-ED25519-SHA512-v1"
    group = ED25519
    signature_length = 64

    def _hash(self, data: bytes) -> bytes:
        return hashlib.sha512(data).digest()

    def _hash_to_scalar(self, tag: bytes, message: bytes) -> Scalar:
        return self.group.scalar_from_wide_bytes(self._hash(self.context + tag + message))

    def challenge(self, group_commitment: Point, group_public_key: Point, message: bytes) -> Scalar:
        # RFC 9591 §6.1: H2 is SHA-512 without the context string (RFC 8032 compatibility).
        data = group_commitment.to_bytes() + group_public_key.to_bytes() + message
        return self.group.scalar_from_wide_bytes(self._hash(data))

    def encode_signature(self, group_commitment: Point, z: Scalar) -> bytes:
        return group_commitment.to_bytes() + z.to_bytes()


class Secp256k1Sha256(Ciphersuite):
    """FROST(secp256k1, SHA-256), RFC 9591 §6.5."""

    name = "frost-secp256k1-sha256"
    context = b"FROST-secp256k1-SHA256-v1"
    group = SECP256K1
    signature_length = 65

    def _hash(self, data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    def _hash_to_scalar(self, tag: bytes, message: bytes) -> Scalar:
        # RFC 9380 §5.2 hash_to_field with count = 1 and L = 48 for a 256-bit order.
        uniform = expand_message_xmd_sha256(message, self.context + tag, 48)
        return self.group.scalar(int.from_bytes(uniform, "big"))

    def challenge(self, group_commitment: Point, group_public_key: Point, message: bytes) -> Scalar:
        data = group_commitment.to_bytes() + group_public_key.to_bytes() + message
        return self._hash_to_scalar(b"chal", data)

    def encode_signature(self, group_commitment: Point, z: Scalar) -> bytes:
        return group_commitment.to_bytes() + z.to_bytes()


class Secp256k1Bip340(Secp256k1Sha256):
    """FROST(secp256k1, SHA-256) producing BIP340 Schnorr signatures (Taproot key path).

    Keys and group commitments are normalised to even y before use (BIP340 §Design), so the
    group key's x coordinate is the 32-byte x-only key and the aggregate verifies under
    BIP340's ``Verify`` with it.
    """

    name = "schnorr-bip340"
    context = b"FROST-secp256k1-SHA256-TR-v1"
    signature_length = 64

    @property
    def x_only(self) -> bool:
        return True

    def challenge(self, group_commitment: Point, group_public_key: Point, message: bytes) -> Scalar:
        # BIP340 §Default Signing, step "e = int(hash_BIP0340/challenge(bytes(R) || bytes(P) ||
        # m)) mod n", with R and P already normalised to even y.
        data = SECP256K1.x_only(group_commitment) + SECP256K1.x_only(group_public_key) + message
        return self.group.scalar(int.from_bytes(tagged_hash("BIP0340/challenge", data), "big"))

    def encode_public_key(self, key: Point) -> bytes:
        return SECP256K1.x_only(key)

    def encode_signature(self, group_commitment: Point, z: Scalar) -> bytes:
        return SECP256K1.x_only(group_commitment) + z.to_bytes()


ED25519_SHA512: Final = Ed25519Sha512()
"""FROST(Ed25519, SHA-512): Solana and other Ed25519 chains."""

SECP256K1_SHA256: Final = Secp256k1Sha256()
"""FROST(secp256k1, SHA-256) as RFC 9591 specifies it (65-byte signatures)."""

SECP256K1_BIP340: Final = Secp256k1Bip340()
"""FROST with BIP340 signatures: Bitcoin Taproot."""

SUITES: Final[dict[str, Ciphersuite]] = {
    suite.name: suite for suite in (ED25519_SHA512, SECP256K1_SHA256, SECP256K1_BIP340)
}
"""Every ciphersuite by its scheme name."""
