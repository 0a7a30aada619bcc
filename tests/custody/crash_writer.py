"""A writer process for the kill -9 test: stores ever newer shares until it is killed.

Run as ``python -m tests.custody.crash_writer STORE KEYRING KEK_ID``; the keyring
passphrase comes from ``CRASH_WRITER_PASSPHRASE``. After each committed revision it
prints the revision number on stdout.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from shardvault.custody.backends.local import DEVELOPMENT_COST, LocalBackend
from shardvault.custody.envelope import ShareAddress, ShareSlot
from shardvault.custody.secret import SecretBytes
from shardvault.custody.shares import ShareCustody
from shardvault.custody.sharestore.local import LocalShareStore

ADDRESS = ShareAddress("ws-crash", "vault", "key", "party")
SHARE_BYTES = 1 << 20


def share_for(revision: int) -> bytes:
    """The share content written as ``revision``: large, so a write takes a while."""
    return hashlib.sha256(revision.to_bytes(8, "big")).digest() * (SHARE_BYTES // 32)


def main() -> None:
    store_root, keyring, kek_id = sys.argv[1:4]
    with SecretBytes(os.environ["CRASH_WRITER_PASSPHRASE"].encode()) as passphrase:
        backend = LocalBackend(Path(keyring), passphrase, kek_id, DEVELOPMENT_COST)
    custody = ShareCustody(backend, LocalShareStore(Path(store_root)))
    while True:
        current = custody.store.latest_revision(ADDRESS)
        custody.store_share(
            ShareSlot(ADDRESS, current + 1), SecretBytes(share_for(current + 1)), current
        )
        sys.stdout.write(f"{current + 1}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
