"""A co-signer whose data keys are wrapped by a KMS or an HSM on its own side.

The third unlock mode of a co-signer (``cosigner.json`` ``unlock.mode = "backend"``),
beside a passphrase-sealed keyring and attested release: the identity blob and every key
share are envelope-encrypted (DESIGN.md invariant 2) under a key-encryption key that
never leaves a PKCS#11 HSM (SoftHSM2, CloudHSM) or AWS KMS. The configuration names the
backend as :func:`shardvault.custody.backends.backend_from_config` reads it, secrets by
the name of the environment variable that holds them (the HSM's PIN), never the secret:

    {"mode": "backend", "backend": {"type": "pkcs11", "library": "...",
     "token_label": "...", "pin_env": "SHARDVAULT_HSM_PIN", "key_id": "kek-..."}}

The section sits in the configuration the node signs with its identity, so a changed
backend (another token, another key) is refused at start like any other change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shardvault.cosigner.errors import ConfigurationError
from shardvault.custody.backends import backend_from_config
from shardvault.custody.shares import ShareCustody
from shardvault.custody.sharestore.local import LocalShareStore

BACKEND_TYPES = ("pkcs11", "aws-kms")
"""The backends a co-signer may unlock with here (the ``local`` passphrase keyring is
the ``passphrase`` mode)."""

_PENDING_KEY = "kek-pending"


@dataclass(frozen=True)
class BackendUnlock:
    """How a node reaches its KMS or HSM (module docstring)."""

    backend: Mapping[str, object]

    def to_json(self) -> dict[str, object]:
        """The ``unlock`` section of ``cosigner.json``."""
        return {"mode": "backend", "backend": dict(self.backend)}

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> BackendUnlock:
        """Read an ``unlock`` section.

        Raises: ConfigurationError.
        """
        backend = raw.get("backend")
        if not isinstance(backend, Mapping) or backend.get("type") not in BACKEND_TYPES:
            raise ConfigurationError(
                f"unlock.backend must be a {' or '.join(BACKEND_TYPES)} backend"
            )
        if not isinstance(backend.get("key_id"), str) or not backend["key_id"]:
            raise ConfigurationError("unlock.backend needs its key_id")
        return cls(dict(backend))

    @classmethod
    def prepare(cls, backend: Mapping[str, object]) -> BackendUnlock:
        """The unlock of a new node: ``backend`` as given, with a new key-encryption key
        made in the HSM when it names none (a KMS key must exist: name its ARN).

        Raises:
            ConfigurationError: an unknown backend type, or a KMS without ``key_id``.
            CustodyError: the backend refused (no token, a wrong PIN, unreachable).
        """
        kind = backend.get("type")
        if kind not in BACKEND_TYPES:
            raise ConfigurationError(f"backend type must be one of {', '.join(BACKEND_TYPES)}")
        if backend.get("key_id"):
            return cls.from_json({"backend": backend})
        if kind != "pkcs11":
            raise ConfigurationError("an aws-kms backend needs the key_id of an existing key")
        maker = backend_from_config({**backend, "key_id": _PENDING_KEY})
        try:
            key_id = maker.create_key()
        finally:
            maker.close()
        return cls({**backend, "key_id": key_id})

    def custody(self, data_dir: Path) -> ShareCustody:
        """This node's custody: the backend, and the share store in its data directory.

        Raises:
            ConfigurationError: the configuration is malformed.
            CustodyError: the backend cannot be opened (no token, a wrong PIN, ...).
        """
        backend = backend_from_config(self.backend)
        return ShareCustody(backend, LocalShareStore(Path(data_dir) / "shares"))
