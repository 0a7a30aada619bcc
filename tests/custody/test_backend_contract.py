"""The contract every key-encryption backend must meet, run against each of them.

Backends: ``local`` (passphrase-sealed keyring), ``pkcs11`` on a real SoftHSM2 token,
``aws-kms`` on a real moto server over HTTP, and ``stub-kms`` (the project's own KMS
stand-in for the key states moto does not model). The same tests run on all four.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from shardvault.custody.backends.base import WrappedKey
from shardvault.custody.envelope import (
    ShareAddress,
    ShareSlot,
    inspect,
    open_share,
    rewrap_share,
    seal_share,
)
from shardvault.custody.errors import (
    BackendUnavailableError,
    IntegrityError,
    KeyNotFoundError,
)
from shardvault.custody.secret import SecretBytes
from shardvault.custody.shares import ShareCustody
from shardvault.custody.sharestore.local import LocalShareStore
from tests.custody.conftest import BackendHarness

CONTEXT = {"workspace": "ws1", "vault": "v1", "party_id": "p1"}


def _slot(party: str = "p1", version: int = 1) -> ShareSlot:
    return ShareSlot(ShareAddress("ws1", "vault-a", "key-1", party), version)


def test_generated_data_key_unwraps(harness: BackendHarness) -> None:
    data_key, wrapped = harness.backend.generate_data_key(CONTEXT)
    assert len(data_key) == 32
    assert wrapped.backend == harness.backend.backend_type
    assert wrapped.kek_id == harness.backend.kek_id
    with harness.backend.unwrap(wrapped, CONTEXT) as again:
        assert again.equals(data_key)


def test_wrap_of_given_key_unwraps(harness: BackendHarness) -> None:
    value = SecretBytes(secrets.token_bytes(32))
    wrapped = harness.backend.wrap(value, CONTEXT)
    assert value.reveal() not in wrapped.blob
    assert harness.backend.unwrap(wrapped, CONTEXT).equals(value)


@pytest.mark.parametrize(
    "context",
    [
        {**CONTEXT, "party_id": "p2"},
        {k: v for k, v in CONTEXT.items() if k != "vault"},
        {**CONTEXT, "extra": "x"},
        {},
    ],
)
def test_wrong_context_is_refused(harness: BackendHarness, context: dict[str, str]) -> None:
    _, wrapped = harness.backend.generate_data_key(CONTEXT)
    with pytest.raises(IntegrityError):
        harness.backend.unwrap(wrapped, context)


def test_wrong_key_is_refused(harness: BackendHarness) -> None:
    other = harness.backend.create_key()
    _, wrapped = harness.backend.generate_data_key(CONTEXT)
    swapped = WrappedKey(wrapped.backend, other, wrapped.blob)
    with pytest.raises(IntegrityError):
        harness.backend.unwrap(swapped, CONTEXT)


def test_unknown_key_is_typed(harness: BackendHarness) -> None:
    _, wrapped = harness.backend.generate_data_key(CONTEXT)
    missing = "kek-0000000000000000"
    if harness.name == "aws-kms":
        missing = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    with pytest.raises((KeyNotFoundError, IntegrityError)):
        harness.backend.unwrap(WrappedKey(wrapped.backend, missing, wrapped.blob), CONTEXT)
    with pytest.raises(KeyNotFoundError):
        harness.backend.wrap(SecretBytes(b"\x00" * 32), CONTEXT, kek_id=missing)


def test_other_backend_type_is_refused(harness: BackendHarness) -> None:
    _, wrapped = harness.backend.generate_data_key(CONTEXT)
    with pytest.raises(IntegrityError):
        harness.backend.unwrap(WrappedKey("elsewhere", wrapped.kek_id, wrapped.blob), CONTEXT)


def test_tampered_wrapped_key_is_refused(harness: BackendHarness) -> None:
    _, wrapped = harness.backend.generate_data_key(CONTEXT)
    n = len(wrapped.blob)
    for position in sorted({0, 1, n // 3, n // 2, n - 17, n - 1}):
        blob = bytearray(wrapped.blob)
        blob[position] ^= 0x01
        with pytest.raises(IntegrityError):
            harness.backend.unwrap(
                WrappedKey(wrapped.backend, wrapped.kek_id, bytes(blob)), CONTEXT
            )
    for cut in (0, 1, n - 1):
        with pytest.raises(IntegrityError):
            harness.backend.unwrap(
                WrappedKey(wrapped.backend, wrapped.kek_id, wrapped.blob[:cut]), CONTEXT
            )


def test_share_envelope_round_trip_and_tamper(harness: BackendHarness) -> None:
    share = SecretBytes(secrets.token_bytes(200))
    blob = seal_share(harness.backend, _slot(), share, presignature_epoch=4)
    with open_share(harness.backend, blob, _slot().address) as opened:
        assert opened.share.equals(share)
        assert opened.presignature_epoch == 4
        assert opened.slot == _slot()
    # The share ciphertext occupies the tail; any flipped bit there fails GCM.
    for position in (len(blob) - 1, len(blob) - 17, len(blob) - 40):
        bad = bytearray(blob)
        bad[position] ^= 0x80
        with pytest.raises(IntegrityError):
            open_share(harness.backend, bytes(bad), _slot().address)


def test_rotation_rewraps_without_touching_the_share_ciphertext(harness: BackendHarness) -> None:
    share = SecretBytes(secrets.token_bytes(64))
    blob = seal_share(harness.backend, _slot(), share)
    old = inspect(blob)
    new_kek = harness.backend.create_key()
    rotated = rewrap_share(blob, harness.backend, harness.backend, _slot(), new_kek)
    new = inspect(rotated)
    assert new.wrapped_key.kek_id == new_kek != old.wrapped_key.kek_id
    assert (new.nonce, new.ciphertext) == (old.nonce, old.ciphertext)
    assert open_share(harness.backend, rotated, _slot()).share.equals(share)
    # The old blob still opens until its revision is pruned.
    assert open_share(harness.backend, blob, _slot()).share.equals(share)


class _BreakAfterWrites(LocalShareStore):
    """A local store that takes the backend away after its n-th successful write, so
    the outage lands in the middle of a multi-record operation."""

    def __init__(self, root: Path, harness: BackendHarness, after: int) -> None:
        super().__init__(root)
        self._harness, self._after, self.writes = harness, after, 0

    def write(self, address: ShareAddress, blob: bytes, expected_revision: int) -> int:
        revision = super().write(address, blob, expected_revision)
        self.writes += 1
        if self.writes == self._after:
            self._harness.make_unavailable()
        return revision


def test_backend_unavailable_mid_rotation_loses_nothing(
    harness: BackendHarness, tmp_path: Path
) -> None:
    shares = {party: secrets.token_bytes(48) for party in ("p1", "p2", "p3")}
    # Three shares stored, then the backend vanishes right after the first re-wrap of
    # rotate_all has been written.
    store = _BreakAfterWrites(tmp_path / "store", harness, after=len(shares) + 1)
    custody = ShareCustody(harness.backend, store)
    for party, share in shares.items():
        custody.store_share(_slot(party), SecretBytes(share), expected_revision=0)
    new_kek = harness.backend.create_key()
    with pytest.raises(BackendUnavailableError):
        custody.rotate_all(target_kek_id=new_kek)
    revisions = {a: store.revisions(a) for a in store.addresses()}
    assert sorted(len(r) for r in revisions.values()) == [1, 1, 2]
    with pytest.raises(BackendUnavailableError):
        custody.store_share(_slot("p9"), SecretBytes(b"x" * 32), expected_revision=0)
    assert {a: store.revisions(a) for a in store.addresses()} == revisions

    # A fresh connection to the same keys opens everything and finishes the rotation.
    custody = ShareCustody(harness.reopen(), LocalShareStore(tmp_path / "store"))
    for address in revisions:
        with custody.load_share(address) as opened:
            assert opened.share.equals(shares[address.party_id])
    custody.rotate_all(target_kek_id=new_kek)
    for address in revisions:
        _, blob = custody.load_blob(address)
        assert inspect(blob).wrapped_key.kek_id == new_kek
        with custody.load_share(address) as opened:
            assert opened.share.equals(shares[address.party_id])
