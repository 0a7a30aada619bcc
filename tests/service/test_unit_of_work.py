"""Read-only units of work (the pipeline's status reads), on SQLite and PostgreSQL: they
see committed data, are never blocked by a writer holding SQLite's write lock, and a
write attempted through one is rolled back with an error."""

import threading

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
