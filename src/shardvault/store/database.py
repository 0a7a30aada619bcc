"""Engines and sessions for the two supported backends.

SQLite is the zero-set-up default: one file, write-ahead logging so readers never block
the writer, foreign keys enforced, a busy timeout so a waiting writer retries instead of
failing, and every transaction opened with ``BEGIN IMMEDIATE`` so that writers are
serialized from their first statement (a deferred transaction that reads and then writes
can fail with "database is locked" instead of waiting). PostgreSQL (through psycopg 3) is
selected by a ``postgresql://`` URL and used at READ COMMITTED; code that needs
serialization there takes row locks (``SELECT ... FOR UPDATE``) or relies on unique
constraints.
"""

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from shardvault.store.errors import UnsupportedDatabaseError

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for the write lock before giving up, in milliseconds."""


def default_database_url(data_dir: Path) -> str:
    """The SQLite URL used when no database is configured: ``<data_dir>/shardvault.db``."""
    return f"sqlite:///{data_dir / 'shardvault.db'}"


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and pin the driver: ``postgresql://`` means psycopg 3.

    Raises:
        UnsupportedDatabaseError: the scheme is neither SQLite nor PostgreSQL.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+pysqlite")
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    raise UnsupportedDatabaseError(parsed.drivername)


def _create_private_file(path: Path) -> None:
    # The database holds the workspace's users, keys and audit trail: create it readable
    # by its owner only (SQLite gives its -wal and -shm files the same permissions).
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _enable_wal(cursor: Any) -> None:
    # WAL mode is stored in the file, so only a new database needs switching. Switching
    # takes an exclusive lock, and SQLite answers "database is locked" at once (without the
    # busy handler) when connections to a new file race to switch it, so retry a while.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        # Done, whatever mode resulted (an in-memory database stays "memory").
        return


READ_ONLY_OPTION = "shardvault_read_only"
"""Execution option of the engine behind :meth:`Database.new_read_session`."""


class _WriterGate:
    """Hands SQLite's single write lock from thread to thread inside this process.

    SQLite's busy handler makes a waiting writer sleep 1, 2, 5 ... up to 100 ms between
    tries, so with a dozen threads writing the lock sat free while they slept (half the
    pipeline's time in the co-signer bench went to that). Threads of one process now
    queue on this lock before ``BEGIN IMMEDIATE`` and are woken as soon as the previous
    writer commits or rolls back; other processes still meet the busy timeout.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: int | None = None

    def enter(self, dbapi_connection: Any) -> None:
        if not self._lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise sqlite3.OperationalError("database is locked (in-process writers queue)")
        self._holder = id(dbapi_connection)

    def leave(self, dbapi_connection: Any) -> None:
        if self._holder is not None and self._holder == id(dbapi_connection):
            self._holder = None
            self._lock.release()


def _raw(connection: Any) -> Any:
    return getattr(connection, "dbapi_connection", connection)


def _install_sqlite_hooks(engine: Engine) -> None:
    gate = _WriterGate()
    dialect = engine.dialect
    base_commit, base_rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        try:
            base_commit(dbapi_connection)
        finally:
            gate.leave(_raw(dbapi_connection))

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            base_rollback(dbapi_connection)
        finally:
            gate.leave(_raw(dbapi_connection))

    # The engine's own dialect instance: its commit and rollback also release the gate.
    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
        gate.leave(dbapi_connection)  # a connection returned without commit or rollback

    @event.listens_for(engine, "close")
    def _on_close(dbapi_connection: Any, _record: Any) -> None:
        gate.leave(dbapi_connection)

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(dbapi_connection: Any, _record: Any, _exception: Any) -> None:
        gate.leave(dbapi_connection)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so that BEGIN below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            _enable_wal(cursor)
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A read-only session begins a deferred transaction: in WAL mode it reads a
        # snapshot without taking (or waiting for) the single writer's lock.
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
            return
        raw = connection.connection.dbapi_connection
        gate.enter(raw)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            gate.leave(raw)
            raise


def create_engine_for(url: str | URL, *, echo: bool = False) -> Engine:
    """Create an engine for ``url`` with the settings described in the module docstring.

    Raises:
        UnsupportedDatabaseError: the scheme is neither SQLite nor PostgreSQL.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            _create_private_file(Path(database))
        # Pooled: closing the last connection to a WAL database checkpoints and removes
        # the WAL file, which costs milliseconds per transaction if done every time.
        engine = create_engine(
            parsed,
            echo=echo,
            poolclass=QueuePool,
            # Enough kept open for the server's request threads (anyio's 40), pipeline
            # workers and background tasks at once: an overflow connection is closed on
            # return, and opening one costs ~1 ms (with 24 kept, a burst of requests
            # reopened connections throughout: 2% of the server's CPU in a profile).
            pool_size=48,
            max_overflow=60,
            pool_timeout=60,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        _install_sqlite_hooks(engine)
        return engine
    return create_engine(
        parsed, echo=echo, pool_size=10, max_overflow=40, pool_pre_ping=True, pool_timeout=60
    )


class Database:
    """An engine and its session factory: the one handle services receive."""

    def __init__(self, url: str | URL, *, echo: bool = False) -> None:
        self.url = normalize_url(url)
        self.engine = create_engine_for(self.url, echo=echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(**{READ_ONLY_OPTION: True}),
            expire_on_commit=False,
            autoflush=False,
        )

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    def new_session(self) -> Session:
        """A new session; the caller owns its transaction and must close it."""
        return self._sessions()

    def new_read_session(self) -> Session:
        """A new session for reads only: on SQLite its transaction is deferred (a WAL
        snapshot that neither takes nor waits for the write lock). The caller must not
        write through it and should roll it back."""
        return self._read_sessions()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"
