"""Passphrase-encrypted key-share files, for the local and offline ceremony tools.

A share file is one JSON object. Its public fields (format, scheme, party, thresholds,
public key, KDF parameters) are readable without the passphrase; the key share itself is
sealed with ChaCha20-Poly1305 under a key derived from the passphrase by scrypt
(RFC 7914), both from pyca/cryptography. Every public field is bound as associated data,
so changing any of them (say, the party id or the public key) makes the file fail to open,
and a wrong passphrase is indistinguishable from tampering.

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
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from shardvault.crypto.errors import CryptoError, EncodingError
from shardvault.crypto.rng import RandomSource

FORMAT: Final = "shardvault-share/1"
"""The format tag this code writes; every tag ever written stays readable."""

SCRYPT_N: Final = 2**15
"""scrypt's CPU/memory cost (32 MiB with r = 8), RFC 7914's interactive-use setting."""

_MAX_FILE = 1024 * 1024


class ShareFileError(CryptoError):
    """A share file that cannot be opened: wrong passphrase, tampered, or malformed."""


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


def _kdf(passphrase: bytes, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(passphrase)


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
    salt, nonce = rng(16), rng(12)
    fields: dict[str, object] = {
        "format": FORMAT,
        **header.to_dict(),
        "kdf": {"name": "scrypt", "n": SCRYPT_N, "r": 8, "p": 1, "salt": salt.hex()},
        "aead": "chacha20-poly1305",
        "nonce": nonce.hex(),
    }
    key = _kdf(passphrase, salt, SCRYPT_N)
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
    """Decrypt a share file.

    Raises:
        ShareFileError: malformed, tampered, or a wrong passphrase (indistinguishable).
    """
    header, fields = read_header(data)
    kdf = fields["kdf"]
    if (
        not isinstance(kdf, dict)
        or kdf.get("name") != "scrypt"
        or fields["aead"] != "chacha20-poly1305"
    ):
        raise ShareFileError("share file uses an unknown KDF or cipher")
    try:
        n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        salt = bytes.fromhex(str(kdf["salt"]))
        nonce = bytes.fromhex(str(fields["nonce"]))
        ciphertext = base64.b64decode(str(fields["ciphertext"]), validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ShareFileError("share file encryption fields are malformed") from exc
    if (r, p) != (8, 1) or n not in (2**14, 2**15, 2**16, 2**17) or len(nonce) != 12:
        raise ShareFileError("share file has unsupported KDF parameters")
    try:
        secret = ChaCha20Poly1305(_kdf(passphrase, salt, n)).decrypt(
            nonce, ciphertext, _aad(fields)
        )
    except InvalidTag as exc:
        raise ShareFileError(
            f"cannot open the share of party {header.party_id}: wrong passphrase or the file "
            "was altered"
        ) from exc
    return header, secret
