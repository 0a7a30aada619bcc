"""SQLite writers of one process queue on an in-process gate before ``BEGIN IMMEDIATE``
(store/database.py ``_WriterGate``): every write lands, and a writer that fails or leaves
without committing frees the gate at once (readers never take it: test_unit_of_work)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from shardvault.store import Database


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    with database.transaction() as session:
        session.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        session.execute(text("INSERT INTO counter VALUES (0)"))
    yield database
    database.dispose()


def _value(db: Database) -> int:
    with db.new_read_session() as session:
        return int(session.execute(text("SELECT n FROM counter")).scalar_one())


def test_concurrent_writers_all_land(db: Database) -> None:
    def bump() -> None:
        for _ in range(25):
            with db.transaction() as session:
                n = session.execute(text("SELECT n FROM counter")).scalar_one()
                session.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    # Read-modify-write without lost updates: each transaction held the write lock.
    assert _value(db) == 200


def _next_write_waits(db: Database) -> float:
    started = time.monotonic()
    with db.transaction() as session:
        session.execute(text("UPDATE counter SET n = n + 1"))
    return time.monotonic() - started


def test_a_failed_writer_frees_the_gate_at_once(db: Database) -> None:
    def failing() -> None:
        with db.transaction() as session:
            session.execute(text("UPDATE counter SET n = 99"))
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        failing()
    assert _value(db) == 0  # rolled back
    assert _next_write_waits(db) < 5  # not the 30 s timeout
    assert _value(db) == 1


def test_a_writer_closed_or_invalidated_without_commit_frees_the_gate(db: Database) -> None:
    session = db.new_session()
    session.execute(text("UPDATE counter SET n = 7"))
    session.close()  # returned to the pool without a commit
    assert _next_write_waits(db) < 5
    session = db.new_session()
    session.execute(text("UPDATE counter SET n = 8"))
    session.connection().invalidate()  # the connection is thrown away
    session.close()
    assert _next_write_waits(db) < 5
    assert _value(db) == 2
