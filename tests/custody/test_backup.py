"""Backup to an offline recovery key and restore: both recipient kinds, epoch bump,
refusals of bad bundles with the store unchanged."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardvault.custody.backends.local import DEVELOPMENT_COST, LocalBackend
from shardvault.custody.backup import (
    export_party,
    generate_recovery_key,
    load_private_key,
    load_public_key,
    open_bundle,
    private_key_pem,
    public_key_pem,
    restore_bundle,
)
from shardvault.custody.envelope import ShareAddress, ShareSlot, inspect
from shardvault.custody.errors import BackupError, ConflictError
from shardvault.custody.secret import SecretBytes
from shardvault.custody.shares import ShareCustody
from shardvault.custody.sharestore.local import LocalShareStore
from tests.custody.stub_kms import StubKmsBackend, StubKmsService

P1_K1 = ShareAddress("ws1", "vault-a", "key-1", "party-1")
P1_K2 = ShareAddress("ws1", "vault-b", "key-2", "party-1")
P2_K1 = ShareAddress("ws1", "vault-a", "key-1", "party-2")
OTHER_WS = ShareAddress("ws2", "vault-a", "key-1", "party-1")


@pytest.fixture(scope="module")
def rsa_key() -> object:
    return generate_recovery_key("rsa")


@pytest.fixture
def custody(tmp_path: Path) -> tuple[ShareCustody, dict[ShareAddress, bytes]]:
    with SecretBytes(b"pw") as passphrase:
        backend = LocalBackend.initialize(tmp_path / "kr", passphrase, DEVELOPMENT_COST)
    custody = ShareCustody(backend, LocalShareStore(tmp_path / "store"))
    shares = {a: secrets.token_bytes(40) for a in (P1_K1, P1_K2, P2_K1, OTHER_WS)}
    for address, share in shares.items():
        custody.store_share(ShareSlot(address, 2), SecretBytes(share), 0, presignature_epoch=5)
    return custody, shares


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kind", ["x25519", "rsa"])
def test_export_and_restore_bumps_the_epoch(
    kind: str,
    custody: tuple[ShareCustody, dict[ShareAddress, bytes]],
    rsa_key: object,
    tmp_path: Path,
) -> None:
    store_custody, shares = custody
    key = generate_recovery_key("x25519") if kind == "x25519" else rsa_key
    recipient = load_public_key(public_key_pem(key))  # type: ignore[arg-type]
    bundle = export_party(store_custody, "ws1", "party-1", recipient)
    for share in shares.values():
        assert share not in bundle
    header, opened = open_bundle(bundle, key)  # type: ignore[arg-type]
    assert (header["kind"], header["count"]) == (kind, 2)
    assert {s.slot.address for s in opened} == {P1_K1, P1_K2}

    # After the backup, presignatures were consumed (epoch moved on) at one address.
    store_custody.store_share(ShareSlot(P1_K1, 2), SecretBytes(shares[P1_K1]), 1, 9)
    restored = restore_bundle(store_custody, bundle, key)  # type: ignore[arg-type]
    epochs = {r.address: r.presignature_epoch for r in restored}
    assert epochs == {P1_K1: 10, P1_K2: 6}
    for address in (P1_K1, P1_K2):
        with store_custody.load_share(address) as now:
            assert now.share.equals(shares[address])
            assert now.presignature_epoch == epochs[address]

    # Restore into an empty store (the disaster case) under another backend.
    service = StubKmsService()
    fresh = ShareCustody(
        StubKmsBackend(service, service.create()), LocalShareStore(tmp_path / "new")
    )
    restored = restore_bundle(fresh, bundle, key)  # type: ignore[arg-type]
    assert {r.revision for r in restored} == {1}
    with fresh.load_share(P1_K2) as opened_share:
        assert opened_share.share.equals(shares[P1_K2])
        assert opened_share.presignature_epoch == 6


def test_private_key_pem_needs_its_passphrase() -> None:
    key = generate_recovery_key()
    with SecretBytes(b"offline passphrase") as good:
        pem = private_key_pem(key, good)
        assert load_private_key(pem, good).public_key() == key.public_key()
    with SecretBytes(b"wrong") as bad, pytest.raises(BackupError):
        load_private_key(pem, bad)


def test_bad_bundles_change_nothing(
    custody: tuple[ShareCustody, dict[ShareAddress, bytes]], tmp_path: Path
) -> None:
    store_custody, _ = custody
    key = generate_recovery_key()
    bundle = export_party(store_custody, "ws1", "party-1", key.public_key())
    before = _snapshot(tmp_path / "store")
    other = generate_recovery_key()
    with pytest.raises(BackupError):
        restore_bundle(store_custody, bundle, other)
    for cut in (0, 3, 7, 20, 60, len(bundle) - 1):
        with pytest.raises(BackupError):
            restore_bundle(store_custody, bundle[:cut], key)
    for position in (0, 5, 10, 60, len(bundle) - 1):
        bad = bytearray(bundle)
        bad[position] ^= 1
        with pytest.raises(BackupError):
            restore_bundle(store_custody, bytes(bad), key)
    assert _snapshot(tmp_path / "store") == before


def test_restore_refuses_to_roll_back_a_refresh(
    custody: tuple[ShareCustody, dict[ShareAddress, bytes]], tmp_path: Path
) -> None:
    store_custody, _ = custody
    key = generate_recovery_key()
    bundle = export_party(store_custody, "ws1", "party-1", key.public_key())
    store_custody.store_share(ShareSlot(P1_K2, 3), SecretBytes(b"refreshed" * 4), 1)
    before = _snapshot(tmp_path / "store")
    with pytest.raises(BackupError, match="roll back"):
        restore_bundle(store_custody, bundle, key)
    assert _snapshot(tmp_path / "store") == before
    assert inspect(store_custody.load_blob(P1_K2)[1]).slot.share_version == 3


def test_export_of_unknown_party_and_bad_keys(
    custody: tuple[ShareCustody, dict[ShareAddress, bytes]],
) -> None:
    store_custody, _ = custody
    with pytest.raises(BackupError, match="no shares"):
        export_party(store_custody, "ws1", "party-9", generate_recovery_key().public_key())
    with pytest.raises(BackupError):
        load_public_key(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(BackupError):
        generate_recovery_key("dsa")


def test_restore_is_compare_and_swap(
    custody: tuple[ShareCustody, dict[ShareAddress, bytes]],
) -> None:
    store_custody, _ = custody
    key = generate_recovery_key()
    bundle = export_party(store_custody, "ws1", "party-2", key.public_key())

    class Racing(LocalShareStore):
        def write(self, address: ShareAddress, blob: bytes, expected_revision: int) -> int:
            super().write(address, blob, expected_revision)  # another writer got there
            return super().write(address, blob, expected_revision)

    racing = ShareCustody(store_custody.backend, Racing(store_custody.store.root))  # type: ignore[attr-defined]
    with pytest.raises(ConflictError):
        restore_bundle(racing, bundle, key)


_FUZZ_KEY = generate_recovery_key()


@settings(max_examples=200, deadline=None)
@given(blob=st.binary(max_size=200), prefix=st.booleans())
def test_fuzz_bundle_parser_raises_only_backup_errors(blob: bytes, prefix: bool) -> None:
    data = (b"SVBK\x00\x01" + blob) if prefix else blob
    with pytest.raises(BackupError):
        open_bundle(data, _FUZZ_KEY)
