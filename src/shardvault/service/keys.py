"""Parsing the public keys clients register for request signing.

A key arrives as a PEM SubjectPublicKeyInfo (RFC 5280 §4.1.2.7): Ed25519 (RFC 8410) for
JOSE ``EdDSA``, or a P-256 point (RFC 5480) for ``ES256``. It is stored re-encoded, so two
spellings of one key compare equal.
"""

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from shardvault.service.errors import ValidationError
from shardvault.store.models import KeyAlgorithm

MAX_PEM_LENGTH = 4096
"""Longer input is refused before parsing."""

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def parse_public_key(pem: str, algorithm: KeyAlgorithm) -> PublicKey:
    """Parse ``pem`` and check it is a key for ``algorithm``.

    Raises:
        ValidationError: not a PEM public key, or a key of another type or curve.
    """
    if len(pem) > MAX_PEM_LENGTH:
        raise ValidationError("public_key_pem", f"longer than {MAX_PEM_LENGTH} characters")
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, TypeError):
        raise ValidationError("public_key_pem", "not a PEM-encoded public key") from None
    if algorithm is KeyAlgorithm.ED25519:
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise ValidationError("public_key_pem", "EdDSA needs an Ed25519 public key")
        return key
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValidationError("public_key_pem", "ES256 needs a P-256 (secp256r1) public key")
    return key


def normalized_pem(pem: str, algorithm: KeyAlgorithm) -> str:
    """``pem`` parsed, checked and re-encoded in the one form stored.

    Raises:
        ValidationError: as :func:`parse_public_key`.
    """
    key = parse_public_key(pem, algorithm)
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
