"""Test-only signing and strategies shared by the Ethereum tests.

Signing in production happens in MPC, KMS or HSM backends; these tests stand in for them
with coincurve and keys that exist only here.
"""

from __future__ import annotations

import coincurve

from shardvault.chains.ethereum import Signature


def test_only_sign_digest(private_key: bytes, digest: bytes) -> tuple[int, int, int]:
    """Sign a 32-byte digest with a TEST-ONLY key; returns (r, s, recovery id), low s."""
    raw = coincurve.PrivateKey(private_key).sign_recoverable(digest, hasher=None)
    return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]


def test_only_signature(private_key: bytes, digest: bytes) -> Signature:
    """:func:`test_only_sign_digest` as a :class:`Signature`."""
    return Signature(*test_only_sign_digest(private_key, digest))


def test_only_public_key(private_key: bytes) -> bytes:
    """The compressed public key of a TEST-ONLY private key."""
    return bytes(coincurve.PrivateKey(private_key).public_key.format(compressed=True))


# Not tests, despite the prefix: tell pytest not to collect them.
test_only_sign_digest.__test__ = False  # type: ignore[attr-defined]
test_only_signature.__test__ = False  # type: ignore[attr-defined]
test_only_public_key.__test__ = False  # type: ignore[attr-defined]
