"""Verification of AWS Nitro Enclaves attestation documents.

Implements the checks of AWS's "Verifying the root of trust" (Nitro Enclaves User
Guide) on the document format of ``aws-nitro-enclaves-nsm-api`` (``AttestationDoc``):

1. Syntax: an untagged (or tag 18) CBOR ``COSE_Sign1`` array (RFC 9052 §4.2)
   ``[protected bstr, unprotected map, payload bstr, signature bstr]`` whose protected
   header is ``{1: -35}`` (ES384, RFC 9053 §2.1) and whose payload is the document map
   (``module_id``, ``digest`` = "SHA384", ``timestamp`` in ms, ``pcrs``,
   ``certificate``, ``cabundle``, optional ``public_key``, ``user_data``, ``nonce``),
   with the field types and sizes of the AWS specification.
2. Chain: ``cabundle[0]`` is byte-identical to the pinned root; each later ``cabundle``
   certificate is a CA signed by the one before it; the leaf ``certificate`` is signed
   by the last; every certificate is valid at the document's timestamp and at the time
   of verification.
3. Signature: ECDSA P-384/SHA-384 of the leaf key over the ``Sig_structure``
   ``["Signature1", protected, b"", payload]`` (RFC 9052 §4.4), signature ``r || s``.
4. Freshness: the timestamp is at most ``max_age`` old and not in the future beyond
   ``clock_skew``; the nonce equals the one the verifier issued, when one was.
5. Key-release policy: debug-mode enclaves (PCR0, PCR1, PCR2 all zero) are refused
   unless the policy allows them; each PCR the policy names must match exactly.

Verification raises a subclass of :class:`AttestationError` (its ``reason`` is a short
code) and returns the parsed document only when every check passed.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

from shardvault.custody.errors import (
    AttestationChainError,
    AttestationDebugError,
    AttestationExpiredError,
    AttestationFormatError,
    AttestationNonceError,
    AttestationPcrError,
    AttestationRootError,
    AttestationSignatureError,
    AttestationStaleError,
    ConfigurationError,
)

AWS_NITRO_ROOT_G1_PEM = b"""-----BEGIN CERTIFICATE-----
MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD
VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4
MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL
DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG
BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb
48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE
h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF
R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC
MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW
rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N
IwLz3/Y=
-----END CERTIFICATE-----
"""
"""The AWS Nitro Enclaves root G1 certificate, as AWS publishes it (SHA-256 fingerprint
of the DER: 641A0321A3E244EFE456463195D606317ED7CDCC3C1756E09893F3C68F79BB5B)."""

AWS_NITRO_ROOT_G1_SHA256 = "641A0321A3E244EFE456463195D606317ED7CDCC3C1756E09893F3C68F79BB5B"

DEVELOPMENT_ROOT_MARKER = "shardvault development enclave root"
"""The common-name prefix of every development root; see ``devenclave``."""

DEBUG_PCRS = (0, 1, 2)
"""A Nitro enclave started with ``--debug-mode`` reports these PCRs as all zeros."""

_ES384 = -35
_COSE_SIGN1_TAG = 18
_MAX_DOCUMENT = 16 * 1024
_MAX_TIMESTAMP_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z: datetime's limit


@dataclass(frozen=True, slots=True)
class PcrPolicy:
    """The key-release policy on measurements.

    ``expected`` maps PCR index to the exact value required (PCR0 enclave image, PCR1
    kernel and boot ramfs, PCR2 application, PCR3 parent IAM role, PCR8 signing
    certificate); ``allow_debug`` admits debug-mode enclaves (all-zero PCR0-2).
    """

    expected: Mapping[int, bytes] = field(default_factory=dict)
    allow_debug: bool = False

    def __post_init__(self) -> None:
        for index, value in self.expected.items():
            if not 0 <= index < 32:
                raise ValueError(f"PCR index {index} out of range 0..31")
            if len(value) not in (32, 48, 64):
                raise ValueError(f"PCR{index} value must be 32, 48 or 64 bytes")


@dataclass(frozen=True, slots=True)
class AttestationDocument:
    """The payload of an attestation document, decoded (not by itself verified)."""

    module_id: str
    digest: str
    timestamp_ms: int
    pcrs: Mapping[int, bytes]
    certificate: bytes
    cabundle: tuple[bytes, ...]
    public_key: bytes | None
    user_data: bytes | None
    nonce: bytes | None

    @property
    def timestamp(self) -> datetime:
        """The document's timestamp as an aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)

    @property
    def debug_mode(self) -> bool:
        """Whether PCR0, PCR1 and PCR2 are all zero (a debug-mode enclave)."""
        return all(i in self.pcrs and not any(self.pcrs[i]) for i in DEBUG_PCRS)

    def summary(self) -> dict[str, object]:
        """JSON-ready fields (hex for bytes)."""
        return {
            "module_id": self.module_id,
            "digest": self.digest,
            "timestamp": self.timestamp_ms,
            "pcrs": {str(i): v.hex() for i, v in sorted(self.pcrs.items())},
            "public_key": self.public_key.hex() if self.public_key is not None else None,
            "user_data": self.user_data.hex() if self.user_data is not None else None,
            "nonce": self.nonce.hex() if self.nonce is not None else None,
            "debug_mode": self.debug_mode,
        }


@dataclass(frozen=True, slots=True)
class _CoseSign1:
    protected: bytes
    payload: bytes
    signature: bytes


def load_document_bytes(data: bytes) -> bytes:
    """Raw COSE bytes from a file's content: raw CBOR, or base64 (whitespace ignored).

    Raises: AttestationFormatError.
    """
    stripped = data.strip()
    if stripped[:1] in (b"\x84", b"\xd2"):
        return bytes(data)
    try:
        return base64.b64decode(b"".join(stripped.split()), validate=True)
    except (binascii.Error, ValueError):
        raise AttestationFormatError("attestation document is neither CBOR nor base64") from None


def _cbor(data: bytes, what: str) -> Any:
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except Exception:
        raise AttestationFormatError(f"{what} is not valid CBOR") from None
    if stream.tell() != len(data):
        raise AttestationFormatError(f"{what} has trailing bytes")
    return value


def _parse_cose(data: bytes) -> _CoseSign1:
    if len(data) > _MAX_DOCUMENT:
        raise AttestationFormatError("attestation document is too large")
    outer = _cbor(data, "attestation document")
    if isinstance(outer, cbor2.CBORTag):
        if outer.tag != _COSE_SIGN1_TAG:
            raise AttestationFormatError(f"unexpected CBOR tag {outer.tag}")
        outer = outer.value
    if not isinstance(outer, list) or len(outer) != 4:
        raise AttestationFormatError("attestation document is not a COSE_Sign1 array")
    protected, unprotected, payload, signature = outer
    if not all(isinstance(x, bytes) for x in (protected, payload, signature)):
        raise AttestationFormatError("COSE_Sign1 fields have the wrong types")
    if not isinstance(unprotected, dict):
        raise AttestationFormatError("COSE_Sign1 unprotected header is not a map")
    header = _cbor(protected, "protected header")
    if not isinstance(header, dict) or header.get(1) != _ES384:
        raise AttestationFormatError("protected header does not name ES384 (alg -35)")
    if len(signature) != 96:
        raise AttestationFormatError("ES384 signature must be 96 bytes (r || s)")
    return _CoseSign1(protected, payload, signature)


def _bytes_field(
    doc: Mapping[Any, Any], name: str, low: int, high: int, optional: bool = False
) -> bytes | None:
    value = doc.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, bytes) or not low <= len(value) <= high:
        raise AttestationFormatError(f"field {name} must be {low}..{high} bytes")
    return value


def _parse_payload(payload: bytes) -> AttestationDocument:
    doc = _cbor(payload, "attestation payload")
    if not isinstance(doc, dict) or not all(isinstance(k, str) for k in doc):
        raise AttestationFormatError("attestation payload is not a map of text keys")
    module_id = doc.get("module_id")
    if not isinstance(module_id, str) or not module_id:
        raise AttestationFormatError("field module_id must be non-empty text")
    if doc.get("digest") != "SHA384":
        raise AttestationFormatError("field digest must be SHA384")
    timestamp = doc.get("timestamp")
    if (
        not isinstance(timestamp, int)
        or isinstance(timestamp, bool)
        or not 0 < timestamp < _MAX_TIMESTAMP_MS
    ):
        raise AttestationFormatError("field timestamp must be milliseconds in years 1970-9999")
    pcrs = doc.get("pcrs")
    if not isinstance(pcrs, dict) or not 1 <= len(pcrs) <= 32:
        raise AttestationFormatError("field pcrs must be a map of 1..32 entries")
    for index, value in pcrs.items():
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 32:
            raise AttestationFormatError("field pcrs has an index outside 0..31")
        if not isinstance(value, bytes) or len(value) not in (32, 48, 64):
            raise AttestationFormatError(f"field pcrs[{index}] must be 32, 48 or 64 bytes")
    certificate = _bytes_field(doc, "certificate", 1, 1024)
    cabundle = doc.get("cabundle")
    if (
        not isinstance(cabundle, list)
        or not cabundle
        or not all(isinstance(c, bytes) and 1 <= len(c) <= 1024 for c in cabundle)
    ):
        raise AttestationFormatError("field cabundle must be a non-empty list of certificates")
    assert certificate is not None
    return AttestationDocument(
        module_id=module_id,
        digest="SHA384",
        timestamp_ms=timestamp,
        pcrs=dict(pcrs),
        certificate=certificate,
        cabundle=tuple(cabundle),
        # The NSM emits an empty byte string when the enclave gave no key (the 2021
        # nitrite sample does); that means "no public key", as an absent field does.
        public_key=_bytes_field(doc, "public_key", 0, 1024, optional=True) or None,
        user_data=_bytes_field(doc, "user_data", 0, 512, optional=True),
        nonce=_bytes_field(doc, "nonce", 0, 512, optional=True),
    )


def decode_document(data: bytes) -> AttestationDocument:
    """Decode a document's payload WITHOUT verifying anything (for display and errors).

    Raises: AttestationFormatError.
    """
    return _parse_payload(_parse_cose(data).payload)


def is_development_root(certificate: x509.Certificate) -> bool:
    """Whether a certificate is a shardvault development enclave root."""
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return any(str(n.value).startswith(DEVELOPMENT_ROOT_MARKER) for n in names)


def _load_der(der: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion):
        raise AttestationFormatError(f"{what} is not a DER X.509 certificate") from None


def _check_validity(certs: list[tuple[str, x509.Certificate]], when: datetime, what: str) -> None:
    for name, cert in certs:
        if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
            raise AttestationExpiredError(
                f"{name} is not valid at {what} {when.isoformat()} (valid "
                f"{cert.not_valid_before_utc.isoformat()} to "
                f"{cert.not_valid_after_utc.isoformat()})"
            )


class NitroVerifier:
    """Verifies attestation documents against one pinned root.

    ``root_pem`` defaults to the AWS Nitro Enclaves root G1. A shardvault development
    root (see ``devenclave``) is refused with :class:`ConfigurationError` unless
    ``allow_development_root`` is set: production configurations must say so explicitly.
    """

    DEFAULT_ROOT = AWS_NITRO_ROOT_G1_PEM

    def __init__(
        self,
        root_pem: bytes = AWS_NITRO_ROOT_G1_PEM,
        *,
        allow_development_root: bool = False,
        max_age: timedelta = timedelta(minutes=5),
        clock_skew: timedelta = timedelta(seconds=60),
    ) -> None:
        try:
            root = x509.load_pem_x509_certificate(root_pem)
        except ValueError:
            raise ConfigurationError("attestation root is not a PEM certificate") from None
        if is_development_root(root) and not allow_development_root:
            raise ConfigurationError(
                "attestation root is a development root; set allow_development_root to use it"
            )
        self._root = root
        self._root_der = root.public_bytes(Encoding.DER)
        self._max_age = max_age
        self._skew = clock_skew

    def verify(
        self,
        data: bytes,
        *,
        at: datetime | None = None,
        policy: PcrPolicy | None = None,
        expected_nonce: bytes | None = None,
    ) -> AttestationDocument:
        """Verify a raw COSE_Sign1 attestation document; return its payload.

        ``at`` is the moment of verification (default: now). Raises a subclass of
        AttestationError naming the check that failed.
        """
        when = at or datetime.now(UTC)
        policy = policy or PcrPolicy()
        cose = _parse_cose(data)
        doc = _parse_payload(cose.payload)

        # Step 2: the chain from the pinned root to the leaf.
        if not hmac.compare_digest(doc.cabundle[0], self._root_der):
            raise AttestationRootError("cabundle does not start at the pinned root certificate")
        chain = [
            (f"cabundle[{i}]", _load_der(c, f"cabundle[{i}]")) for i, c in enumerate(doc.cabundle)
        ]
        leaf = _load_der(doc.certificate, "certificate")
        chain.append(("certificate", leaf))
        for depth, ((_, issuer), (name, cert)) in enumerate(pairwise(chain)):
            self._check_issued(issuer, cert, name)
            if name != "certificate":
                self._check_ca(cert, name, remaining=len(chain) - depth - 3)
        _check_validity(chain, doc.timestamp, "the document's timestamp")

        # Step 3: the COSE signature under the leaf key.
        key = leaf.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
            raise AttestationChainError("leaf certificate key is not ECDSA P-384")
        to_be_signed = cbor2.dumps(["Signature1", cose.protected, b"", cose.payload])
        r = int.from_bytes(cose.signature[:48], "big")
        s = int.from_bytes(cose.signature[48:], "big")
        try:
            key.verify(encode_dss_signature(r, s), to_be_signed, ec.ECDSA(hashes.SHA384()))
        except InvalidSignature:
            raise AttestationSignatureError("COSE_Sign1 signature does not verify") from None

        # Step 4: still valid now, fresh, and answering our nonce.
        _check_validity(chain, when, "verification time")
        if doc.timestamp - when > self._skew:
            raise AttestationStaleError("document timestamp is in the future")
        if when - doc.timestamp > self._max_age:
            raise AttestationStaleError(
                f"document is {(when - doc.timestamp).total_seconds():.0f} s old, more than "
                f"{self._max_age.total_seconds():.0f} s"
            )
        if expected_nonce is not None and (
            doc.nonce is None or not hmac.compare_digest(doc.nonce, expected_nonce)
        ):
            raise AttestationNonceError("document nonce differs from the nonce issued")

        # Step 5: the key-release policy.
        if doc.debug_mode and not policy.allow_debug:
            raise AttestationDebugError("enclave runs in debug mode (PCR0-2 are zero)")
        for index, value in sorted(policy.expected.items()):
            got = doc.pcrs.get(index)
            if got is None or not hmac.compare_digest(got, value):
                raise AttestationPcrError(f"PCR{index} differs from the policy")
        return doc

    @staticmethod
    def _check_issued(issuer: x509.Certificate, cert: x509.Certificate, name: str) -> None:
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            raise AttestationChainError(
                f"{name} is not signed by the certificate above it"
            ) from None

    @staticmethod
    def _check_ca(cert: x509.Certificate, name: str, remaining: int) -> None:
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            raise AttestationChainError(f"{name} has no basicConstraints") from None
        except (ValueError, x509.DuplicateExtension):
            raise AttestationFormatError(f"{name} has malformed extensions") from None
        if not constraints.ca:
            raise AttestationChainError(f"{name} is not a CA certificate")
        if constraints.path_length is not None and remaining > constraints.path_length:
            raise AttestationChainError(f"{name} path length constraint exceeded")
