"""Custody from configuration: a backend, a share store, and the custody joining them.

The configuration is a mapping (typically loaded from a YAML or JSON file)::

    backend: {type: local | pkcs11 | aws-kms, ...}     # see shardvault.custody.backends
    store:
      type: local
      directory: /var/lib/shardvault/shares
    # or
    store: {type: s3, bucket: sv-shares, prefix: "shares/", region: eu-west-1,
            endpoint_url: null}

Secrets (passphrase, PIN) are named by environment variable, never written in it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import yaml

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
