"""Configuration-key verification: Ed25519 through PyNaCl, P-256 through pyca."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shardvault.policy import ConfigurationKeyError, PublicKey
from shardvault.policy.keys import SignatureCheckFailed

from ._support import ed25519_key, p256_key, p256_public_hex, p256_sign_raw

# RFC 8032 §7.1, TEST 1: the empty message under the first test key.
RFC8032_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC8032_SIGNATURE = (
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
    "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_ed25519_rfc8032_vector() -> None:
    """RFC 8032 §7.1 TEST 1 (public key, empty message, signature) verifies, and a
    flipped bit does not."""
    key = PublicKey.parse("ed25519", RFC8032_PUBLIC, path="k")
    key.verify(b"", bytes.fromhex(RFC8032_SIGNATURE))
    bad = bytearray(bytes.fromhex(RFC8032_SIGNATURE))
    bad[0] ^= 1
    with pytest.raises(SignatureCheckFailed):
        key.verify(b"", bytes(bad))


def test_ed25519_pynacl_signature() -> None:
    signer = ed25519_key("x")
    key = PublicKey.parse("ed25519", signer.verify_key.encode().hex(), path="k")
    key.verify(b"hello", signer.sign(b"hello").signature)
    with pytest.raises(SignatureCheckFailed):
        key.verify(b"hellO", signer.sign(b"hello").signature)
    with pytest.raises(ConfigurationKeyError, match="64 bytes"):
        key.verify(b"hello", b"\x00" * 63)


def test_p256_accepts_der_and_webcrypto_raw() -> None:
    private = p256_key("admin")
    key = PublicKey.parse("p256", p256_public_hex(private), path="k")
    der = private.sign(b"bundle", ec.ECDSA(hashes.SHA256()))
    key.verify(b"bundle", der)
    key.verify(b"bundle", p256_sign_raw(private, b"bundle"))
    with pytest.raises(SignatureCheckFailed):
        key.verify(b"other", p256_sign_raw(private, b"bundle"))
    with pytest.raises(SignatureCheckFailed):
        key.verify(b"other", der)


def test_p256_compressed_public_key() -> None:
    private = p256_key("admin")
    compressed = private.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    key = PublicKey.parse("p256", compressed.hex(), path="k")
    key.verify(b"m", p256_sign_raw(private, b"m"))


@pytest.mark.parametrize(
    "signature",
    [b"", b"\x01" * 10, b"\x00" * 64, b"\xff" * 64, b"\x30" + b"\x00" * 70],
)
def test_p256_malformed_signatures(signature: bytes) -> None:
    key = PublicKey.parse("p256", p256_public_hex(p256_key("admin")), path="k")
    with pytest.raises(ConfigurationKeyError):
        key.verify(b"m", signature)


@pytest.mark.parametrize(
    ("algorithm", "public", "message"),
    [
        ("rsa", "00", "unknown key algorithm"),
        ("ed25519", "xyz", "not hex"),
        ("ed25519", "00" * 31, "32 bytes"),
        ("p256", "04" + "00" * 64, "not a point"),
        ("p256", "00" * 20, "SEC1"),
    ],
)
def test_bad_public_keys(algorithm: str, public: str, message: str) -> None:
    with pytest.raises(ConfigurationKeyError, match=message) as info:
        PublicKey.parse(algorithm, public, path="admins[0]")
    assert info.value.path == "admins[0]"
