"""Custody from configuration: a backend, a share store, and the custody joining them.

The configuration is a mapping (typically loaded from a YAML or JSON file)::

    backend: {type: local | pkcs11 | aws-kms, ...}     # see shardvault.custody.backends
    store:
      type: local
      directory: /var/lib/shardvault/shares
    # or
    store: {type: s3, bucket: sv-shares, prefix: "shares/", region: eu-west-1,
            endpoint_url: null}
    attestation:                        # optional: attested key release
      root: aws-nitro                   # or a path to a PEM root
      allow_development_root: false     # must be true to pin a development root
      max_age_seconds: 300
      allow_debug: false
      pcrs: {0: "<96 hex>", 1: "...", 2: "...", 3: "...", 8: "..."}

Secrets (passphrase, PIN) are named by environment variable, never written in it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import yaml

from shardvault.custody.attestation.nitro import AWS_NITRO_ROOT_G1_PEM, NitroVerifier, PcrPolicy
from shardvault.custody.backends import backend_from_config
from shardvault.custody.errors import ConfigurationError
from shardvault.custody.shares import ShareCustody
from shardvault.custody.sharestore.base import ShareStore
from shardvault.custody.sharestore.local import LocalShareStore


def store_from_config(config: Mapping[str, object]) -> ShareStore:
    """Build the share store a configuration mapping names.

    Raises: ConfigurationError.
    """
    kind = config.get("type", "local")
    if kind == "local":
        directory = config.get("directory")
        if not isinstance(directory, str) or not directory:
            raise ConfigurationError("share store 'local': field 'directory' must be a string")
        return LocalShareStore(Path(directory))
    if kind == "s3":
        import boto3

        from shardvault.custody.sharestore.s3 import S3ShareStore

        bucket, prefix = config.get("bucket"), config.get("prefix", "shares/")
        region, endpoint = config.get("region"), config.get("endpoint_url")
        if not isinstance(bucket, str) or not bucket or not isinstance(prefix, str):
            raise ConfigurationError("share store 's3': fields 'bucket' and 'prefix' are required")
        if not isinstance(region, str) or (endpoint is not None and not isinstance(endpoint, str)):
            raise ConfigurationError("share store 's3': 'region' (and 'endpoint_url') as strings")
        client = boto3.client("s3", region_name=region, endpoint_url=endpoint)
        return S3ShareStore(client, bucket, prefix)
    raise ConfigurationError(f"unknown share store type {kind!r}")


def custody_from_config(config: Mapping[str, object]) -> ShareCustody:
    """Build a :class:`ShareCustody` from ``{"backend": ..., "store": ...}``.

    Raises: ConfigurationError, and the backend's errors when it cannot be opened.
    """
    backend, store = config.get("backend"), config.get("store")
    if not isinstance(backend, Mapping) or not isinstance(store, Mapping):
        raise ConfigurationError("custody configuration needs 'backend' and 'store' mappings")
    return ShareCustody(backend_from_config(backend), store_from_config(store))


def attestation_from_config(config: Mapping[str, object]) -> tuple[NitroVerifier, PcrPolicy]:
    """Build the verifier and the key-release policy of an ``attestation`` section.

    A development root is refused unless ``allow_development_root`` is true.
    Raises: ConfigurationError.
    """
    root = config.get("root", "aws-nitro")
    if root == "aws-nitro":
        root_pem = AWS_NITRO_ROOT_G1_PEM
    elif isinstance(root, str) and root:
        try:
            root_pem = Path(root).read_bytes()
        except OSError:
            raise ConfigurationError(f"attestation root {root} cannot be read") from None
    else:
        raise ConfigurationError("attestation: 'root' must be 'aws-nitro' or a PEM path")
    allow_dev, allow_debug = (
        config.get("allow_development_root", False),
        config.get("allow_debug", False),
    )
    max_age = config.get("max_age_seconds", 300)
    if not isinstance(allow_dev, bool) or not isinstance(allow_debug, bool):
        raise ConfigurationError("attestation: allow_* settings must be booleans")
    if not isinstance(max_age, int | float) or isinstance(max_age, bool) or max_age <= 0:
        raise ConfigurationError("attestation: max_age_seconds must be a positive number")
    raw_pcrs = config.get("pcrs", {})
    if not isinstance(raw_pcrs, Mapping):
        raise ConfigurationError("attestation: 'pcrs' must map index to hex")
    try:
        expected = {int(k): bytes.fromhex(str(v)) for k, v in raw_pcrs.items()}
        policy = PcrPolicy(expected=expected, allow_debug=allow_debug)
    except ValueError as exc:
        raise ConfigurationError(f"attestation: bad PCR policy ({exc})") from None
    if not expected and not allow_debug:
        # A policy that pins nothing would release keys to any enclave image.
        raise ConfigurationError("attestation: 'pcrs' must pin at least one PCR")
    verifier = NitroVerifier(
        root_pem,
        allow_development_root=allow_dev,
        max_age=timedelta(seconds=float(max_age)),
    )
    return verifier, policy


def load_config_file(path: Path) -> Mapping[str, object]:
    """Read a YAML (or JSON) custody configuration file.

    Raises: ConfigurationError.
    """
    try:
        text = path.read_text("utf-8")
        loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError):
        raise ConfigurationError(f"cannot read custody configuration {path}") from None
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"custody configuration {path} is not a mapping")
    return loaded
