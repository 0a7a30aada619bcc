"""Sealed entries a co-signer keeps ahead and uses at most once: the prime pool's primes
(:mod:`.prime_pool`) and the prepared auxiliary-info sets (:mod:`.aux_pool`).

Each entry lives in the node's custody, sealed like a key share, at an address in a
namespace that is never a workspace id (so a workspace's backup carries none). Its first
revision holds the entry. Taking it writes a sealed marker as the second revision (the
store's optimistic concurrency lets only one taker do so), deletes the first, and only
then hands the entry out; a crash in between leaves a marked address whose entry
:meth:`SingleUseStore.ready` deletes when the store is next opened. An address once
used keeps its marker, so it is never filled again.
"""

from __future__ import annotations

from shardvault.cosigner.state import NodeCustody
from shardvault.custody.envelope import ShareAddress, ShareSlot
from shardvault.custody.secret import SecretBytes

READY_REVISION = 1
"""The revision that holds an entry."""

TAKEN_REVISION = 2
"""The revision that marks an entry taken."""


class SingleUseStore:
    """One kind of single-use entry of one co-signer (module docstring).

    Security: holds no secret; entries are sealed by the node's custody and opened only
    by :meth:`take`.
    """

    def __init__(
        self, custody: NodeCustody, workspace: str, vault: str, party: str, taken: bytes
    ) -> None:
        self._custody = custody
        self._workspace = workspace
        self._vault = vault
        self._party = party
        self._taken = taken

    def __repr__(self) -> str:
        return f"SingleUseStore({self._workspace}/{self._vault}, party={self._party})"

    def address(self, key_id: str) -> ShareAddress:
        return ShareAddress(self._workspace, self._vault, key_id, self._party)

    def ready(self) -> list[str]:
        """The key ids of the entries not yet taken; first deletes the entry of every
        address a crash left marked taken."""
        store = self._custody.store
        ready = []
        for address in store.addresses():
            if (address.workspace, address.vault, address.party_id) != (
                self._workspace,
                self._vault,
                self._party,
            ):
                continue
            revisions = store.revisions(address)
            if revisions and revisions[-1] >= TAKEN_REVISION:
                for revision in revisions[:-1]:
                    store.delete_revision(address, revision)
            elif revisions == [READY_REVISION]:
                ready.append(address.key_id)
        return ready

    def used(self, key_id: str) -> bool:
        """Whether ``key_id`` was ever filled (ready or taken)."""
        return bool(self._custody.store.revisions(self.address(key_id)))

    def seal(self, key_id: str, plaintext: SecretBytes) -> None:
        """Seal a new entry under ``key_id``."""
        self._custody.store_share(ShareSlot(self.address(key_id), 1), plaintext, 0)

    def take(self, key_id: str) -> bytes:
        """The entry ``key_id``, marked taken and deleted before it is returned.

        Raises:
            StoreError: another taker was first, or it is gone.
            CustodyError: it cannot be opened.
        """
        address = self.address(key_id)
        with self._custody.load_share(address, READY_REVISION) as opened:
            plaintext = opened.share.reveal()
        with SecretBytes(self._taken) as marker:
            self._custody.store_share(ShareSlot(address, 1), marker, READY_REVISION)
        self._custody.store.delete_revision(address, READY_REVISION)
        return plaintext
