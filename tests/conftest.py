"""Fixtures shared by the whole suite.

``db_url`` yields the URL of a fresh, EMPTY database, once for SQLite (a file in the
test's temporary directory) and once for PostgreSQL (a uniquely named database created on
the server at ``127.0.0.1:5432`` with trust authentication, dropped at teardown). Tests
that need the schema call ``shardvault.store.migrate(db_url)`` themselves.
"""

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
"""The maintenance database the fixture connects to in order to create and drop others."""


def _create_postgres_database() -> str:
    name = f"sv_test_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def _drop_postgres_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


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
