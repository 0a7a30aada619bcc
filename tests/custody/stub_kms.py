"""A KMS stand-in of the project's own, used where moto does not behave like AWS.

moto 5.2.5 does not enforce key state (a disabled key still decrypts), key policies or
``Recipient`` (see ``docs/environment.md``). This stub models exactly those
parts of the KMS contract: keys that can be disabled, scheduled for deletion or denied
by policy (the kill switch), and an endpoint that can go away. It runs the same contract
suite as the real backends, so the custody code's reaction to each state is tested.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shardvault.custody.backends.base import (
    EncryptionContext,
    KeyEncryptionBackend,
    WrappedKey,
    encode_context,
)
from shardvault.custody.errors import (
    BackendUnavailableError,
    IntegrityError,
    KeyDisabledError,
    KeyNotFoundError,
)
from shardvault.custody.secret import SecretBytes

_DOMAIN = b"tests/stub-kms/v1"


@dataclass
class _StubKey:
    material: bytes
    state: str = "Enabled"  # Enabled | Disabled | PendingDeletion
    policy_allows: bool = True


@dataclass
class StubKmsService:
    """The service side: keys and their states, and whether the endpoint answers."""

    keys: dict[str, _StubKey] = field(default_factory=dict)
    available: bool = True
    calls: int = 0

    def create(self) -> str:
        key_id = f"stub-{secrets.token_hex(6)}"
        self.keys[key_id] = _StubKey(secrets.token_bytes(32))
        return key_id

    def usable(self, key_id: str) -> bytes:
        self.calls += 1
        if not self.available:
            raise BackendUnavailableError("stub-kms: endpoint unreachable")
        key = self.keys.get(key_id)
        if key is None:
            raise KeyNotFoundError(f"stub-kms: no key {key_id!r}")
        if key.state != "Enabled":
            raise KeyDisabledError(f"stub-kms: key {key_id!r} is {key.state}")
        if not key.policy_allows:
            raise KeyDisabledError(f"stub-kms: key policy of {key_id!r} denies the call")
        return key.material


class StubKmsBackend(KeyEncryptionBackend):
    """A backend talking to :class:`StubKmsService` the way ``aws-kms`` talks to KMS."""

    backend_type = "stub-kms"

    def __init__(self, service: StubKmsService, kek_id: str) -> None:
        super().__init__(kek_id)
        self.service = service

    def create_key(self) -> str:
        if not self.service.available:
            raise BackendUnavailableError("stub-kms: endpoint unreachable")
        return self.service.create()

    def wrap(
        self, data_key: SecretBytes, context: EncryptionContext, kek_id: str | None = None
    ) -> WrappedKey:
        kek = kek_id or self.kek_id
        material = self.service.usable(kek)
        nonce = secrets.token_bytes(12)
        body = AESGCM(material).encrypt(
            nonce, data_key.reveal(), encode_context(_DOMAIN, kek, context)
        )
        return WrappedKey(self.backend_type, kek, nonce + body)

    def unwrap(self, wrapped: WrappedKey, context: EncryptionContext) -> SecretBytes:
        self._require_own(wrapped)
        material = self.service.usable(wrapped.kek_id)
        try:
            return SecretBytes(
                AESGCM(material).decrypt(
                    wrapped.blob[:12],
                    wrapped.blob[12:],
                    encode_context(_DOMAIN, wrapped.kek_id, context),
                )
            )
        except (InvalidTag, ValueError):
            raise IntegrityError("stub-kms: wrapped key does not open in this context") from None
