"""Client side of request signing: API key pairs and the per-request JWT.

See :mod:`shardvault.service.auth` for the scheme; this module produces exactly what it
checks: a JWT with ``method``, ``uri``, ``nonce``, ``iat``, ``exp``, ``sub`` and
``bodyHash``, signed with the API key's private key (Ed25519 as JOSE ``EdDSA``, or P-256
as ``ES256``).
"""

import hashlib
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from shardvault.sdk.errors import CredentialsError

Algorithm = Literal["EdDSA", "ES256"]
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey

TOKEN_LIFETIME_S = 25
"""How long a request token is valid; the server allows at most 30 s."""


def generate_key_pair(algorithm: Algorithm = "EdDSA") -> tuple[str, str]:
    """A new API key pair as (private key PEM, public key PEM).

    Security: the first element is the private key; write it only to a 0600 file
    (:func:`write_private_key`) and never send it anywhere.
    """
    private: PrivateKey = (
        ed25519.Ed25519PrivateKey.generate()
        if algorithm == "EdDSA"
        else ec.generate_private_key(ec.SECP256R1())
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    return private_pem, public_pem


def write_private_key(path: Path, private_pem: str) -> None:
    """Write a private key to a NEW file readable by its owner only (mode 0600).

    Raises:
        CredentialsError: the file exists or cannot be created.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise CredentialsError(f"cannot create key file {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w") as handle:
        handle.write(private_pem)


@dataclass(frozen=True, slots=True)
class ApiKeyCredentials:
    """An API key id and its private key.

    Security: holds the private key; ``repr`` shows only the key id and algorithm.
    """

    api_key_id: str
    private_key: PrivateKey = field(repr=False)

    @property
    def algorithm(self) -> Algorithm:
        return "EdDSA" if isinstance(self.private_key, ed25519.Ed25519PrivateKey) else "ES256"

    @classmethod
    def from_pem(cls, api_key_id: str, private_pem: str | bytes) -> "ApiKeyCredentials":
        """Credentials from a PKCS#8 PEM private key (Ed25519 or P-256).

        Raises:
            CredentialsError: not an unencrypted PEM private key of a supported type.
        """
        data = private_pem.encode("ascii") if isinstance(private_pem, str) else private_pem
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise CredentialsError("not an unencrypted PEM private key") from None
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return cls(api_key_id, key)
        if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
            return cls(api_key_id, key)
        raise CredentialsError("the key is neither Ed25519 nor P-256")

    @classmethod
    def from_file(cls, api_key_id: str, path: Path | str) -> "ApiKeyCredentials":
        """Credentials from a key file written by :func:`write_private_key`.

        Raises:
            CredentialsError: unreadable or not a supported private key.
        """
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise CredentialsError(f"cannot read key file {path}: {exc.strerror}") from exc
        return cls.from_pem(api_key_id, data)

    def sign_request(
        self,
        method: str,
        uri: str,
        body: bytes,
        *,
        now: float | None = None,
        nonce: str | None = None,
        lifetime_s: int = TOKEN_LIFETIME_S,
    ) -> str:
        """The bearer token for one ``method`` request (``GET``, ``POST``...) to ``uri``
        (path and query) with ``body``; the server accepts it for that method only."""
        issued = int(time.time() if now is None else now)
        claims = {
            "method": method.upper(),
            "uri": uri,
            "nonce": nonce or secrets.token_hex(16),
            "iat": issued,
            "exp": issued + lifetime_s,
            "sub": self.api_key_id,
            "bodyHash": hashlib.sha256(body).hexdigest(),
        }
        return jwt.encode(claims, self.private_key, algorithm=self.algorithm)
