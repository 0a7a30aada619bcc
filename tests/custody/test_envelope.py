"""Envelope format: round trips, old blobs opening forever, and every kind of bad input.

Bad input (truncated blob, blob from another slot, wrong passphrase, unknown format
version, altered header) must raise a typed error and leave the store byte-for-byte
unchanged.
"""

from __future__ import annotations

import json
import secrets
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shardvault.custody.backends.local import DEVELOPMENT_COST, LocalBackend
from shardvault.custody.envelope import (
    MAGIC,
    ShareAddress,
    ShareSlot,
    inspect,
    open_share,
    seal_share,
)
from shardvault.custody.errors import (
    CustodyError,
    EnvelopeError,
    IntegrityError,
    MalformedBlobError,
    UnknownFormatVersionError,
    WrongPassphraseError,
)
from shardvault.custody.secret import SecretBytes
from shardvault.custody.shares import ShareCustody
from shardvault.custody.sharestore.local import LocalShareStore

DATA = Path(__file__).parent / "data"
ADDRESS = ShareAddress("ws1", "vault-a", "key-1", "party-1")
OTHER = ShareAddress("ws1", "vault-a", "key-1", "party-2")


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> LocalBackend:
    with SecretBytes(b"pass") as passphrase:
        return LocalBackend.initialize(
            tmp_path_factory.mktemp("kr") / "keyring", passphrase, DEVELOPMENT_COST
        )


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def custody(backend: LocalBackend, tmp_path: Path) -> ShareCustody:
    custody = ShareCustody(backend, LocalShareStore(tmp_path / "store"))
    custody.store_share(ShareSlot(ADDRESS, 1), SecretBytes(b"A" * 32), expected_revision=0)
    custody.store_share(ShareSlot(OTHER, 1), SecretBytes(b"B" * 32), expected_revision=0)
    return custody


def test_format_1_snapshot_opens_forever() -> None:
    """A blob written by shardvault 0.1.0 (tests/custody/data/format-v1) still opens."""
    folder = DATA / "format-v1"
    expected = json.loads((folder / "expected.json").read_text())
    with SecretBytes(expected["passphrase"].encode()) as passphrase:
        backend = LocalBackend(folder / "keyring", passphrase, expected["kek_id"], DEVELOPMENT_COST)
    address = ShareAddress(
        expected["workspace"], expected["vault"], expected["key_id"], expected["party_id"]
    )
    blob = (folder / "share.blob").read_bytes()
    header = inspect(blob)
    assert header.format_version == 1
    assert header.slot == ShareSlot(address, expected["share_version"])
    assert header.presignature_epoch == expected["presignature_epoch"]
    with open_share(backend, blob, ShareSlot(address, expected["share_version"])) as opened:
        assert opened.share.equals(bytes.fromhex(expected["share_hex"]))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    share=st.binary(min_size=0, max_size=512),
    version=st.integers(0, 2**64 - 1),
    epoch=st.integers(0, 2**64 - 1),
    party=st.from_regex(r"[A-Za-z0-9._:-]{1,20}", fullmatch=True).filter(
        lambda s: s not in (".", "..")
    ),
)
def test_round_trip(
    backend: LocalBackend, share: bytes, version: int, epoch: int, party: str
) -> None:
    slot = ShareSlot(ShareAddress("w", "v", "k", party), version)
    blob = seal_share(backend, slot, SecretBytes(share), presignature_epoch=epoch)
    with open_share(backend, blob, slot) as opened:
        assert opened.share.equals(share)
        assert (opened.slot, opened.presignature_epoch) == (slot, epoch)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300))
def test_inspect_of_arbitrary_bytes_raises_only_typed_errors(data: bytes) -> None:
    try:
        inspect(MAGIC + struct.pack(">H", 1) + data)
    except (MalformedBlobError, UnknownFormatVersionError):
        pass
    with pytest.raises(EnvelopeError):
        inspect(data if not data.startswith(MAGIC) else b"")


def test_truncated_blobs_raise_and_change_nothing(custody: ShareCustody) -> None:
    root = custody.store.root  # type: ignore[attr-defined]
    before = _snapshot(root)
    _, blob = custody.load_blob(ADDRESS)
    # Cuts in the header, or leaving less than a GCM tag, are malformed; cuts further
    # inside the ciphertext fail authentication.
    header_end = len(blob) - len(inspect(blob).ciphertext)
    for cut in range(len(blob)):
        expected = MalformedBlobError if cut < header_end + 16 else IntegrityError
        with pytest.raises(expected):
            custody.import_blob(ADDRESS, blob[:cut], expected_revision=1)
    assert _snapshot(root) == before


def test_blob_from_another_slot_raises_and_changes_nothing(custody: ShareCustody) -> None:
    root = custody.store.root  # type: ignore[attr-defined]
    before = _snapshot(root)
    _, other_blob = custody.load_blob(OTHER)
    with pytest.raises(IntegrityError, match="party-2"):
        custody.import_blob(ADDRESS, other_blob, expected_revision=1)
    # Rewriting the header to claim the target slot breaks authentication instead.
    forged = other_blob.replace(b"party-2", b"party-1", 1)
    assert inspect(forged).slot.address == ADDRESS
    with pytest.raises(IntegrityError):
        custody.import_blob(ADDRESS, forged, expected_revision=1)
    # A different share version of the same address is another slot too.
    _, blob = custody.load_blob(ADDRESS)
    with pytest.raises(IntegrityError, match="version"):
        open_share(custody.backend, blob, ShareSlot(ADDRESS, 2))
    # A blob copied into another party's directory by hand is refused on read.
    (root / "ws1/vault-a/key-1/party-1/r000000000002.blob").write_bytes(other_blob)
    with pytest.raises(IntegrityError):
        custody.load_share(ADDRESS)
    (root / "ws1/vault-a/key-1/party-1/r000000000002.blob").unlink()
    assert _snapshot(root) == before


@pytest.mark.parametrize("version", [0, 2, 255, 0xFFFF])
def test_unknown_format_version_raises_and_changes_nothing(
    custody: ShareCustody, version: int
) -> None:
    root = custody.store.root  # type: ignore[attr-defined]
    before = _snapshot(root)
    _, blob = custody.load_blob(ADDRESS)
    bad = blob[:4] + struct.pack(">H", version) + blob[6:]
    with pytest.raises(UnknownFormatVersionError, match=str(version)):
        custody.import_blob(ADDRESS, bad, expected_revision=1)
    assert _snapshot(root) == before


def test_header_edits_fail_authentication(custody: ShareCustody) -> None:
    _, blob = custody.load_blob(ADDRESS)
    header = inspect(blob)
    # share_version and presignature epoch sit right after the four identifiers.
    offset = 6 + sum(2 + len(s) for s in ("ws1", "vault-a", "key-1", "party-1"))
    for position in range(offset, offset + 16):
        bad = bytearray(blob)
        bad[position] ^= 0x01
        with pytest.raises(IntegrityError):
            open_share(custody.backend, bytes(bad), ADDRESS)
    assert header.presignature_epoch == 0
    with pytest.raises(MalformedBlobError):
        inspect(b"XXXX" + blob[4:])
    with pytest.raises(MalformedBlobError):
        inspect("text")  # type: ignore[arg-type]


def test_wrong_passphrase_raises_and_changes_nothing(tmp_path: Path) -> None:
    with SecretBytes(b"right") as right:
        backend = LocalBackend.initialize(tmp_path / "kr", right, DEVELOPMENT_COST)
    store = LocalShareStore(tmp_path / "store")
    ShareCustody(backend, store).store_share(
        ShareSlot(ADDRESS, 1), SecretBytes(b"x" * 32), expected_revision=0
    )
    before = _snapshot(tmp_path)
    with SecretBytes(b"wrong") as wrong, pytest.raises(WrongPassphraseError):
        LocalBackend(tmp_path / "kr", wrong, backend.kek_id, DEVELOPMENT_COST)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "fields",
    [("", "v", "k", "p"), ("..", "v", "k", "p"), ("w", "a/b", "k", "p"), ("w", "v", "k", "p\n"),
     ("w", "v", "k", "x" * 129), ("w", "v", "é", "p")],
)  # fmt: skip
def test_address_identifiers_are_restricted(fields: tuple[str, str, str, str]) -> None:
    with pytest.raises(ValueError, match="must be 1-128 characters"):
        ShareAddress(*fields)


def test_share_version_range() -> None:
    with pytest.raises(ValueError, match="share_version out of range"):
        ShareSlot(ADDRESS, -1)
    with pytest.raises(ValueError, match="share_version out of range"):
        ShareSlot(ADDRESS, 2**64)


def test_secrets_are_not_in_the_blob(backend: LocalBackend) -> None:
    share = secrets.token_bytes(32)
    blob = seal_share(backend, ShareSlot(ADDRESS, 1), SecretBytes(share))
    assert share not in blob


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_single_byte_change_of_a_blob_is_refused(
    backend: LocalBackend, data: st.DataObject
) -> None:
    """Property: a blob with any one byte changed never opens (typed error, always)."""
    blob = _FUZZ_BLOB.setdefault(
        "blob", seal_share(backend, ShareSlot(ADDRESS, 3), SecretBytes(b"fuzz" * 8), 2)
    )
    position = data.draw(st.integers(0, len(blob) - 1))
    delta = data.draw(st.integers(1, 255))
    mutated = bytearray(blob)
    mutated[position] ^= delta
    with pytest.raises(CustodyError):
        open_share(backend, bytes(mutated), ADDRESS)


_FUZZ_BLOB: dict[str, bytes] = {}


def test_migration_between_backends(backend: LocalBackend, tmp_path: Path) -> None:
    """Re-wrap from the local keyring to another backend (here the stub KMS) without
    decrypting the share; the migrated custody opens it, the old one still reads the
    old revision."""
    from tests.custody.stub_kms import StubKmsBackend, StubKmsService

    store = LocalShareStore(tmp_path / "store")
    old = ShareCustody(backend, store)
    old.store_share(ShareSlot(ADDRESS, 1), SecretBytes(b"m" * 32), 0)
    service = StubKmsService()
    target = StubKmsBackend(service, service.create())
    migrated = ShareCustody(target, store, other_backends=[backend])
    assert migrated.rotate(ADDRESS) == 2
    assert inspect(store.read(ADDRESS).blob).wrapped_key.backend == "stub-kms"
    with ShareCustody(target, store).load_share(ADDRESS) as opened:
        assert opened.share.equals(b"m" * 32)
    with old.load_share(ADDRESS, revision=1) as opened:
        assert opened.share.equals(b"m" * 32)
    with pytest.raises(IntegrityError, match="not configured"):
        old.load_share(ADDRESS)


def test_rotate_to_new_key(backend: LocalBackend, tmp_path: Path) -> None:
    custody = ShareCustody(backend, LocalShareStore(tmp_path / "store"))
    custody.store_share(ShareSlot(ADDRESS, 1), SecretBytes(b"r" * 32), 0)
    custody.store_share(ShareSlot(OTHER, 1), SecretBytes(b"s" * 32), 0)
    old_kek = backend.kek_id
    new_kek, revisions = custody.rotate_to_new_key()
    assert new_kek != old_kek
    assert backend.kek_id == new_kek
    assert revisions == {ADDRESS: 2, OTHER: 2}
    for address in (ADDRESS, OTHER):
        assert inspect(custody.load_blob(address)[1]).wrapped_key.kek_id == new_kek
        custody.store.prune(address)
    with custody.load_share(OTHER) as opened:
        assert opened.share.equals(b"s" * 32)
    backend.use_key(old_kek)
