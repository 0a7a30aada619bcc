"""The ``aws-kms`` backend: AWS KMS symmetric keys through boto3.

Data keys come from ``GenerateDataKey`` (KeySpec ``AES_256``), are opened with
``Decrypt`` and re-wrapped with ``ReEncrypt``, always with the ``KeyId`` pinned and the
encryption context given (AWS KMS Developer Guide, "Encryption context"), so KMS
refuses a wrapped key presented for another slot. ``ReEncrypt`` runs inside KMS: a
rotation never brings the data key into this process.

Tested against moto 5.2.5's server mode on 127.0.0.1. moto does not enforce key state
(a disabled key still decrypts) or key policies, and ignores ``Recipient``; the kill
switch and attested release are therefore tested against the project's own stub and
releaser (see ``docs/custody.md``), while the error mapping below follows the AWS API
reference.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shardvault.custody.backends.base import (
    EncryptionContext,
    KeyEncryptionBackend,
    WrappedKey,
)
from shardvault.custody.errors import (
    BackendError,
    BackendUnavailableError,
    IntegrityError,
    KeyAccessDeniedError,
    KeyDisabledError,
    KeyNotFoundError,
)
from shardvault.custody.secret import SecretBytes

_INTEGRITY = {"InvalidCiphertextException", "IncorrectKeyException"}
_DISABLED = {"DisabledException", "KMSInvalidStateException"}
_NOT_FOUND = {"NotFoundException"}
_UNAVAILABLE = {
    "KMSInternalException",
    "DependencyTimeoutException",
    "ThrottlingException",
    "ServiceUnavailable",
    "InternalFailure",
    "RequestLimitExceeded",
}


class _RedactBodies(logging.Filter):
    """Blank the request and response bodies that botocore logs at DEBUG level.

    ``botocore.endpoint`` logs every request's parameters (an Encrypt's ``Plaintext``)
    and ``botocore.parsers`` every response body (a GenerateDataKey's ``Plaintext``):
    with DEBUG logging on, data keys would reach the logs in base64.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG and isinstance(record.msg, str):
            if record.msg.startswith("Response body"):
                record.msg, record.args = "Response body: <redacted by shardvault>", ()
            elif record.msg.startswith("Making request for"):
                record.msg, record.args = "Making request: <parameters redacted by shardvault>", ()
        return True


_REDACTOR = _RedactBodies()


def redact_botocore_bodies() -> None:
    """Install the body-redacting filter on botocore's loggers (idempotent)."""
    for name in ("botocore.endpoint", "botocore.parsers"):
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


class AwsKmsBackend(KeyEncryptionBackend):
    """Key-encryption keys in AWS KMS (or an API-compatible endpoint).

    ``client`` is a boto3 KMS client built from the configuration (endpoint, region,
    credentials, retry policy); this class holds no secrets of its own.
    """

    backend_type = "aws-kms"

    def __init__(self, client: Any, kek_id: str) -> None:
        super().__init__(kek_id)
        self._kms = client
        redact_botocore_bodies()

    @property
    def client(self) -> Any:
        """The boto3 KMS client (used by the attested releaser)."""
        return self._kms

    def _call(self, what: str, kek_id: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self._kms, what)(**kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "AccessDeniedException":
                raise KeyAccessDeniedError(
                    f"aws-kms: {what} denied for key {kek_id!r} or for the key the "
                    "ciphertext refers to"
                ) from None
            if code in _INTEGRITY:
                raise IntegrityError(
                    f"aws-kms: wrapped key does not open under {kek_id!r} in this context"
                ) from None
            if code in _DISABLED:
                raise KeyDisabledError(
                    f"aws-kms: key {kek_id!r} may not be used ({code})"
                ) from None
            if code in _NOT_FOUND:
                raise KeyNotFoundError(f"aws-kms: no key {kek_id!r}") from None
            if code in _UNAVAILABLE:
                raise BackendUnavailableError(f"aws-kms: {what} failed ({code})") from None
            raise BackendError(f"aws-kms: {what} refused ({code or 'unknown error'})") from None
        except BotoCoreError as exc:
            raise BackendUnavailableError(
                f"aws-kms: {what} could not reach KMS ({type(exc).__name__})"
            ) from None
        return response

    def create_key(self) -> str:
        response = self._call(
            "create_key",
            "(new)",
            KeySpec="SYMMETRIC_DEFAULT",
            KeyUsage="ENCRYPT_DECRYPT",
            Description="shardvault share key-encryption key",
        )
        return str(response["KeyMetadata"]["Arn"])

    def generate_data_key(self, context: EncryptionContext) -> tuple[SecretBytes, WrappedKey]:
        kek = self.kek_id
        response = self._call(
            "generate_data_key",
            kek,
            KeyId=kek,
            KeySpec="AES_256",
            EncryptionContext=dict(context),
        )
        data_key = SecretBytes(response["Plaintext"])
        return data_key, WrappedKey(self.backend_type, kek, bytes(response["CiphertextBlob"]))

    def wrap(
        self, data_key: SecretBytes, context: EncryptionContext, kek_id: str | None = None
    ) -> WrappedKey:
        kek = kek_id or self.kek_id
        response = self._call(
            "encrypt",
            kek,
            KeyId=kek,
            Plaintext=data_key.reveal(),
            EncryptionContext=dict(context),
        )
        return WrappedKey(self.backend_type, kek, bytes(response["CiphertextBlob"]))

    def unwrap(self, wrapped: WrappedKey, context: EncryptionContext) -> SecretBytes:
        self._require_own(wrapped)
        response = self._call(
            "decrypt",
            wrapped.kek_id,
            CiphertextBlob=wrapped.blob,
            KeyId=wrapped.kek_id,
            EncryptionContext=dict(context),
        )
        return SecretBytes(response["Plaintext"])

    def rewrap(
        self, wrapped: WrappedKey, context: EncryptionContext, new_kek_id: str
    ) -> WrappedKey:
        self._require_own(wrapped)
        response = self._call(
            "re_encrypt",
            wrapped.kek_id,
            CiphertextBlob=wrapped.blob,
            SourceKeyId=wrapped.kek_id,
            SourceEncryptionContext=dict(context),
            DestinationKeyId=new_kek_id,
            DestinationEncryptionContext=dict(context),
        )
        return WrappedKey(self.backend_type, new_kek_id, bytes(response["CiphertextBlob"]))

    def decrypt_for_recipient(
        self, wrapped: WrappedKey, context: EncryptionContext, attestation_document: bytes
    ) -> bytes:
        """KMS-native attested release: ``Decrypt`` with ``Recipient`` (Nitro).

        Returns ``CiphertextForRecipient`` (a CMS EnvelopedData only the enclave can
        open). If the endpoint answers with a ``Plaintext`` instead, as moto 5.2.5 does
        because it ignores ``Recipient``, the plaintext is discarded and
        :class:`BackendError` is raised: an endpoint that does not honour the
        attestation must never hand the key to the caller.

        Raises: BackendError, and the errors of :meth:`unwrap`.
        """
        self._require_own(wrapped)
        response = self._call(
            "decrypt",
            wrapped.kek_id,
            CiphertextBlob=wrapped.blob,
            KeyId=wrapped.kek_id,
            EncryptionContext=dict(context),
            Recipient={
                "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
                "AttestationDocument": attestation_document,
            },
        )
        for_recipient = response.get("CiphertextForRecipient")
        plaintext = response.pop("Plaintext", None)
        if plaintext is not None:
            SecretBytes(plaintext).wipe()
        if not for_recipient or plaintext is not None:
            raise BackendError(
                "aws-kms: the endpoint ignored Recipient and returned the plaintext key; "
                "refusing (use AttestedKeyReleaser with this endpoint)"
            )
        return bytes(for_recipient)
