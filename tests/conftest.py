"""Fixtures shared by the whole suite.

``db_url`` yields the URL of a fresh, EMPTY database, once for SQLite (a file in the
test's temporary directory) and once for PostgreSQL (a uniquely named database created on
the server at ``127.0.0.1:5432`` with trust authentication, dropped at teardown). Tests
that need the schema call ``shardvault.store.migrate(db_url)`` themselves, or use
``database``: a :class:`~shardvault.store.Database` on the same URL, already migrated.
"""

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from shardvault.store import Database, migrate

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


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    """A :class:`shardvault.store.Database` on ``db_url``, migrated to the head revision."""
    migrate(db_url)
    db = Database(db_url)
    try:
        yield db
    finally:
        db.dispose()
