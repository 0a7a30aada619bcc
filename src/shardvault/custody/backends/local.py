"""The ``local`` backend: master keys in files sealed with a passphrase (development and
the embedded default).

Each key-encryption key is a random 32-byte AES-256 key stored in
``<directory>/<kek_id>.key`` (JSON), encrypted with AES-256-GCM under a key derived from
the passphrase with Argon2id (RFC 9106; the default cost is the RFC's second recommended
option, t=3, m=64 MiB, p=4). The associated data binds the file format and the key id,
so a key file renamed to another id does not unseal. Data keys are wrapped with
AES-256-GCM under the master key, the associated data being the canonical encoding of
the key id and the encryption context (:func:`encode_context`).

A wrapped blob is ``nonce (12 bytes) || ciphertext || tag (16 bytes)``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shardvault.custody.backends.base import (
    DATA_KEY_BYTES,
    EncryptionContext,
    KeyEncryptionBackend,
    WrappedKey,
    encode_context,
)
from shardvault.custody.errors import (
    BackendUnavailableError,
    ConfigurationError,
    IntegrityError,
    KeyNotFoundError,
    WrongPassphraseError,
)
from shardvault.custody.secret import SecretBytes

_FILE_FORMAT = 1
_SEAL_DOMAIN = b"shardvault/custody/local-master-key/v1"
_WRAP_DOMAIN = b"shardvault/custody/local-wrap/v1"
_KEK_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_NONCE = 12
_TAG = 16


@dataclass(frozen=True, slots=True)
class Argon2Cost:
    """Argon2id cost parameters (RFC 9106 §4); memory is in KiB."""

    time_cost: int = 3
    memory_cost: int = 64 * 1024
    parallelism: int = 4


DEVELOPMENT_COST = Argon2Cost(time_cost=1, memory_cost=8 * 1024, parallelism=1)
"""A cheap cost for tests and throw-away development keyrings only."""


def _derive(passphrase: SecretBytes, salt: bytes, cost: Argon2Cost) -> SecretBytes:
    return SecretBytes(
        hash_secret_raw(
            passphrase.reveal(),
            salt,
            time_cost=cost.time_cost,
            memory_cost=cost.memory_cost,
            parallelism=cost.parallelism,
            hash_len=32,
            type=Type.ID,
        )
    )


def _seal_aad(kek_id: str) -> bytes:
    return _SEAL_DOMAIN + b"\x00" + kek_id.encode("ascii")


class LocalBackend(KeyEncryptionBackend):
    """Key-encryption keys in passphrase-sealed files of one directory.

    Security: the passphrase and every unsealed master key are held in
    :class:`SecretBytes` and never printed; :meth:`lock` wipes them, after which every
    call raises :class:`BackendUnavailableError` until a new backend is opened.
    """

    backend_type = "local"

    def __init__(
        self,
        directory: Path,
        passphrase: SecretBytes,
        kek_id: str,
        cost: Argon2Cost | None = None,
    ) -> None:
        super().__init__(kek_id)
        self._directory = Path(directory)
        self._passphrase = SecretBytes(passphrase.view())
        self._cost = cost or Argon2Cost()
        self._keys: dict[str, SecretBytes] = {}
        self._locked = False
        # Unseal the current key now so that a wrong passphrase fails at start-up.
        self._master(kek_id)

    @classmethod
    def initialize(
        cls, directory: Path, passphrase: SecretBytes, cost: Argon2Cost | None = None
    ) -> LocalBackend:
        """Create a keyring directory holding one new key and open it.

        Raises: ConfigurationError when the directory already holds keys.
        """
        directory = Path(directory)
        # Only this user may list the key files (each is created 0600).
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if any(directory.glob("*.key")):
            raise ConfigurationError(f"local keyring {directory} already holds keys")
        kek_id = _write_key_file(directory, passphrase, cost or Argon2Cost())
        return cls(directory, passphrase, kek_id, cost)

    def create_key(self) -> str:
        self._check_open()
        return _write_key_file(self._directory, self._passphrase, self._cost)

    def lock(self) -> None:
        """Wipe the passphrase and every cached master key; the backend becomes unavailable."""
        for key in self._keys.values():
            key.wipe()
        self._keys.clear()
        self._passphrase.wipe()
        self._locked = True

    close = lock

    def _check_open(self) -> None:
        if self._locked:
            raise BackendUnavailableError("local keyring is locked")

    def _master(self, kek_id: str) -> SecretBytes:
        self._check_open()
        cached = self._keys.get(kek_id)
        if cached is not None:
            return cached
        if not _KEK_ID.fullmatch(kek_id):
            raise KeyNotFoundError(f"local keyring: invalid key id {kek_id!r}")
        path = self._directory / f"{kek_id}.key"
        try:
            document = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise KeyNotFoundError(f"local keyring: no key {kek_id!r}") from None
        except OSError as exc:
            raise BackendUnavailableError(
                f"local keyring: cannot read key {kek_id!r}: {exc.strerror}"
            ) from None
        except ValueError:
            raise ConfigurationError(f"local keyring: key file {kek_id!r} is not JSON") from None
        try:
            if document["format"] != _FILE_FORMAT or document["kdf"]["name"] != "argon2id":
                raise ConfigurationError(f"local keyring: key {kek_id!r} has an unknown format")
            kdf = document["kdf"]
            cost = Argon2Cost(
                int(kdf["time_cost"]), int(kdf["memory_cost"]), int(kdf["parallelism"])
            )
            salt = base64.b64decode(kdf["salt"], validate=True)
            nonce = base64.b64decode(document["nonce"], validate=True)
            sealed = base64.b64decode(document["sealed"], validate=True)
        except (KeyError, TypeError, ValueError):
            raise ConfigurationError(f"local keyring: key file {kek_id!r} is malformed") from None
        with _derive(self._passphrase, salt, cost) as kdf_key:
            try:
                master = AESGCM(kdf_key.reveal()).decrypt(nonce, sealed, _seal_aad(kek_id))
            except (InvalidTag, ValueError):
                raise WrongPassphraseError(
                    f"local keyring: the passphrase does not unseal key {kek_id!r}"
                ) from None
        key = SecretBytes(master)
        self._keys[kek_id] = key
        return key

    def wrap(
        self, data_key: SecretBytes, context: EncryptionContext, kek_id: str | None = None
    ) -> WrappedKey:
        kek = kek_id or self.kek_id
        master = self._master(kek)
        nonce = secrets.token_bytes(_NONCE)
        aad = encode_context(_WRAP_DOMAIN, kek, context)
        blob = nonce + AESGCM(master.reveal()).encrypt(nonce, data_key.reveal(), aad)
        return WrappedKey(self.backend_type, kek, blob)

    def unwrap(self, wrapped: WrappedKey, context: EncryptionContext) -> SecretBytes:
        self._require_own(wrapped)
        master = self._master(wrapped.kek_id)
        if len(wrapped.blob) != _NONCE + DATA_KEY_BYTES + _TAG:
            raise IntegrityError(f"local: wrapped key under {wrapped.kek_id!r} has a bad length")
        nonce, body = wrapped.blob[:_NONCE], wrapped.blob[_NONCE:]
        aad = encode_context(_WRAP_DOMAIN, wrapped.kek_id, context)
        try:
            return SecretBytes(AESGCM(master.reveal()).decrypt(nonce, body, aad))
        except InvalidTag:
            raise IntegrityError(
                f"local: wrapped key does not open under {wrapped.kek_id!r} in this context"
            ) from None


def _write_key_file(directory: Path, passphrase: SecretBytes, cost: Argon2Cost) -> str:
    kek_id = f"kek-{secrets.token_hex(8)}"
    salt = secrets.token_bytes(16)
    nonce = secrets.token_bytes(_NONCE)
    with SecretBytes(secrets.token_bytes(32)) as master, _derive(passphrase, salt, cost) as kdf:
        sealed = AESGCM(kdf.reveal()).encrypt(nonce, master.reveal(), _seal_aad(kek_id))
    document = {
        "format": _FILE_FORMAT,
        "key_id": kek_id,
        "kdf": {
            "name": "argon2id",
            "salt": base64.b64encode(salt).decode(),
            "time_cost": cost.time_cost,
            "memory_cost": cost.memory_cost,
            "parallelism": cost.parallelism,
        },
        "nonce": base64.b64encode(nonce).decode(),
        "sealed": base64.b64encode(sealed).decode(),
    }
    path = directory / f"{kek_id}.key"
    tmp = directory / f".{kek_id}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.link(tmp, path)
    os.unlink(tmp)
    _fsync_directory(directory)
    return kek_id


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
