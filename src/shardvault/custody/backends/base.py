"""The key-encryption interface every backend implements (envelope encryption's outer layer).

A backend holds key-encryption keys (KEKs) that never leave it and does three things
with 32-byte data keys: generate one and return it both in clear and wrapped, unwrap a
wrapped one, and re-wrap one under another KEK. Every call takes an *encryption
context*: a string-to-string mapping that the backend authenticates together with the
wrapped key (AWS KMS ``EncryptionContext``, AES-GCM associated data in a PKCS#11 token
or the local keyring), so a wrapped key only unwraps for the slot it was made for.

Errors are typed (:mod:`shardvault.custody.errors`): a wrong key, a wrong context or an
altered wrapped key is :class:`IntegrityError`; an unreachable or locked backend is
:class:`BackendUnavailableError`; a disabled key is :class:`KeyDisabledError`.
"""

from __future__ import annotations

import secrets
import struct
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from shardvault.custody.errors import ConfigurationError, IntegrityError
from shardvault.custody.secret import SecretBytes

EncryptionContext = Mapping[str, str]
"""Non-secret strings bound to a wrapped key; KMS calls it the encryption context."""

DATA_KEY_BYTES = 32
"""Data keys are AES-256 keys."""


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key encrypted under a backend's key-encryption key.

    ``backend`` is the backend type (``local``, ``pkcs11``, ``aws-kms``...), ``kek_id``
    the key-encryption key inside it, ``blob`` the backend's own ciphertext format.
    """

    backend: str
    kek_id: str
    blob: bytes


def encode_context(domain: bytes, kek_id: str, context: EncryptionContext) -> bytes:
    """Canonical bytes of an encryption context for use as AEAD associated data.

    The encoding is injective: a domain tag, then the KEK id and each (key, value) pair
    sorted by key, every string UTF-8 and prefixed with its 4-byte big-endian length.
    """
    parts = [struct.pack(">I", len(domain)), domain]
    for text in (kek_id, *(s for item in sorted(context.items()) for s in item)):
        raw = text.encode("utf-8")
        parts += [struct.pack(">I", len(raw)), raw]
    return b"".join(parts)


class KeyEncryptionBackend(ABC):
    """A place where key-encryption keys live and wrap data keys.

    Implementations must never return or log a KEK and must map their own failures to
    the custody error types named in the module docstring.
    """

    backend_type: ClassVar[str]

    def __init__(self, kek_id: str) -> None:
        if not kek_id:
            raise ConfigurationError(f"{self.backend_type}: key id must not be empty")
        self._current_kek_id = kek_id

    @property
    def kek_id(self) -> str:
        """The key-encryption key used for new wraps."""
        return self._current_kek_id

    def use_key(self, kek_id: str) -> None:
        """Make ``kek_id`` the key for new wraps (after a rotation)."""
        if not kek_id:
            raise ConfigurationError(f"{self.backend_type}: key id must not be empty")
        self._current_kek_id = kek_id

    @abstractmethod
    def create_key(self) -> str:
        """Create a new key-encryption key in the backend and return its id.

        Raises: BackendUnavailableError, BackendError.
        """

    @abstractmethod
    def wrap(
        self, data_key: SecretBytes, context: EncryptionContext, kek_id: str | None = None
    ) -> WrappedKey:
        """Encrypt ``data_key`` under ``kek_id`` (default: the current key), bound to
        ``context``.

        Raises: BackendUnavailableError, KeyNotFoundError, KeyDisabledError.
        """

    @abstractmethod
    def unwrap(self, wrapped: WrappedKey, context: EncryptionContext) -> SecretBytes:
        """Decrypt a wrapped data key; ``context`` must equal the one it was wrapped with.

        Raises: IntegrityError (altered, wrong key, wrong context), BackendUnavailableError,
        KeyNotFoundError, KeyDisabledError.
        """

    def generate_data_key(self, context: EncryptionContext) -> tuple[SecretBytes, WrappedKey]:
        """A fresh random data key, in clear and wrapped under the current key.

        The default draws the key from the operating system's CSPRNG (``secrets``);
        backends that can generate in the device (KMS GenerateDataKey) override it.
        """
        data_key = SecretBytes(secrets.token_bytes(DATA_KEY_BYTES))
        try:
            return data_key, self.wrap(data_key, context)
        except BaseException:
            data_key.wipe()
            raise

    def rewrap(
        self, wrapped: WrappedKey, context: EncryptionContext, new_kek_id: str
    ) -> WrappedKey:
        """Re-encrypt a wrapped data key under ``new_kek_id`` of this backend.

        The data key is in clear only in this process's memory, inside this call, and is
        wiped before returning. Backends with a server-side re-encryption (KMS
        ReEncrypt) override this so the data key never leaves the device.
        """
        with self.unwrap(wrapped, context) as data_key:
            return self.wrap(data_key, context, kek_id=new_kek_id)

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release sessions and wipe cached key material."""

    def _require_own(self, wrapped: WrappedKey) -> None:
        if wrapped.backend != self.backend_type:
            raise IntegrityError(
                f"data key wrapped by backend {wrapped.backend!r}, not {self.backend_type!r}"
            )
