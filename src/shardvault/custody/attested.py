"""Share custody inside an attested enclave: the key-encryption key stays outside.

The enclave side of the KMS ``Recipient`` pattern (see :mod:`.release_service`). The
enclave holds a share store (envelope-encrypted blobs only) and an attester (the Nitro
Security Module, or in development :class:`~.attestation.devenclave.DevelopmentEnclave`,
whose RSA recipient key is generated inside this process and never leaves it). It never
holds a key-encryption key. For each share it opens or seals it:

1. asks the release service for a fresh nonce;
2. has the attester produce a document binding that nonce and its recipient public key;
3. sends the document with the blob's wrapped key and encryption context (``decrypt``),
   or with the new blob's context (``generate-data-key``);
4. decrypts the released data key with its recipient private key (RSA-OAEP-SHA-256) and
   opens (or seals) the share blob with it, in memory.

So every unlock is a fresh attestation, and a process whose measurements do not match
the service's PCR policy gets no data key at all. The share ciphertext never leaves the
enclave; only the wrapped key and its context do.
"""

from __future__ import annotations

import logging
from typing import Protocol

from shardvault.custody.backends.base import EncryptionContext, KeyEncryptionBackend, WrappedKey
from shardvault.custody.envelope import (
    OpenedShare,
    ShareAddress,
    ShareSlot,
    inspect,
    open_share_with_data_key,
    seal_share,
)
from shardvault.custody.errors import BackendError, IntegrityError
from shardvault.custody.release_service import ReleaseClient
from shardvault.custody.secret import SecretBytes
from shardvault.custody.sharestore.base import ShareStore

log = logging.getLogger("shardvault.custody.attested")


class Attester(Protocol):
    """What produces attestation documents and opens keys released to them."""

    def attest(self, nonce: bytes | None = None, user_data: bytes | None = None) -> bytes:
        """A document binding ``nonce`` and the attester's recipient public key."""

    def open_released(self, ciphertext_for_recipient: bytes) -> SecretBytes:
        """Decrypt a data key released to the recipient key (RSA-OAEP-SHA-256)."""

    def rotate_recipient(self) -> None:
        """Replace the recipient key pair with a fresh one."""


def _open(attester: Attester, ciphertext: bytes) -> SecretBytes:
    try:
        return attester.open_released(ciphertext)
    except ValueError:
        # Not made for our key: a service (or relay) that answered for someone else.
        raise IntegrityError("released data key is not encrypted to this enclave") from None


class _ReleasedKeys(KeyEncryptionBackend):
    """Fresh data keys for sealing, obtained from the release service per blob.

    Only :meth:`generate_data_key` is served; the enclave never wraps or unwraps itself.
    """

    backend_type = "attested-release"

    def __init__(self, custody: AttestedShareCustody) -> None:
        super().__init__("released")
        self._custody = custody

    def create_key(self) -> str:
        raise BackendError("an enclave cannot create key-encryption keys")

    def wrap(
        self, data_key: SecretBytes, context: EncryptionContext, kek_id: str | None = None
    ) -> WrappedKey:
        raise BackendError("an enclave cannot wrap data keys; ask the release service")

    def unwrap(self, wrapped: WrappedKey, context: EncryptionContext) -> SecretBytes:
        raise BackendError("an enclave cannot unwrap data keys; ask the release service")

    def generate_data_key(self, context: EncryptionContext) -> tuple[SecretBytes, WrappedKey]:
        service, attester = self._custody.service, self._custody.attester
        document = self._custody.attest()
        made = service.generate_data_key(context, document)
        return _open(attester, made.ciphertext_for_recipient), made.wrapped_key


class AttestedShareCustody:
    """Share custody for a process that proves itself to a key-release service.

    The same surface as :class:`~.shares.ShareCustody` for what a co-signer needs
    (``store``, ``store_share``, ``load_share``, ``load_blob``), with a fresh attestation
    behind every seal and every open.

    Security: holds no key-encryption key; data keys exist in clear only inside one
    call, and opened shares are returned as :class:`SecretBytes` that the caller wipes.
    The attester holds the recipient private key.
    """

    def __init__(
        self,
        store: ShareStore,
        service: ReleaseClient,
        attester: Attester,
        *,
        recipient_per_unlock: bool = False,
    ) -> None:
        self.store = store
        self.service = service
        self.attester = attester
        self.recipient_per_unlock = recipient_per_unlock
        self._sealer = _ReleasedKeys(self)

    def attest(self) -> bytes:
        """A document for one release: a fresh nonce from the service and, with
        ``recipient_per_unlock``, a fresh recipient key pair (about 0.25 s for
        RSA-3072 here) so no two releases are encrypted to the same key."""
        nonce = self.service.nonce()
        if self.recipient_per_unlock:
            self.attester.rotate_recipient()
        return self.attester.attest(nonce)

    def __repr__(self) -> str:
        return f"AttestedShareCustody({self.service!r}, <redacted>)"

    def store_share(
        self,
        slot: ShareSlot,
        share: SecretBytes,
        expected_revision: int,
        presignature_epoch: int = 0,
    ) -> int:
        """Seal ``share`` under a data key released for it and write the next revision.

        Raises: AttestationError (refused by the service), ConflictError, backend errors.
        """
        blob = seal_share(self._sealer, slot, share, presignature_epoch)
        revision = self.store.write(slot.address, blob, expected_revision)
        log.info("share stored", extra={"address": str(slot.address), "revision": revision})
        return revision

    def load_share(self, address: ShareAddress, revision: int | None = None) -> OpenedShare:
        """Open the newest (or the named) revision of ``address`` after a fresh
        attestation.

        Raises: RecordNotFoundError, EnvelopeError, IntegrityError, AttestationError
        (refused by the service, ``reason`` names the check), BackendUnavailableError.
        """
        record = self.store.read(address, revision)
        header = inspect(record.blob)
        if header.slot.address != address:
            raise IntegrityError(f"share blob belongs to {header.slot.address}, not {address}")
        document = self.attest()
        released = self.service.decrypt(header.wrapped_key, header.context(), document)
        with _open(self.attester, released) as data_key:
            opened = open_share_with_data_key(record.blob, data_key, address)
        log.info("share opened", extra={"address": str(address), "revision": record.revision})
        return opened

    def load_blob(self, address: ShareAddress, revision: int | None = None) -> tuple[int, bytes]:
        """The stored blob of ``address`` (ciphertext only) and its revision."""
        record = self.store.read(address, revision)
        return record.revision, record.blob

    def close(self) -> None:
        """Close the service connection, if it has one."""
        close = getattr(self.service, "close", None)
        if callable(close):
            close()
