"""Alembic environment: runs migrations on the connection ``shardvault.store.migrate`` hands in.

Batch mode is on so that later migrations that alter columns work on SQLite too.
"""

from alembic import context

from shardvault.store.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through shardvault.store.migrate(url)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
