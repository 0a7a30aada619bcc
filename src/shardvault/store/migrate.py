"""Schema migrations, run from code (Alembic with the scripts shipped in this package).

``migrate(url)`` brings any database, empty or older, to the head revision. The head must
always describe exactly the models in :mod:`shardvault.store.models`; a test compares them
with Alembic's autogenerate and fails on any difference.
"""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from shardvault.store.database import create_engine_for
from shardvault.store.errors import SchemaNotCurrentError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
"""Where the Alembic environment and revision scripts live."""


def alembic_config() -> Config:
    """An Alembic configuration pointing at the package's migration scripts."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise SchemaNotCurrentError(None, "<none>")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


MIGRATION_LOCK_ID = 0x5348_4156_4C54  # "SHAVLT"
"""The PostgreSQL advisory lock that serializes concurrent migrations (several server
replicas starting at once); SQLite's BEGIN IMMEDIATE already serializes them."""


def migrate_engine(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision``."""
    config = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def migrate(url: str | URL, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (default: the newest).

    Raises:
        UnsupportedDatabaseError: the URL names an unsupported backend.
    """
    engine = create_engine_for(url)
    try:
        migrate_engine(engine, revision)
    finally:
        engine.dispose()


def downgrade(url: str | URL, revision: str) -> None:
    """Take the database at ``url`` back to ``revision`` (``"base"`` drops everything).

    Raises:
        UnsupportedDatabaseError: the URL names an unsupported backend.
    """
    engine = create_engine_for(url)
    try:
        config = alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, revision)
    finally:
        engine.dispose()


def ensure_current(engine: Engine) -> None:
    """Raise unless the database is at the head revision.

    Raises:
        SchemaNotCurrentError: the schema is missing or at another revision.
    """
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        raise SchemaNotCurrentError(current, head)
