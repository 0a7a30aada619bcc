"""Fixtures shared by the whole suite.

``db_url`` yields the URL of a fresh, EMPTY database, once for SQLite (a file in the
test's temporary directory) and once for PostgreSQL (a uniquely named database created on
the server at ``127.0.0.1:5432`` with trust authentication, dropped at teardown). Tests
that need the schema call ``shardvault.store.migrate(db_url)`` themselves, or use
``database`` (also on both backends): a :class:`~shardvault.store.Database` already at the
head revision with every table empty.
"""

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from shardvault.store import Database, migrate
from shardvault.store.models import Base
from tests.softhsm import softhsm

__all__ = ["softhsm"]  # one SoftHSM2 token per session, for every package's tests

# Servers started by tests (in process or as subprocesses, which inherit this) make no
# prepared aux-info sets in the background: each costs about 11 s of CPU, which would
# slow the suite and shift the timing of tests that pause or cut off co-signers. The
# tests of prepared sets turn them on themselves (tests/service/test_cosigner_backend.py,
# tests/cosigner/test_aux_pool.py).
os.environ.setdefault("SHARDVAULT_AUX_SETS", "0")

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
"""The maintenance database the fixture connects to in order to create and drop others."""


def _create_postgres_database() -> str:
    name = f"sv_test_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def _drop_postgres_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(statement.format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shardvault.db'}"
        return
    name = _create_postgres_database()
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        _drop_postgres_database(name)


@pytest.fixture(scope="session")
def _postgres_schema_database() -> Iterator[str]:
    """One migrated PostgreSQL database per test session (per xdist worker)."""
    name = _create_postgres_database()
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        migrate(url)
        yield url
    finally:
        _drop_postgres_database(name)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (migrating costs ~70 ms, copying ~1)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


def _empty_all_tables(url: str) -> None:
    # DELETE rather than TRUNCATE: on tables this small it is several times faster.
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn, conn.transaction():
        conn.execute("SET LOCAL lock_timeout = '10s'")
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table.name)))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A :class:`shardvault.store.Database` with the schema at the head revision and no rows.

    SQLite gets a new file per test; PostgreSQL reuses one migrated database per session
    and empties every table after each test (creating a database costs about a second).
    """
    if request.param == "sqlite":
        path = tmp_path / "shardvault.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("_postgres_schema_database")
    db = Database(url)
    try:
        yield db
    finally:
        db.dispose()
        if request.param == "postgresql":
            _empty_all_tables(url)
