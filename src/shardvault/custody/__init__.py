"""Key-share custody: KMS/HSM backends, envelope encryption, share store, attestation.

The public API, by module:

- :mod:`~shardvault.custody.backends`: the key-encryption interface and its ``local``,
  ``pkcs11`` and ``aws-kms`` backends, built from configuration;
- :mod:`~shardvault.custody.envelope`: per-share AES-256-GCM envelopes bound to their
  slot, rotation by re-wrapping;
- :mod:`~shardvault.custody.sharestore`: versioned, atomic, compare-and-swap stores
  (local directory, S3);
- :mod:`~shardvault.custody.shares`: :class:`ShareCustody`, the three put together;
- :mod:`~shardvault.custody.attestation`: AWS Nitro attestation verification and the
  local development enclave; :mod:`~shardvault.custody.release`: attested key release;
- :mod:`~shardvault.custody.release_service`: the key-release service (a backend behind
  attestation, over HTTP) and its client; :mod:`~shardvault.custody.attested`: share
  custody inside an attested enclave;
- :mod:`~shardvault.custody.backup`: export to an offline recovery key and restore;
- :mod:`~shardvault.custody.secret`: :class:`SecretBytes`.

See ``docs/custody.md``.
"""

from shardvault.custody.backends import KeyEncryptionBackend, WrappedKey, backend_from_config
from shardvault.custody.config import custody_from_config, store_from_config
from shardvault.custody.envelope import (
    OpenedShare,
    ShareAddress,
    ShareSlot,
    inspect,
    open_share,
    open_share_with_data_key,
    rewrap_share,
    seal_share,
)
from shardvault.custody.errors import CustodyError
from shardvault.custody.secret import SecretBytes
from shardvault.custody.shares import ShareCustody
from shardvault.custody.sharestore import LocalShareStore, S3ShareStore, ShareStore, StoredRecord

__all__ = [
    "CustodyError",
    "KeyEncryptionBackend",
    "LocalShareStore",
    "OpenedShare",
    "S3ShareStore",
    "SecretBytes",
    "ShareAddress",
    "ShareCustody",
    "ShareSlot",
    "ShareStore",
    "StoredRecord",
    "WrappedKey",
    "backend_from_config",
    "custody_from_config",
    "inspect",
    "open_share",
    "open_share_with_data_key",
    "rewrap_share",
    "seal_share",
    "store_from_config",
]
