"""The ``pkcs11`` backend: key-encryption keys inside any PKCS#11 token (AWS CloudHSM,
YubiHSM, Thales Luna, Utimaco; SoftHSM2 in the tests), through python-pkcs11.

Each key-encryption key is an AES-256 secret-key object created in the token with
``CKA_SENSITIVE=TRUE`` and ``CKA_EXTRACTABLE=FALSE``, found by its ``CKA_LABEL`` (the
key id). A data key is wrapped with ``CKM_AES_GCM`` *encryption* inside the token
(PKCS#11 v2.40 §2.12.3), with a 96-bit nonce and a 128-bit tag, the associated data
being the canonical encoding of the key id and the encryption context. GCM rather than
``CKM_AES_KEY_WRAP`` because key wrap (RFC 3394/5649) carries no associated data, and
SoftHSM 2.6 does not offer GCM as a wrapping mechanism.

A wrapped blob is ``nonce (12 bytes) || ciphertext || tag (16 bytes)``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11e
from pkcs11.mechanisms import GCMParams

from shardvault.custody.backends.base import (
    DATA_KEY_BYTES,
    EncryptionContext,
    KeyEncryptionBackend,
    WrappedKey,
    encode_context,
)
from shardvault.custody.errors import (
    BackendError,
    BackendUnavailableError,
    IntegrityError,
    KeyDisabledError,
    KeyNotFoundError,
)
from shardvault.custody.secret import SecretBytes

_WRAP_DOMAIN = b"shardvault/custody/pkcs11-wrap/v1"
_NONCE = 12
_TAG = 16

_UNAVAILABLE: tuple[type[Exception], ...] = (
    p11e.SessionClosed,
    p11e.SessionHandleInvalid,
    p11e.DeviceRemoved,
    p11e.DeviceError,
    p11e.DeviceMemory,
    p11e.TokenNotPresent,
    p11e.TokenNotRecognised,
    p11e.UserNotLoggedIn,
)
_INTEGRITY: tuple[type[Exception], ...] = (
    p11e.GeneralError,
    p11e.EncryptedDataInvalid,
    p11e.EncryptedDataLenRange,
    p11e.FunctionFailed,
)
_REFUSED: tuple[type[Exception], ...] = (
    p11e.KeyHandleInvalid,
    p11e.ObjectHandleInvalid,
)

T = TypeVar("T")

_LOGINS: dict[tuple[str, str], bytes] = {}
"""Per (library, token): a keyed digest of the PIN that logged this process in."""

_PIN_KEY = secrets.token_bytes(32)


def _pin_digest(pin: SecretBytes) -> bytes:
    return hmac.new(_PIN_KEY, pin.reveal(), hashlib.sha256).digest()


class Pkcs11Backend(KeyEncryptionBackend):
    """AES-256 key-encryption keys in a PKCS#11 token.

    Security: the user PIN is held in a :class:`SecretBytes` only until login; the keys
    never leave the token (non-extractable, sensitive). One session is used under a lock
    because PKCS#11 sessions must not be shared between threads concurrently.
    """

    backend_type = "pkcs11"

    def __init__(self, library: str, token_label: str, pin: SecretBytes, kek_id: str) -> None:
        super().__init__(kek_id)
        self._lock = threading.Lock()
        self._token_label = token_label
        try:
            lib = pkcs11.lib(library)
            token = lib.get_token(token_label=token_label)
            login_key = (library, token_label)
            try:
                self._session: Any = token.open(user_pin=pin.reveal().decode("utf-8"), rw=True)
                _LOGINS[login_key] = _pin_digest(pin)
            except p11e.UserAlreadyLoggedIn:
                # PKCS#11 login state is per application: another backend object in
                # this process already logged in, so a new session is a user session
                # without a login. The token cannot check this PIN again, so check it
                # against the one that logged in.
                known = _LOGINS.get(login_key)
                if known is None or not hmac.compare_digest(known, _pin_digest(pin)):
                    raise p11e.PinIncorrect() from None
                self._session = token.open(rw=True)
        except p11e.NoSuchToken:
            raise BackendUnavailableError(f"pkcs11: no token labelled {token_label!r}") from None
        except (p11e.PinIncorrect, p11e.PinInvalid, p11e.PinLocked):
            raise BackendError(f"pkcs11: login to token {token_label!r} refused") from None
        except (RuntimeError, OSError) as exc:
            raise BackendUnavailableError(
                f"pkcs11: cannot open token {token_label!r} ({type(exc).__name__})"
            ) from None
        self._keys: dict[str, Any] = {}

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        with self._lock:
            try:
                return fn()
            except _UNAVAILABLE as exc:
                raise BackendUnavailableError(
                    f"pkcs11: token {self._token_label!r} unavailable during {what} "
                    f"({type(exc).__name__})"
                ) from None
            except _REFUSED as exc:
                raise KeyDisabledError(
                    f"pkcs11: token refused the key during {what} ({type(exc).__name__})"
                ) from None

    def _key(self, kek_id: str) -> Any:
        key = self._keys.get(kek_id)
        if key is not None:
            return key

        def find() -> Any:
            return self._session.get_key(
                object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=kek_id
            )

        try:
            key = self._call(f"lookup of {kek_id!r}", find)
        except p11e.NoSuchKey:
            raise KeyNotFoundError(f"pkcs11: no AES key labelled {kek_id!r}") from None
        except p11e.MultipleObjectsReturned:
            raise BackendError(f"pkcs11: several keys labelled {kek_id!r}") from None
        self._keys[kek_id] = key
        return key

    def create_key(self) -> str:
        kek_id = f"kek-{secrets.token_hex(8)}"

        def generate() -> None:
            self._session.generate_key(
                KeyType.AES,
                256,
                label=kek_id,
                store=True,
                template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.ENCRYPT: True,
                    Attribute.DECRYPT: True,
                    Attribute.WRAP: False,
                    Attribute.UNWRAP: False,
                },
            )

        self._call("key generation", generate)
        return kek_id

    def wrap(
        self, data_key: SecretBytes, context: EncryptionContext, kek_id: str | None = None
    ) -> WrappedKey:
        kek = kek_id or self.kek_id
        key = self._key(kek)
        nonce = secrets.token_bytes(_NONCE)
        params = GCMParams(nonce, encode_context(_WRAP_DOMAIN, kek, context), _TAG * 8)
        ciphertext = self._call(
            "wrap",
            lambda: key.encrypt(
                data_key.reveal(), mechanism=Mechanism.AES_GCM, mechanism_param=params
            ),
        )
        return WrappedKey(self.backend_type, kek, nonce + bytes(ciphertext))

    def unwrap(self, wrapped: WrappedKey, context: EncryptionContext) -> SecretBytes:
        self._require_own(wrapped)
        if len(wrapped.blob) != _NONCE + DATA_KEY_BYTES + _TAG:
            raise IntegrityError(f"pkcs11: wrapped key under {wrapped.kek_id!r} has a bad length")
        key = self._key(wrapped.kek_id)
        nonce, body = wrapped.blob[:_NONCE], wrapped.blob[_NONCE:]
        params = GCMParams(nonce, encode_context(_WRAP_DOMAIN, wrapped.kek_id, context), _TAG * 8)
        try:
            plaintext = self._call(
                "unwrap",
                lambda: key.decrypt(body, mechanism=Mechanism.AES_GCM, mechanism_param=params),
            )
        except _INTEGRITY:
            # SoftHSM reports a failed GCM tag as CKR_GENERAL_ERROR; other tokens use
            # CKR_ENCRYPTED_DATA_INVALID. Both mean "does not authenticate" here.
            raise IntegrityError(
                f"pkcs11: wrapped key does not open under {wrapped.kek_id!r} in this context"
            ) from None
        return SecretBytes(bytes(plaintext))

    def close(self) -> None:
        with self._lock:
            self._keys.clear()
            try:
                self._session.close()
            except RuntimeError:
                pass
