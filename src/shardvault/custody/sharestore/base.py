"""The share-store interface: versioned, append-only records of encrypted share blobs.

A store keeps, per :class:`ShareAddress`, a sequence of immutable *revisions* numbered
1, 2, 3... . A write names the revision the writer last read (0 when it expects none)
and creates the next one only if that is still the newest: compare-and-swap, so two
writers can never silently overwrite each other (:class:`ConflictError`). A revision
appears whole or not at all. Stores see only ciphertext: they never decrypt.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

from shardvault.custody.envelope import ShareAddress

REVISION_WIDTH = 12
"""Revisions are written as zero-padded decimal so names sort in revision order."""

MAX_REVISION = 10**REVISION_WIDTH - 1

_REVISION_NAME = re.compile(r"r(\d{12})\.blob")


def revision_name(revision: int) -> str:
    """The file or object name of a revision."""
    return f"r{revision:0{REVISION_WIDTH}d}.blob"


def parse_revision_name(name: str) -> int | None:
    """The revision a name denotes, or None when it is not a revision (e.g. a temp file)."""
    match = _REVISION_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One revision of one address: the blob exactly as written."""

    address: ShareAddress
    revision: int
    blob: bytes


class ShareStore(ABC):
    """Versioned storage of share blobs with optimistic concurrency."""

    @abstractmethod
    def write(self, address: ShareAddress, blob: bytes, expected_revision: int) -> int:
        """Create revision ``expected_revision + 1`` if ``expected_revision`` is the newest
        (0: no record yet). Returns the new revision.

        Raises: ConflictError, StoreUnavailableError.
        """

    @abstractmethod
    def revisions(self, address: ShareAddress) -> list[int]:
        """All stored revisions of ``address``, ascending (empty when none).

        Raises: StoreUnavailableError.
        """

    @abstractmethod
    def read(self, address: ShareAddress, revision: int | None = None) -> StoredRecord:
        """The newest revision (or the one named).

        Raises: RecordNotFoundError, StoreUnavailableError.
        """

    @abstractmethod
    def delete_revision(self, address: ShareAddress, revision: int) -> None:
        """Remove one old revision (pruning after a rotation or a refresh).

        Raises: StoreError when it is the newest revision, StoreUnavailableError.
        """

    @abstractmethod
    def addresses(self) -> list[ShareAddress]:
        """Every address that has at least one revision.

        Raises: StoreUnavailableError.
        """

    def latest_revision(self, address: ShareAddress) -> int:
        """The newest revision, 0 when there is none."""
        revs = self.revisions(address)
        return revs[-1] if revs else 0

    def prune(self, address: ShareAddress, keep: int = 1) -> list[int]:
        """Delete all but the newest ``keep`` revisions; returns what was deleted."""
        if keep < 1:
            raise ValueError("keep must be at least 1")
        revs = self.revisions(address)
        doomed = revs[:-keep]
        for revision in doomed:
            self.delete_revision(address, revision)
        return doomed
