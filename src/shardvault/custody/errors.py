"""Errors of the custody layer.

One root, :class:`CustodyError`, under :class:`shardvault.errors.ShardvaultError`, with
categories below it so that a caller can tell "this blob is not ours" from "the HSM is
down" from "that enclave may not have the key". Messages name the slot, backend, key id
or field at fault and never carry key material, a share, a passphrase or a data key.
"""

from shardvault.errors import ShardvaultError


class CustodyError(ShardvaultError):
    """Root of the custody layer's errors."""


class ConfigurationError(CustodyError):
    """The custody configuration is invalid or unsafe (an unknown backend type, a missing
    field, a development attestation root in a production configuration)."""


class BackendError(CustodyError):
    """A key-encryption backend (local keyring, PKCS#11 token, KMS) refused or failed."""


class BackendUnavailableError(BackendError):
    """The backend could not be reached or is locked: a network error, a closed PKCS#11
    session, a sealed local keyring. Nothing was changed; the operation may be retried."""


class KeyNotFoundError(BackendError):
    """The key id named does not exist in the backend."""


class KeyDisabledError(BackendError):
    """The backend key exists but may not be used: disabled, pending deletion, or denied
    by its key policy. This is the kill switch: shares wrapped under it stay sealed."""


class WrongPassphraseError(BackendError):
    """The passphrase does not unseal the local master-key file."""


class EnvelopeError(CustodyError):
    """An encrypted share blob that cannot be opened."""


class MalformedBlobError(EnvelopeError):
    """The blob does not decode: truncated, bad magic, bad length fields, trailing bytes."""


class UnknownFormatVersionError(EnvelopeError):
    """The blob declares a format version this build cannot read."""


class IntegrityError(CustodyError):
    """Authentication failed: a blob or wrapped key was altered, belongs to another slot
    (workspace, vault, key id, party, share version) or was wrapped under another key or
    context. Raised by envelopes and by backends alike."""


class KeyAccessDeniedError(KeyDisabledError, IntegrityError):
    """The backend denied the use of the key the wrapped data key refers to.

    AWS KMS answers ``AccessDeniedException`` both when a key policy denies the call
    (the kill switch) and when a ciphertext refers to a key the caller may not use or
    that does not exist (moto 5.2.5 also answers it for a ciphertext presented with
    another ``KeyId``). The two cannot be told apart from the response, so this error is
    both a :class:`KeyDisabledError` and an :class:`IntegrityError`.
    """


class StoreError(CustodyError):
    """The share store failed or refused a write."""


class ConflictError(StoreError):
    """Optimistic concurrency: the record changed since the caller read it (another writer
    won the compare-and-swap). Nothing was written."""


class RecordNotFoundError(StoreError):
    """No record exists at that address (or at that revision)."""


class StoreUnavailableError(StoreError):
    """The store (directory, S3 endpoint) could not be reached. Nothing was written."""


class AttestationError(CustodyError):
    """An attestation document that does not verify.

    ``reason`` is a short stable code (``malformed``, ``untrusted-root``, ``bad-chain``,
    ``expired``, ``bad-signature``, ``stale``, ``debug-mode``, ``pcr-mismatch``,
    ``nonce-mismatch``, ``no-public-key``) for machines; the message is for people.
    """

    reason = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class AttestationFormatError(AttestationError):
    """The document is not a well-formed Nitro attestation COSE_Sign1."""

    reason = "malformed"


class AttestationRootError(AttestationError):
    """The certificate bundle does not start at the pinned root."""

    reason = "untrusted-root"


class AttestationChainError(AttestationError):
    """A certificate in the chain is not signed by its issuer or is not a CA."""

    reason = "bad-chain"


class AttestationExpiredError(AttestationError):
    """A certificate of the chain is not valid at the document's time or at the time of
    verification."""

    reason = "expired"


class AttestationSignatureError(AttestationError):
    """The COSE_Sign1 signature does not verify under the leaf certificate's key."""

    reason = "bad-signature"


class AttestationStaleError(AttestationError):
    """The document's timestamp is too old, or in the future, for the freshness window."""

    reason = "stale"


class AttestationDebugError(AttestationError):
    """The enclave runs in debug mode (PCR0, 1 and 2 all zero) and the policy forbids it."""

    reason = "debug-mode"


class AttestationPcrError(AttestationError):
    """A PCR value differs from the key-release policy."""

    reason = "pcr-mismatch"


class AttestationNonceError(AttestationError):
    """The document's nonce is missing or differs from the nonce the verifier issued."""

    reason = "nonce-mismatch"


class AttestationPublicKeyError(AttestationError):
    """The document carries no usable ``public_key`` to encrypt a released key to."""

    reason = "no-public-key"


class BackupError(CustodyError):
    """A backup bundle that cannot be created, opened or restored."""
