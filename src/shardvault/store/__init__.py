"""Persistence: SQLAlchemy models and repositories, Alembic migrations.

SQLite by default (no set-up), PostgreSQL selected by a ``postgresql://`` URL. Every
repository is bound to one workspace and never reads across tenants.
"""

from shardvault.store.database import (
    Database,
    create_engine_for,
    default_database_url,
    normalize_url,
)
from shardvault.store.errors import SchemaNotCurrentError, StoreError, UnsupportedDatabaseError
from shardvault.store.migrate import (
    current_revision,
    downgrade,
    ensure_current,
    head_revision,
    migrate,
)

__all__ = [
    "Database",
    "SchemaNotCurrentError",
    "StoreError",
    "UnsupportedDatabaseError",
    "create_engine_for",
    "current_revision",
    "default_database_url",
    "downgrade",
    "ensure_current",
    "head_revision",
    "migrate",
    "normalize_url",
]
