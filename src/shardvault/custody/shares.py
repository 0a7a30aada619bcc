"""Share custody: envelope encryption, a backend and a share store put together.

This is what a co-signer uses: store a share (sealed, compare-and-swap written), load
the newest share of an address (read, checked against the address, opened), rotate
the key-encryption key of every record without decrypting a share, import a blob from
elsewhere only after it has been shown to open for the address it is written to.

Logs name addresses, revisions and key ids; never shares, data keys or blobs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from shardvault.custody.backends.base import KeyEncryptionBackend
from shardvault.custody.envelope import (
    OpenedShare,
    ShareAddress,
    ShareSlot,
    inspect,
    open_share,
    rewrap_share,
    seal_share,
)
from shardvault.custody.errors import IntegrityError
from shardvault.custody.secret import SecretBytes
from shardvault.custody.sharestore.base import ShareStore

log = logging.getLogger("shardvault.custody")


class ShareCustody:
    """Encrypted, versioned custody of key shares.

    ``backend`` wraps new data keys; ``other_backends`` can open blobs wrapped by other
    backend types (during a migration, say from ``local`` to ``aws-kms``).
    """

    def __init__(
        self,
        backend: KeyEncryptionBackend,
        store: ShareStore,
        other_backends: Iterable[KeyEncryptionBackend] = (),
    ) -> None:
        self.backend = backend
        self.store = store
        self._backends = {b.backend_type: b for b in other_backends}
        self._backends[backend.backend_type] = backend

    def _backend_for(self, blob: bytes) -> KeyEncryptionBackend:
        header = inspect(blob)
        backend = self._backends.get(header.wrapped_key.backend)
        if backend is None:
            raise IntegrityError(
                f"share blob for {header.slot.address} is wrapped by backend "
                f"{header.wrapped_key.backend!r}, which is not configured"
            )
        return backend

    def store_share(
        self,
        slot: ShareSlot,
        share: SecretBytes,
        expected_revision: int,
        presignature_epoch: int = 0,
    ) -> int:
        """Seal ``share`` for ``slot`` and write it as the next revision.

        Raises: ConflictError, StoreUnavailableError, backend errors.
        """
        blob = seal_share(self.backend, slot, share, presignature_epoch)
        revision = self.store.write(slot.address, blob, expected_revision)
        log.info(
            "share stored",
            extra={"address": str(slot.address), "revision": revision, "kek": self.backend.kek_id},
        )
        return revision

    def load_share(self, address: ShareAddress, revision: int | None = None) -> OpenedShare:
        """Open the newest (or the named) revision of ``address``.

        Raises: RecordNotFoundError, EnvelopeError, IntegrityError, backend errors.
        """
        record = self.store.read(address, revision)
        opened = open_share(self._backend_for(record.blob), record.blob, address)
        log.info("share opened", extra={"address": str(address), "revision": record.revision})
        return opened

    def load_blob(self, address: ShareAddress, revision: int | None = None) -> tuple[int, bytes]:
        """The stored blob of ``address`` (ciphertext only) and its revision."""
        record = self.store.read(address, revision)
        return record.revision, record.blob

    def rotate(
        self,
        address: ShareAddress,
        target: KeyEncryptionBackend | None = None,
        target_kek_id: str | None = None,
    ) -> int:
        """Re-wrap the newest blob of ``address`` under ``target`` (default: this
        custody's backend and its current key) and write it as the next revision.

        The previous revision stays until pruned, so a failure at any point leaves the
        share readable. Raises: as :meth:`load_share`, plus ConflictError.
        """
        target = target or self.backend
        record = self.store.read(address)
        blob = rewrap_share(
            record.blob, self._backend_for(record.blob), target, address, target_kek_id
        )
        revision = self.store.write(address, blob, record.revision)
        log.info(
            "share re-wrapped",
            extra={
                "address": str(address),
                "revision": revision,
                "kek": target_kek_id or target.kek_id,
            },
        )
        return revision

    def rotate_all(
        self, target: KeyEncryptionBackend | None = None, target_kek_id: str | None = None
    ) -> dict[ShareAddress, int]:
        """Rotate every address in the store; returns the new revision of each."""
        return {a: self.rotate(a, target, target_kek_id) for a in self.store.addresses()}

    def rotate_to_new_key(self) -> tuple[str, dict[ShareAddress, int]]:
        """Key rotation in one call: create a new key-encryption key in the backend, use
        it for new wraps, and re-wrap every stored share under it.

        Returns the new key id and the new revision of each address. The previous
        revisions (under the old key) remain until pruned; retire the old key only after
        pruning. Raises: as :meth:`rotate`.
        """
        new_kek = self.backend.create_key()
        self.backend.use_key(new_kek)
        return new_kek, self.rotate_all(self.backend, new_kek)

    def import_blob(self, address: ShareAddress, blob: bytes, expected_revision: int) -> int:
        """Write a blob produced elsewhere, after proving that it opens for ``address``.

        A truncated blob, one from another slot, an unknown format version or a blob
        this custody cannot unwrap raises before anything is written.
        """
        with open_share(self._backend_for(blob), blob, address):
            pass
        return self.store.write(address, blob, expected_revision)
