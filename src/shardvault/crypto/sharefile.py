"""Passphrase-encrypted key-share files, for the local and offline ceremony tools.

A share file is one JSON object. Its public fields (format, scheme, party, thresholds,
public key, KDF parameters) are readable without the passphrase; the key share itself is
sealed with ChaCha20-Poly1305 under a key derived from the passphrase, both from
pyca/cryptography. Every public field is bound as associated data, so changing any of them
(say, the party id or the public key) makes the file fail to open, and a wrong passphrase
is indistinguishable from tampering.

The KDF. New files use Argon2id (RFC 9106) with ``m = 46 MiB`` (47,104 KiB), ``t = 1``,
``p = 1``: the first of the equivalent settings the OWASP Password Storage Cheat Sheet
recommends for Argon2id (the others trade memory for passes: 19 MiB with ``t = 2``,
12 MiB with ``t = 3``, ...). It is the one with the most memory per guess, which is what a
GPU or ASIC attacker pays for, and a share file is opened seldom and by one process, so
46 MiB is affordable where a login server's many parallel hashes would not be. Opening
takes about 70 to 100 ms on a 2-vCPU machine, no more than the scrypt files before it.
Files of earlier releases, sealed with scrypt (RFC 7914, ``N = 2^15``, ``r = 8``,
``p = 1``), still open.

The KDF parameters come from the file, so they are bounded before any key is derived: a
file cannot make the reader allocate more than 1 GiB or run more than 16 passes
(:class:`ShareFileParameterError`).

Pure: this module turns bytes into bytes. Reading and writing files is the caller's job.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from shardvault.crypto.errors import CryptoError, EncodingError
from shardvault.crypto.rng import RandomSource

FORMAT: Final = "shardvault-share/1"
"""The format tag this code writes; every tag ever written stays readable."""

ARGON2_MEMORY_KIB: Final = 47_104
"""Argon2id memory of new files, in KiB (46 MiB; OWASP's first Argon2id setting)."""

ARGON2_ITERATIONS: Final = 1
"""Argon2id passes of new files (``t``)."""

ARGON2_LANES: Final = 1
"""Argon2id lanes of new files (``p``)."""

ARGON2_MEMORY_RANGE_KIB: Final = (7 * 1024, 1024 * 1024)
"""Argon2id memory a file may name, in KiB: 7 MiB (OWASP's smallest setting) to 1 GiB."""

ARGON2_ITERATIONS_RANGE: Final = (1, 16)
"""Argon2id passes a file may name."""

ARGON2_LANES_RANGE: Final = (1, 8)
"""Argon2id lanes a file may name."""

SCRYPT_N: Final = 2**15
"""scrypt's CPU/memory cost (32 MiB with r = 8) of files written by earlier releases."""

_SCRYPT_N_ALLOWED: Final = (2**14, 2**15, 2**16, 2**17)
_SALT_BYTES: Final = 16
_SALT_RANGE: Final = (16, 64)
_MAX_FILE = 1024 * 1024


class ShareFileError(CryptoError):
    """A share file that cannot be opened: wrong passphrase, tampered, or malformed."""


class ShareFileParameterError(ShareFileError):
    """A share file whose KDF parameters are missing, unknown or out of range (a file
    must not choose how much memory or time the reader spends)."""


@dataclass(frozen=True, slots=True)
class ShareFileHeader:
    """The public part of a share file."""

    scheme: str
    party_id: int
    min_signers: int
    max_signers: int
    public_key: str

    def to_dict(self) -> dict[str, str | int]:
        """The header as JSON fields."""
        return {
            "scheme": self.scheme,
            "party_id": self.party_id,
            "min_signers": self.min_signers,
            "max_signers": self.max_signers,
            "public_key": self.public_key,
        }


def _int_param(kdf: dict[str, object], name: str, bounds: tuple[int, int]) -> int:
    value = kdf.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ShareFileParameterError(f"share file KDF parameter {name} must be an integer")
    low, high = bounds
    if not low <= value <= high:
        raise ShareFileParameterError(
            f"share file KDF parameter {name} = {value} is outside {low}..{high}"
        )
    return value


def _salt(kdf: dict[str, object]) -> bytes:
    try:
        salt = bytes.fromhex(str(kdf.get("salt")))
    except ValueError as exc:
        raise ShareFileParameterError("share file KDF salt is not hex") from exc
    if not _SALT_RANGE[0] <= len(salt) <= _SALT_RANGE[1]:
        raise ShareFileParameterError(
            f"share file KDF salt must be {_SALT_RANGE[0]} to {_SALT_RANGE[1]} bytes"
        )
    return salt


def _derive(kdf: object, passphrase: bytes) -> bytes:
    """The file key from the file's KDF parameters, each checked before any work.

    Raises:
        ShareFileParameterError: an unknown KDF, unknown or missing parameters, or a
            parameter out of range.
    """
    if not isinstance(kdf, dict):
        raise ShareFileParameterError("share file KDF parameters must be an object")
    name = kdf.get("name")
    if name == "argon2id":
        if set(kdf) != {"name", "version", "memory_kib", "iterations", "lanes", "salt"}:
            raise ShareFileParameterError("share file Argon2id parameters are missing or unknown")
        if kdf.get("version") != 0x13:
            raise ShareFileParameterError("share file names an Argon2 version other than 1.3")
        memory = _int_param(kdf, "memory_kib", ARGON2_MEMORY_RANGE_KIB)
        iterations = _int_param(kdf, "iterations", ARGON2_ITERATIONS_RANGE)
        lanes = _int_param(kdf, "lanes", ARGON2_LANES_RANGE)
        return Argon2id(
            salt=_salt(kdf),
            length=32,
            iterations=iterations,
            lanes=lanes,
            memory_cost=memory,
        ).derive(passphrase)
    if name == "scrypt":
        if set(kdf) != {"name", "n", "r", "p", "salt"}:
            raise ShareFileParameterError("share file scrypt parameters are missing or unknown")
        n = kdf.get("n")
        if isinstance(n, bool) or not isinstance(n, int) or n not in _SCRYPT_N_ALLOWED:
            raise ShareFileParameterError(
                f"share file scrypt N must be one of {list(_SCRYPT_N_ALLOWED)}"
            )
        _int_param(kdf, "r", (8, 8))
        _int_param(kdf, "p", (1, 1))
        return Scrypt(salt=_salt(kdf), length=32, n=n, r=8, p=1).derive(passphrase)
    raise ShareFileParameterError("share file uses an unknown KDF")


def _aad(fields: dict[str, object]) -> bytes:
    public = {k: v for k, v in fields.items() if k != "ciphertext"}
    return json.dumps(public, sort_keys=True, separators=(",", ":")).encode()


def seal(header: ShareFileHeader, secret: bytes, passphrase: bytes, rng: RandomSource) -> bytes:
    """Encrypt ``secret`` (a serialized key share) into share-file bytes.

    Raises:
        EncodingError: an empty passphrase.
    """
    if not passphrase:
        raise EncodingError("the passphrase must not be empty")
    salt, nonce = rng(_SALT_BYTES), rng(12)
    kdf: dict[str, object] = {
        "name": "argon2id",
        "version": 0x13,
        "memory_kib": ARGON2_MEMORY_KIB,
        "iterations": ARGON2_ITERATIONS,
        "lanes": ARGON2_LANES,
        "salt": salt.hex(),
    }
    fields: dict[str, object] = {
        "format": FORMAT,
        **header.to_dict(),
        "kdf": kdf,
        "aead": "chacha20-poly1305",
        "nonce": nonce.hex(),
    }
    key = _derive(kdf, passphrase)
    ciphertext = ChaCha20Poly1305(key).encrypt(nonce, secret, _aad(fields))
    fields["ciphertext"] = base64.b64encode(ciphertext).decode()
    return (json.dumps(fields, indent=2) + "\n").encode()


def read_header(data: bytes) -> tuple[ShareFileHeader, dict[str, object]]:
    """Parse a share file's public fields without decrypting.

    Raises:
        ShareFileError: not a share file of a known format, or malformed fields.
    """
    if len(data) > _MAX_FILE:
        raise ShareFileError("share file is too large")
    try:
        fields = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ShareFileError("share file is not JSON") from exc
    if not isinstance(fields, dict) or fields.get("format") != FORMAT:
        raise ShareFileError("not a shardvault share file (unknown format)")
    expected = {
        "format", "scheme", "party_id", "min_signers", "max_signers", "public_key",
        "kdf", "aead", "nonce", "ciphertext",
    }  # fmt: skip
    if set(fields) != expected:
        raise ShareFileError("share file has missing or unknown fields")
    try:
        header = ShareFileHeader(
            scheme=str(fields["scheme"]),
            party_id=int(fields["party_id"]),
            min_signers=int(fields["min_signers"]),
            max_signers=int(fields["max_signers"]),
            public_key=str(fields["public_key"]),
        )
    except (TypeError, ValueError) as exc:
        raise ShareFileError("share file header is malformed") from exc
    return header, fields


def open_sealed(data: bytes, passphrase: bytes) -> tuple[ShareFileHeader, bytes]:
    """Decrypt a share file: Argon2id files, and the scrypt files of earlier releases.

    Raises:
        ShareFileParameterError: KDF parameters unknown or out of range (checked before
            any key is derived).
        ShareFileError: malformed, tampered, or a wrong passphrase (indistinguishable).
    """
    header, fields = read_header(data)
    if fields["aead"] != "chacha20-poly1305":
        raise ShareFileError("share file uses an unknown cipher")
    try:
        nonce = bytes.fromhex(str(fields["nonce"]))
        ciphertext = base64.b64decode(str(fields["ciphertext"]), validate=True)
    except (TypeError, ValueError, binascii.Error) as exc:
        raise ShareFileError("share file encryption fields are malformed") from exc
    if len(nonce) != 12:
        raise ShareFileError("share file nonce must be 12 bytes")
    key = _derive(fields["kdf"], passphrase)
    try:
        secret = ChaCha20Poly1305(key).decrypt(nonce, ciphertext, _aad(fields))
    except InvalidTag as exc:
        raise ShareFileError(
            f"cannot open the share of party {header.party_id}: wrong passphrase or the file "
            "was altered"
        ) from exc
    return header, secret
