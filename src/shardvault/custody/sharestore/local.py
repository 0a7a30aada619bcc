"""A share store in a local directory, crash-safe without a database.

Layout: ``<root>/<workspace>/<vault>/<key_id>/<party_id>/r<revision>.blob``. Directories
are created 0700 and blobs 0600: only the store's user can list or read them.

A write goes to a uniquely named temporary file in the record's directory, is flushed
and ``fsync``-ed, and is then published under its revision name with ``link(2)``, which
fails with ``EEXIST`` if the name is taken. ``link`` rather than ``rename`` is
deliberate: ``rename`` replaces an existing file, so two writers racing for the same
revision would silently overwrite each other, while ``link`` gives an atomic
create-if-absent (what ``renameat2(RENAME_NOREPLACE)`` gives, which Python does not
expose). The directory is then ``fsync``-ed so the new name survives a power cut.

A process killed at any point leaves every published revision whole: a revision name
only ever points at a file that was completely written and synced. Leftover temporary
files are ignored by readers and removed by :meth:`LocalShareStore.remove_temporaries`.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

from shardvault.custody.envelope import ShareAddress
from shardvault.custody.errors import (
    ConflictError,
    RecordNotFoundError,
    StoreError,
    StoreUnavailableError,
)
from shardvault.custody.sharestore.base import (
    MAX_REVISION,
    ShareStore,
    StoredRecord,
    parse_revision_name,
    revision_name,
)

_TMP_PREFIX = ".tmp-"


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents, each 0700 (``Path.mkdir`` would
    give the parents the default mode)."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)


class LocalShareStore(ShareStore):
    """Versioned share blobs in a directory tree (the default store)."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root)

    @property
    def root(self) -> Path:
        """The store's root directory."""
        return self._root

    def _dir(self, address: ShareAddress) -> Path:
        return self._root / address.workspace / address.vault / address.key_id / address.party_id

    def revisions(self, address: ShareAddress) -> list[int]:
        directory = self._dir(address)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreUnavailableError(f"cannot list {address}: {exc.strerror}") from None
        return sorted(r for r in map(parse_revision_name, names) if r is not None)

    def read(self, address: ShareAddress, revision: int | None = None) -> StoredRecord:
        if revision is None:
            revision = self.latest_revision(address)
            if revision == 0:
                raise RecordNotFoundError(f"no share record at {address}")
        path = self._dir(address) / revision_name(revision)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise RecordNotFoundError(f"no revision {revision} at {address}") from None
        except OSError as exc:
            raise StoreUnavailableError(f"cannot read {address}: {exc.strerror}") from None
        return StoredRecord(address, revision, blob)

    def write(self, address: ShareAddress, blob: bytes, expected_revision: int) -> int:
        current = self.latest_revision(address)
        if current != expected_revision:
            raise ConflictError(
                f"{address} is at revision {current}, the writer expected {expected_revision}"
            )
        new = current + 1
        if new > MAX_REVISION:
            raise StoreError(f"{address} has no revision numbers left")
        directory = self._dir(address)
        try:
            _make_private_dirs(directory)
            tmp = directory / f"{_TMP_PREFIX}{secrets.token_hex(8)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(blob)
                    handle.flush()
                    os.fsync(handle.fileno())
                try:
                    os.link(tmp, directory / revision_name(new))
                except FileExistsError:
                    raise ConflictError(
                        f"{address}: another writer created revision {new} first"
                    ) from None
            finally:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
            _fsync_directory(directory)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StoreUnavailableError(f"no space to write {address}") from None
            raise StoreUnavailableError(f"cannot write {address}: {exc.strerror}") from None
        return new

    def delete_revision(self, address: ShareAddress, revision: int) -> None:
        if revision >= self.latest_revision(address):
            raise StoreError(f"refusing to delete the newest revision of {address}")
        try:
            (self._dir(address) / revision_name(revision)).unlink()
        except FileNotFoundError:
            raise RecordNotFoundError(f"no revision {revision} at {address}") from None
        _fsync_directory(self._dir(address))

    def addresses(self) -> list[ShareAddress]:
        found: list[ShareAddress] = []
        if not self._root.is_dir():
            return found
        for party_dir in sorted(self._root.glob("*/*/*/*")):
            parts = party_dir.relative_to(self._root).parts
            try:
                address = ShareAddress(*parts)
            except ValueError:
                continue
            if self.revisions(address):
                found.append(address)
        return found

    def remove_temporaries(self) -> int:
        """Delete temporary files left by killed writers; returns how many."""
        removed = 0
        for tmp in self._root.glob(f"*/*/*/*/{_TMP_PREFIX}*"):
            tmp.unlink(missing_ok=True)
            removed += 1
        return removed
