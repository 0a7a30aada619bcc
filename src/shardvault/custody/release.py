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
from shardvault.custody.backends.base import (
    EncryptionContext,
    KeyEncryptionBackend,
    WrappedKey,
)
from shardvault.custody.envelope import ShareAddress, inspect
from shardvault.custody.errors import (
    AttestationNonceError,
    AttestationPublicKeyError,
    IntegrityError,
)
from shardvault.custody.secret import SecretBytes

log = logging.getLogger("shardvault.custody.release")

NONCE_BYTES = 32
"""Nonces are 256-bit random values."""

MAX_OUTSTANDING_NONCES = 4096
"""At most this many unexpired nonces are remembered; the oldest is forgotten first, so
an unauthenticated caller asking for nonces in a loop costs bounded memory."""

SHARE_DATA_KEY_PURPOSE = "share-data-key"
"""The ``shardvault:purpose`` every share envelope puts in its encryption context; the
releaser serves no other purpose."""


@dataclass(frozen=True, slots=True)
class GeneratedRelease:
    """A fresh data key for a new share blob: wrapped by the backend (goes into the
    blob header) and encrypted to the verified enclave (only it can read it)."""

    wrapped_key: WrappedKey
    ciphertext_for_recipient: bytes
    module_id: str


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
            while len(self._nonces) >= MAX_OUTSTANDING_NONCES:
                del self._nonces[next(iter(self._nonces))]
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

    def _verified(self, attestation_document: bytes, at: datetime | None) -> AttestationDocument:
        """Verify the document, consume its nonce, and check its recipient key."""
        doc = self._verifier.verify(
            attestation_document, at=at or datetime.now(UTC), policy=self._policy
        )
        self._consume(doc.nonce)
        _recipient_key(doc)
        return doc

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
        doc = self._verified(attestation_document, at)
        header = inspect(blob)
        if header.slot.address != expected:
            raise IntegrityError(f"share blob belongs to {header.slot.address}, not {expected}")
        return self._release_to(doc, header.wrapped_key, header.context(), str(expected))

    def release_wrapped(
        self,
        wrapped: WrappedKey,
        context: EncryptionContext,
        attestation_document: bytes,
        *,
        at: datetime | None = None,
    ) -> Release:
        """Like :meth:`release`, from a blob's wrapped key and encryption context alone
        (what a remote enclave sends: the share ciphertext never leaves it).

        The backend authenticates ``context`` with the wrapped key, so a context that is
        not the one the key was wrapped with fails with IntegrityError.
        Raises: AttestationError (before the backend is called), IntegrityError, the
        backend's errors.
        """
        doc = self._verified(attestation_document, at)
        _check_purpose(context)
        return self._release_to(doc, wrapped, context, _describe(context))

    def generate_for_recipient(
        self,
        context: EncryptionContext,
        attestation_document: bytes,
        *,
        at: datetime | None = None,
    ) -> GeneratedRelease:
        """A fresh data key for a new blob, bound to ``context``: wrapped by the backend
        and encrypted to the verified enclave (KMS ``GenerateDataKey`` with
        ``Recipient``). The plaintext key exists here only inside this call.

        Raises: AttestationError (before the backend is called), the backend's errors.
        """
        doc = self._verified(attestation_document, at)
        _check_purpose(context)
        recipient = _recipient_key(doc)
        data_key, wrapped = self._backend.generate_data_key(context)
        with data_key:
            ciphertext = recipient.encrypt(data_key.reveal(), _OAEP)
        log.info(
            "data key generated for an attested enclave",
            extra={"address": _describe(context), "module_id": doc.module_id},
        )
        return GeneratedRelease(wrapped, ciphertext, doc.module_id)

    def _release_to(
        self,
        doc: AttestationDocument,
        wrapped: WrappedKey,
        context: EncryptionContext,
        what: str,
    ) -> Release:
        recipient = _recipient_key(doc)
        with self._backend.unwrap(wrapped, context) as data_key:
            ciphertext = recipient.encrypt(data_key.reveal(), _OAEP)
        log.info("data key released", extra={"address": what, "module_id": doc.module_id})
        return Release(ciphertext, doc.module_id, dict(doc.pcrs))


_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
"""RSAES-OAEP with SHA-256 and MGF1-SHA-256: KMS's ``RSAES_OAEP_SHA_256``."""


def _check_purpose(context: EncryptionContext) -> None:
    if context.get("shardvault:purpose") != SHARE_DATA_KEY_PURPOSE:
        raise IntegrityError("encryption context is not a share data key's")


def _describe(context: EncryptionContext) -> str:
    fields = ("workspace", "vault", "key_id", "party_id")
    return "/".join(context.get(f, "?") for f in fields)


def open_for_recipient(private_key: rsa.RSAPrivateKey, ciphertext: bytes) -> SecretBytes:
    """Decrypt a data key released to ``private_key`` (the enclave side).

    Raises: IntegrityError when the ciphertext was not made for this key.
    """
    try:
        return SecretBytes(private_key.decrypt(ciphertext, _OAEP))
    except ValueError:
        raise IntegrityError("released data key is not encrypted to this enclave") from None
