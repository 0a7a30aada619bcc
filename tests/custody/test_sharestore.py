"""Share stores: compare-and-swap, revisions, pruning, and crash safety.

The same tests run on the local directory store and on the S3 store against a real
moto server (127.0.0.1). The kill -9 test SIGKILLs a real writer process at random
moments, several times, and checks that the newest revision always opens.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shardvault.custody.backends.local import DEVELOPMENT_COST, LocalBackend
from shardvault.custody.envelope import ShareAddress, ShareSlot
from shardvault.custody.errors import (
    ConflictError,
    RecordNotFoundError,
    StoreError,
    StoreUnavailableError,
)
from shardvault.custody.secret import SecretBytes
from shardvault.custody.shares import ShareCustody
from shardvault.custody.sharestore.base import ShareStore
from shardvault.custody.sharestore.local import LocalShareStore
from shardvault.custody.sharestore.s3 import S3ShareStore
from tests.custody import crash_writer
from tests.custody.conftest import boto_client

A = ShareAddress("ws1", "vault-a", "key-1", "party-1")
B = ShareAddress("ws1", "vault-a", "key-1", "party-2")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ShareStore]:
    if request.param == "local":
        yield LocalShareStore(tmp_path / "store")
        return
    endpoint = request.getfixturevalue("moto_server")
    s3 = boto_client("s3", endpoint)
    bucket = f"shares-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=bucket)
    yield S3ShareStore(s3, bucket, prefix="sv/")


def test_create_read_and_revisions(store: ShareStore) -> None:
    with pytest.raises(RecordNotFoundError):
        store.read(A)
    assert store.revisions(A) == []
    assert store.write(A, b"one", expected_revision=0) == 1
    assert store.write(A, b"two", expected_revision=1) == 2
    assert store.write(B, b"b1", expected_revision=0) == 1
    assert store.revisions(A) == [1, 2]
    assert store.read(A).blob == b"two"
    assert store.read(A, 1).blob == b"one"
    assert store.read(A).revision == 2
    assert sorted(store.addresses(), key=str) == [A, B]
    with pytest.raises(RecordNotFoundError):
        store.read(A, 7)


def test_compare_and_swap_refuses_a_stale_writer(store: ShareStore) -> None:
    store.write(A, b"base", expected_revision=0)
    # Two writers both read revision 1; the first wins, the second is refused.
    seen_by_first = seen_by_second = store.latest_revision(A)
    store.write(A, b"first", seen_by_first)
    with pytest.raises(ConflictError, match="revision 2"):
        store.write(A, b"second", seen_by_second)
    with pytest.raises(ConflictError):
        store.write(A, b"creator", expected_revision=0)
    assert store.read(A).blob == b"first"
    assert store.revisions(A) == [1, 2]


def test_prune_keeps_the_newest(store: ShareStore) -> None:
    for i in range(4):
        store.write(A, b"v%d" % i, expected_revision=i)
    assert store.prune(A, keep=2) == [1, 2]
    assert store.revisions(A) == [3, 4]
    with pytest.raises(StoreError):
        store.delete_revision(A, 4)
    with pytest.raises(RecordNotFoundError):
        store.delete_revision(A, 1)
    with pytest.raises(ValueError, match="keep"):
        store.prune(A, keep=0)
    # Numbering continues after pruning.
    assert store.write(A, b"v5", expected_revision=4) == 5


def test_local_race_on_the_same_revision_name(tmp_path: Path) -> None:
    """The publish step itself refuses an existing revision (link, not rename)."""
    store = LocalShareStore(tmp_path)
    store.write(A, b"one", 0)
    directory = tmp_path / "ws1/vault-a/key-1/party-1"
    # Simulate a writer that published revision 2 between our check and our link.
    (directory / "r000000000002.blob").write_bytes(b"theirs")
    (directory / "r000000000002.blob").rename(directory / "hold")
    original = store.latest_revision
    store.latest_revision = lambda address: 1  # type: ignore[method-assign]
    (directory / "hold").rename(directory / "r000000000002.blob")
    with pytest.raises(ConflictError):
        store.write(A, b"mine", 1)
    store.latest_revision = original  # type: ignore[method-assign]
    assert store.read(A).blob == b"theirs"
    assert not [p for p in directory.iterdir() if p.name.startswith(".tmp-")]


def test_s3_unreachable_is_typed(tmp_path: Path) -> None:
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = S3ShareStore(boto_client("s3", f"http://127.0.0.1:{port}", attempts=1), "b")
    with pytest.raises(StoreUnavailableError):
        store.write(A, b"x", 0)
    with pytest.raises(StoreUnavailableError):
        store.read(A)


def test_s3_missing_bucket_is_typed(moto_server: str) -> None:
    store = S3ShareStore(boto_client("s3", moto_server), "no-such-bucket")
    with pytest.raises(StoreUnavailableError):
        store.revisions(A)


def test_local_unwritable_is_typed(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    store = LocalShareStore(blocker)
    with pytest.raises(StoreUnavailableError):
        store.write(A, b"x", 0)


def test_kill_9_during_writes_never_loses_the_share(tmp_path: Path) -> None:
    with SecretBytes(b"crash test") as passphrase:
        backend = LocalBackend.initialize(tmp_path / "keyring", passphrase, DEVELOPMENT_COST)
    store = LocalShareStore(tmp_path / "store")
    custody = ShareCustody(backend, store)
    custody.store_share(
        ShareSlot(crash_writer.ADDRESS, 1), SecretBytes(crash_writer.share_for(1)), 0
    )
    env = {**os.environ, "CRASH_WRITER_PASSPHRASE": "crash test", "PYTHONPATH": str(REPO / "src")}
    committed_total = 0
    leftovers = 0
    for _ in range(6):
        before = store.latest_revision(crash_writer.ADDRESS)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.custody.crash_writer",
             str(store.root), str(tmp_path / "keyring"), backend.kek_id],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        # Wait for the writer to commit at least once, then kill at a random moment.
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(secrets.randbelow(150) / 1000)
        proc.send_signal(signal.SIGKILL)
        printed = proc.communicate()[0].split()
        committed = [int(x) for x in printed]
        # Whatever the writer reported committed is there, and the newest opens whole.
        latest = store.latest_revision(crash_writer.ADDRESS)
        assert latest >= max([before + 1, *committed])
        with custody.load_share(crash_writer.ADDRESS) as opened:
            assert opened.share.equals(crash_writer.share_for(latest))
        committed_total += latest - before
        leftovers += store.remove_temporaries()
    # Every revision ever published still opens to the content written for it.
    for revision in store.revisions(crash_writer.ADDRESS):
        with custody.load_share(crash_writer.ADDRESS, revision) as opened:
            assert opened.share.equals(crash_writer.share_for(revision))
    assert committed_total >= 6
    print(f"kill -9 rounds: 6, revisions committed: {committed_total}, torn temps: {leftovers}")


def _race_writer(
    root: Path,
    address: ShareAddress,
    i: int,
    barrier: threading.Barrier,
    winners: list[int],
    conflicts: list[int],
) -> None:
    store = LocalShareStore(root)
    barrier.wait()
    try:
        store.write(address, b"writer-%d" % i, expected_revision=0)
        winners.append(i)
    except ConflictError:
        conflicts.append(i)


def test_local_concurrent_creators_exactly_one_wins(tmp_path: Path) -> None:
    """Eight threads race to create the same revision, 20 times: exactly one wins each
    time and the stored blob is the winner's."""
    for trial in range(20):
        address = ShareAddress("ws1", "vault-a", "key-1", f"party-{trial}")
        barrier = threading.Barrier(8)
        winners: list[int] = []
        conflicts: list[int] = []
        threads = [
            threading.Thread(
                target=_race_writer, args=(tmp_path, address, i, barrier, winners, conflicts)
            )
            for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(winners) == 1
        assert len(conflicts) == 7
        assert LocalShareStore(tmp_path).read(address).blob == b"writer-%d" % winners[0]
