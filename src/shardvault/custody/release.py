"""Attested key release: a share's data key goes only to an enclave that proved itself.

This is the KMS ``Recipient`` pattern (AWS KMS Developer Guide, "How AWS Nitro Enclaves
uses AWS KMS"): the enclave sends its attestation document, whose ``public_key`` is a
key pair it generated inside; the releaser verifies the document (chain to the pinned
root, signature, freshness, the nonce it issued, the PCR policy), unwraps the data key
with its backend, and returns the data key encrypted to that public key with
RSAES-OAEP-SHA-256, KMS's ``RSAES_OAEP_SHA_256`` key-encryption algorithm. Only the
enclave can read it; the releaser's host sees it in memory for the length of the call.

Real AWS KMS can do this itself (``Recipient`` on Decrypt, with
``kms:RecipientAttestation:PCR*`` conditions in the key policy), returning a CMS
envelope. moto ignores ``Recipient`` and returns the plaintext, and PKCS#11 tokens and
the local keyring have no such feature, so shardvault puts this releaser in front of
every backend: the same policy, the same tests, whatever the backend.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from shardvault.custody.attestation.nitro import AttestationDocument, NitroVerifier, PcrPolicy
from shardvault.custody.backends.base import KeyEncryptionBackend
from shardvault.custody.envelope import ShareAddress, inspect
from shardvault.custody.errors import (
    AttestationNonceError,
    AttestationPublicKeyError,
    IntegrityError,
)

log = logging.getLogger("shardvault.custody.release")

NONCE_BYTES = 32
"""Nonces are 256-bit random values."""


@dataclass(frozen=True, slots=True)
class Release:
    """A data key encrypted to a verified enclave, and what was verified."""

    ciphertext_for_recipient: bytes
    module_id: str
    pcrs: dict[int, bytes]


def _recipient_key(doc: AttestationDocument) -> rsa.RSAPublicKey:
    if doc.public_key is None:
        raise AttestationPublicKeyError("attestation document carries no public_key")
    try:
        key = serialization.load_der_public_key(doc.public_key)
    except (ValueError, TypeError):
        raise AttestationPublicKeyError("public_key is not a DER SubjectPublicKeyInfo") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise AttestationPublicKeyError("public_key must be an RSA key of at least 2048 bits")
    return key


class AttestedKeyReleaser:
    """Releases data keys of share blobs to verified enclaves only.

    Nonces are single use and expire after ``nonce_ttl`` seconds; a document answering
    an unknown, used or expired nonce is refused before the backend is called.
    """

    def __init__(
        self,
        backend: KeyEncryptionBackend,
        verifier: NitroVerifier,
        policy: PcrPolicy,
        nonce_ttl: float = 300.0,
    ) -> None:
        self._backend = backend
        self._verifier = verifier
        self._policy = policy
        self._ttl = nonce_ttl
        self._nonces: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def issue_nonce(self) -> bytes:
        """A fresh single-use nonce for the enclave to put in its next document."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        with self._lock:
            now = time.monotonic()
            self._nonces = {n: t for n, t in self._nonces.items() if t > now}
            self._nonces[nonce] = now + self._ttl
        return nonce

    def _consume(self, nonce: bytes | None) -> None:
        with self._lock:
            now = time.monotonic()
            for known, deadline in list(self._nonces.items()):
                if nonce is not None and hmac.compare_digest(known, nonce):
                    del self._nonces[known]
                    if deadline > now:
                        return
        raise AttestationNonceError("document nonce was not issued, was used, or expired")

    def release(
        self,
        blob: bytes,
        expected: ShareAddress,
        attestation_document: bytes,
        *,
        at: datetime | None = None,
    ) -> Release:
        """Verify ``attestation_document`` and release the data key of ``blob`` to it.

        Raises: AttestationError (any failed check; nothing is unwrapped), the envelope
        errors of a bad blob, and the backend's errors.
        """
        doc = self._verifier.verify(
            attestation_document, at=at or datetime.now(UTC), policy=self._policy
        )
        self._consume(doc.nonce)
        recipient = _recipient_key(doc)
        header = inspect(blob)
        if header.slot.address != expected:
            raise IntegrityError(f"share blob belongs to {header.slot.address}, not {expected}")
        with self._backend.unwrap(header.wrapped_key, header.context()) as data_key:
            ciphertext = recipient.encrypt(
                data_key.reveal(),
                padding.OAEP(
                    mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
                ),
            )
        log.info(
            "data key released",
            extra={"address": str(expected), "module_id": doc.module_id},
        )
        return Release(ciphertext, doc.module_id, dict(doc.pcrs))
