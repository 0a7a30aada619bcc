"""Key-encryption backends and the factory that builds one from configuration.

Configuration is a mapping (from the YAML/TOML/env layer above); secrets are never in it
directly, only the *name* of the environment variable that holds them::

    {"type": "local", "directory": "/var/lib/shardvault/keyring", "key_id": "kek-...",
     "passphrase_env": "SHARDVAULT_KEYRING_PASSPHRASE"}
    {"type": "pkcs11", "library": "/usr/lib/softhsm/libsofthsm2.so", "token_label": "sv",
     "pin_env": "SHARDVAULT_HSM_PIN", "key_id": "kek-..."}
    {"type": "aws-kms", "key_id": "arn:aws:kms:...", "region": "eu-west-1",
     "endpoint_url": "https://kms.eu-west-1.amazonaws.com", "max_attempts": 3}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from shardvault.custody.backends.base import (
    DATA_KEY_BYTES,
    EncryptionContext,
    KeyEncryptionBackend,
    WrappedKey,
    encode_context,
)
from shardvault.custody.errors import ConfigurationError
from shardvault.custody.secret import SecretBytes

__all__ = [
    "DATA_KEY_BYTES",
    "EncryptionContext",
    "KeyEncryptionBackend",
    "WrappedKey",
    "backend_from_config",
    "encode_context",
]


def _field(config: Mapping[str, object], name: str, backend: str) -> str:
    value = config.get(name)
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"custody backend {backend!r}: field {name!r} must be a string")
    return value


def _secret_from_env(config: Mapping[str, object], name: str, backend: str) -> SecretBytes:
    variable = _field(config, name, backend)
    value = os.environ.get(variable)
    if not value:
        raise ConfigurationError(
            f"custody backend {backend!r}: environment variable {variable} is not set"
        )
    return SecretBytes(value.encode("utf-8"))


def backend_from_config(config: Mapping[str, object]) -> KeyEncryptionBackend:
    """Build the backend a configuration mapping names.

    Raises: ConfigurationError for an unknown type or a missing/invalid field; the
    backend's own errors when it cannot be opened.
    """
    kind = config.get("type")
    if kind == "local":
        from shardvault.custody.backends.local import Argon2Cost, LocalBackend

        cost = Argon2Cost()
        if isinstance(config.get("argon2"), Mapping):
            raw = config["argon2"]
            assert isinstance(raw, Mapping)
            try:
                cost = Argon2Cost(
                    int(raw.get("time_cost", cost.time_cost)),
                    int(raw.get("memory_cost", cost.memory_cost)),
                    int(raw.get("parallelism", cost.parallelism)),
                )
            except (TypeError, ValueError):
                raise ConfigurationError("custody backend 'local': bad argon2 cost") from None
        with _secret_from_env(config, "passphrase_env", "local") as passphrase:
            return LocalBackend(
                Path(_field(config, "directory", "local")),
                passphrase,
                _field(config, "key_id", "local"),
                cost,
            )
    if kind == "pkcs11":
        from shardvault.custody.backends.pkcs11 import Pkcs11Backend

        with _secret_from_env(config, "pin_env", "pkcs11") as pin:
            return Pkcs11Backend(
                _field(config, "library", "pkcs11"),
                _field(config, "token_label", "pkcs11"),
                pin,
                _field(config, "key_id", "pkcs11"),
            )
    if kind == "aws-kms":
        import boto3
        from botocore.config import Config

        from shardvault.custody.backends.aws_kms import AwsKmsBackend

        attempts = config.get("max_attempts", 3)
        if not isinstance(attempts, int) or attempts < 1:
            raise ConfigurationError("custody backend 'aws-kms': max_attempts must be >= 1")
        endpoint = config.get("endpoint_url")
        if endpoint is not None and not isinstance(endpoint, str):
            raise ConfigurationError("custody backend 'aws-kms': endpoint_url must be a string")
        client = boto3.client(
            "kms",
            region_name=_field(config, "region", "aws-kms"),
            endpoint_url=endpoint,
            config=Config(
                retries={"max_attempts": attempts, "mode": "standard"},
                connect_timeout=5,
                read_timeout=10,
            ),
        )
        return AwsKmsBackend(client, _field(config, "key_id", "aws-kms"))
    raise ConfigurationError(f"unknown custody backend type {kind!r}")
