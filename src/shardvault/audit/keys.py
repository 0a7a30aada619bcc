"""The server's audit signing key (Ed25519 through PyNaCl) and the keyring verifiers use.

The key file holds the 32-byte Ed25519 seed in hex on one line and is created with mode
0600; loading refuses a file that group or others can read. A key is named by its key id:
the first 16 hex digits of SHA-256 over the raw public key.
"""

import hashlib
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from shardvault.audit.errors import AuditKeyError, AuditSignatureInvalid


def key_id_of(verify_key: VerifyKey) -> str:
    """The id of a public key: 16 hex digits of SHA-256 over its 32 raw bytes."""
    return hashlib.sha256(bytes(verify_key)).hexdigest()[:16]


class AuditSigner:
    """Signs audit events, checkpoints and chain heads.

    Security: holds the audit private key. Anyone with it can rewrite the audit history
    undetectably, so it lives in a 0600 file (later in the KMS) and never in the
    database; it is kept out of ``repr`` and never logged.
    """

    __slots__ = ("_signing_key", "key_id", "verify_key")

    def __init__(self, signing_key: SigningKey) -> None:
        self._signing_key = signing_key
        self.verify_key = signing_key.verify_key
        self.key_id = key_id_of(self.verify_key)

    @classmethod
    def generate(cls) -> "AuditSigner":
        """A fresh key from the operating system's CSPRNG (libsodium)."""
        return cls(SigningKey.generate())

    def sign(self, message: bytes) -> str:
        """The hex Ed25519 signature of ``message``."""
        return self._signing_key.sign(message).signature.hex()

    def keyring(self) -> "AuditKeyring":
        """A keyring holding just this key's public half."""
        return AuditKeyring([self.verify_key])

    def save(self, path: Path) -> None:
        """Write the seed to a new file with mode 0600; refuse to overwrite.

        Raises:
            AuditKeyError: the file exists or cannot be created.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise AuditKeyError(f"cannot create audit key file {path}: {exc.strerror}") from exc
        with os.fdopen(fd, "w") as handle:
            handle.write(bytes(self._signing_key).hex() + "\n")

    @classmethod
    def load(cls, path: Path) -> "AuditSigner":
        """Read a key file written by :meth:`save`.

        Raises:
            AuditKeyError: missing, readable by others, or not a 32-byte hex seed.
        """
        try:
            mode = path.stat().st_mode
            text = path.read_text().strip()
        except OSError as exc:
            raise AuditKeyError(f"cannot read audit key file {path}: {exc.strerror}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AuditKeyError(f"audit key file {path} is accessible by group or others")
        try:
            seed = bytes.fromhex(text)
        except ValueError:
            raise AuditKeyError(f"audit key file {path} does not hold hex") from None
        if len(seed) != 32:
            raise AuditKeyError(f"audit key file {path} does not hold a 32-byte seed")
        return cls(SigningKey(seed))

    @classmethod
    def load_or_create(cls, path: Path) -> "AuditSigner":
        """Load the key at ``path``, creating it first if the file does not exist."""
        if not path.exists():
            cls.generate().save(path)
        return cls.load(path)

    def __repr__(self) -> str:
        return f"AuditSigner(key_id={self.key_id!r})"


class AuditKeyring:
    """The public audit keys a verifier accepts, by key id (several after a rotation)."""

    def __init__(self, keys: Iterable[VerifyKey]) -> None:
        self._keys: Mapping[str, VerifyKey] = {key_id_of(k): k for k in keys}

    @classmethod
    def from_hex(cls, public_keys: Iterable[str]) -> "AuditKeyring":
        """A keyring from hex-encoded 32-byte Ed25519 public keys."""
        return cls(VerifyKey(bytes.fromhex(h)) for h in public_keys)

    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def verify(self, key_id: str, message: bytes, signature_hex: str) -> None:
        """Check that ``signature_hex`` is key ``key_id``'s signature over ``message``.

        Raises:
            AuditSignatureInvalid: the key is unknown or the signature does not verify.
        """
        key = self._keys.get(key_id)
        if key is None:
            raise AuditSignatureInvalid(f"signed by unknown audit key {key_id!r}")
        try:
            key.verify(message, bytes.fromhex(signature_hex))
        except (BadSignatureError, ValueError):
            raise AuditSignatureInvalid(
                f"signature does not verify under audit key {key_id!r}"
            ) from None
