"""Configuration and approver keys: Ed25519 and ECDSA P-256 signature verification.

Administrators sign policy bundles and approvers sign approvals with keys they hold
outside shardvault, often in a browser. Two algorithms are accepted:

* ``ed25519``: RFC 8032 §5.1 Ed25519 over the message, verified with libsodium through
  PyNaCl. Public keys are the 32-byte RFC 8032 encoding.
* ``p256``: ECDSA over NIST P-256 with SHA-256 of the message (FIPS 186-5 §6.4), verified
  with pyca/cryptography. Public keys are SEC1 §2.3.3 points (33-byte compressed or
  65-byte uncompressed, as WebCrypto's ``exportKey("raw")`` gives). Signatures are
  accepted in DER (SEC1 §C.5) and in the 64-byte ``r || s`` form that WebCrypto's
  ``sign({name: "ECDSA", hash: "SHA-256"})`` returns (W3C Web Cryptography API §23.4).

This module only verifies: signing happens on the administrators' own devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import nacl.exceptions
import nacl.signing
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from shardvault.policy.errors import ConfigurationKeyError

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
"""The order n of the P-256 base point (FIPS 186-5 / SP 800-186 §3.2.1.3)."""


class KeyAlgorithm(StrEnum):
    """Signature algorithms accepted for configuration and approver keys."""

    ED25519 = "ed25519"
    P256 = "p256"


class SignatureCheckFailed(Exception):
    """Internal signal that a well-formed signature does not verify.

    Callers turn it into the typed error of their context (a bundle or an approval);
    it never leaves the policy package.
    """


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A validated public key of one of the accepted algorithms."""

    algorithm: KeyAlgorithm
    encoded: bytes

    @classmethod
    def parse(cls, algorithm: str, encoded_hex: str, *, path: str) -> PublicKey:
        """Decode a public key given as its algorithm name and hex encoding.

        Raises:
            ConfigurationKeyError: unknown algorithm, bad hex, or a point that does not
                decode (not on the curve, wrong length).
        """
        try:
            alg = KeyAlgorithm(algorithm)
        except ValueError:
            raise ConfigurationKeyError(
                f"unknown key algorithm {algorithm!r} (expected ed25519 or p256)", path=path
            ) from None
        try:
            raw = bytes.fromhex(encoded_hex)
        except ValueError:
            raise ConfigurationKeyError("public key is not hex", path=path) from None
        key = cls(alg, raw)
        key._check_decodes(path)
        return key

    def _check_decodes(self, path: str) -> None:
        if self.algorithm is KeyAlgorithm.ED25519:
            if len(self.encoded) != 32:
                raise ConfigurationKeyError("an Ed25519 public key is 32 bytes", path=path)
            try:
                nacl.signing.VerifyKey(self.encoded)
            except (nacl.exceptions.CryptoError, ValueError, TypeError):
                raise ConfigurationKeyError("not an Ed25519 public key", path=path) from None
            return
        if len(self.encoded) not in (33, 65):
            raise ConfigurationKeyError(
                "a P-256 public key is a 33- or 65-byte SEC1 point", path=path
            )
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), self.encoded)
        except ValueError:
            raise ConfigurationKeyError("not a point on P-256", path=path) from None

    def hex(self) -> str:
        """The hex encoding, as documents carry it."""
        return self.encoded.hex()

    def verify(self, message: bytes, signature: bytes) -> None:
        """Verify ``signature`` over ``message``.

        Raises:
            ConfigurationKeyError: the signature is not in an accepted encoding.
            SignatureCheckFailed: the signature is well formed but does not verify
                (internal; callers map it to their own typed error).
        """
        if self.algorithm is KeyAlgorithm.ED25519:
            if len(signature) != 64:
                raise ConfigurationKeyError("an Ed25519 signature is 64 bytes")
            try:
                nacl.signing.VerifyKey(self.encoded).verify(message, signature)
            except nacl.exceptions.BadSignatureError:
                raise SignatureCheckFailed from None
            return
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), self.encoded)
        for der in _p256_der_candidates(signature):
            try:
                public.verify(der, message, ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                continue
            return
        raise SignatureCheckFailed


def _p256_der_candidates(signature: bytes) -> list[bytes]:
    """Return the DER readings of a P-256 signature given as raw ``r || s`` or DER.

    The raw form is exactly 64 bytes, two big-endian 32-byte integers. A 64-byte input
    could in principle also be a well-formed DER sequence, so both readings are tried
    and the signature is valid if either verifies.

    Raises:
        ConfigurationKeyError: the bytes are neither form.
    """
    candidates: list[bytes] = []
    if len(signature) == 64:
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        if 0 < r < _P256_ORDER and 0 < s < _P256_ORDER:
            candidates.append(encode_dss_signature(r, s))
    if _looks_like_der(signature):
        candidates.append(signature)
    if not candidates:
        raise ConfigurationKeyError("P-256 signature is neither DER nor 64-byte r||s")
    return candidates


def _looks_like_der(signature: bytes) -> bool:
    # A DER ECDSA-Sig-Value is SEQUENCE { INTEGER r, INTEGER s } with a short-form
    # length equal to the rest of the encoding (P-256 signatures are under 128 bytes).
    return len(signature) >= 8 and signature[0] == 0x30 and signature[1] == len(signature) - 2
