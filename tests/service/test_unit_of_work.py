"""Units of work, on SQLite and PostgreSQL. Read-only ones (the pipeline's status reads)
see committed data, are never blocked by a writer holding SQLite's write lock, and a
write attempted through one is rolled back with an error. After-commit callbacks (the
workers' wake-up) run only on a commit."""

import threading
import time

import pytest
from sqlalchemy import func, select

from shardvault.service.platform import Platform
from shardvault.store import Database
from shardvault.store.models import Workspace
from tests.api.support import bootstrap, make_platform


@pytest.fixture
def platform(database: Database) -> Platform:
    return make_platform(database)


def _count(platform: Platform) -> int:
    with platform.unit_of_work(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Workspace)) or 0)


def test_read_only_sees_committed_state_and_does_not_wait_for_a_writer(platform: Platform):
    bootstrap(platform, "acme")
    before = _count(platform)
    assert before >= 1
    holding = threading.Event()
    release = threading.Event()

    def writer() -> None:
        with platform.unit_of_work() as uow:
            uow.session.scalar(select(func.count()).select_from(Workspace))
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        # The writer holds its transaction (on SQLite: the write lock) open; a read-only
        # unit of work answers at once instead of waiting for it.
        done = threading.Event()
        counted: list[int] = []
        reader = threading.Thread(target=lambda: (counted.append(_count(platform)), done.set()))
        reader.start()
        assert done.wait(3), "a read-only unit of work waited for the writer"
        reader.join()
        assert counted == [before]
    finally:
        release.set()
        thread.join(10)


def test_write_through_read_only_is_refused_and_rolled_back(platform: Platform):
    bootstrap(platform, "acme")
    before = _count(platform)
    with pytest.raises(RuntimeError, match="read-only"):
        with platform.unit_of_work(read_only=True) as uow:
            uow.session.add(Workspace(name="sneaky"))
    assert _count(platform) == before


def test_after_commit_runs_only_when_the_unit_of_work_commits(platform: Platform):
    calls: list[str] = []
    with platform.unit_of_work() as uow:
        uow.after_commit(lambda: calls.append("committed"))
        assert calls == []  # not before the commit
    assert calls == ["committed"]

    def failing() -> None:
        with platform.unit_of_work() as uow:
            uow.after_commit(lambda: calls.append("rolled back"))
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        failing()
    assert calls == ["committed"]


def test_a_committed_transfer_wakes_one_idle_worker_at_once():
    from shardvault.service import work_signal

    while work_signal.wait_for_work(0.0):  # forget signals other tests in this process left
        pass
    assert work_signal.wait_for_work(0.01) is False
    woke: list[bool] = []
    waiters = [
        threading.Thread(target=lambda: woke.append(work_signal.wait_for_work(1.0)))
        for _ in range(3)
    ]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.1)
    started = time.monotonic()
    work_signal.work_committed()
    for waiter in waiters:
        waiter.join(3.0)
    # One waiter took the signal at once; the other two waited out their timeout.
    assert sorted(woke) == [False, False, True]
    assert time.monotonic() - started < 1.5
    assert work_signal.wait_for_work(0.01) is False


def test_one_wake_takes_every_signal_left_before_it():
    """A burst of commits before any worker waits: the first worker to wait takes them
    all (it claims every due item up to its limit); the next ones wait for new work
    instead of each claiming nothing."""
    from shardvault.service import work_signal

    while work_signal.wait_for_work(0.0):
        pass
    for _ in range(50):
        work_signal.work_committed()
    assert work_signal.wait_for_work(0.0) is True
    assert work_signal.wait_for_work(0.01) is False
