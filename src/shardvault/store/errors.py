"""Errors of the persistence layer.

:class:`StoreError` is the root; the service layer turns the few a caller can act on
(an unreachable database, a schema that is not at the expected revision) into its own
errors and lets the rest surface as server faults.
"""

from shardvault.errors import ShardvaultError


class StoreError(ShardvaultError):
    """Root of the errors raised by :mod:`shardvault.store`."""


class UnsupportedDatabaseError(StoreError):
    """The database URL names a backend shardvault does not support."""

    def __init__(self, url_scheme: str) -> None:
        super().__init__(
            f"unsupported database URL scheme {url_scheme!r}: use sqlite:/// or postgresql://"
        )
        self.url_scheme = url_scheme


class SchemaNotCurrentError(StoreError):
    """The database schema is not at the migration head this code expects."""

    def __init__(self, current: str | None, head: str) -> None:
        super().__init__(
            f"database schema is at revision {current!r}, expected {head!r}: "
            "run `shardvault server` (which migrates) or shardvault.store.migrate(url)"
        )
        self.current = current
        self.head = head


class DatabaseUnreachableError(StoreError):
    """The database refused the connection (no server, role or database; bad password)."""
