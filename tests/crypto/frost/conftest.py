"""Shared helpers for the FROST tests."""

import hashlib
import secrets

import coincurve
import nacl.signing
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shardvault.crypto.protocols.frost import Ciphersuite
from shardvault.crypto.protocols.frost.ciphersuite import ED25519_SHA512, SECP256K1_BIP340


def verify_externally(
    suite: Ciphersuite, public_key: bytes, message: bytes, signature: bytes
) -> None:
    """Verify with libraries written by others; raises on an invalid signature."""
    if suite is ED25519_SHA512:
        nacl.signing.VerifyKey(public_key).verify(message, signature)  # libsodium
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)  # OpenSSL
    elif suite is SECP256K1_BIP340:
        assert coincurve.PublicKeyXOnly(public_key).verify(signature, message)  # libsecp256k1
    else:
        raise AssertionError(f"no external verifier for {suite.name}")


def deterministic_rng(seed: bytes):  # type: ignore[no-untyped-def]
    """A seeded stream for replayable tests (never for production)."""
    counter = 0

    def rng(n: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < n:
            out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
            counter += 1
        return out[:n]

    return rng


RNG = secrets.token_bytes
