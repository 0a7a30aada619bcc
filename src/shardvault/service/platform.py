"""The platform handle services and the API share: database, audit key, settings, clock."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy.exc

from shardvault.audit import DEFAULT_CHECKPOINT_INTERVAL, Actor, AuditKeyring, AuditSigner
from shardvault.service.uow import UnitOfWork
from shardvault.store import Database
from shardvault.store import migrate as run_migrations
from shardvault.store.errors import DatabaseUnreachableError

MAX_TOKEN_LIFETIME_S = 30
"""A request JWT's ``exp`` may be at most this many seconds after its ``iat``."""


@dataclass(frozen=True, slots=True)
class PlatformSettings:
    """Tunables of the service layer."""

    max_token_lifetime_s: int = MAX_TOKEN_LIFETIME_S
    clock_leeway_s: int = 5
    checkpoint_interval: int = DEFAULT_CHECKPOINT_INTERVAL
    nonce_purge_interval_s: float = 60.0


class Platform:
    """What every service function needs, built once per process."""

    def __init__(
        self,
        database: Database,
        audit_signer: AuditSigner,
        *,
        settings: PlatformSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.audit_signer = audit_signer
        self.settings = settings or PlatformSettings()
        self.clock = clock

    def unit_of_work(self, *, read_only: bool = False) -> UnitOfWork:
        """A new unit of work (use it as a context manager); ``read_only``: a snapshot
        that takes no write lock (see :class:`UnitOfWork`)."""
        return UnitOfWork(
            self.database,
            self.audit_signer,
            checkpoint_interval=self.settings.checkpoint_interval,
            read_only=read_only,
        )

    def keyring(self) -> AuditKeyring:
        """The audit keys a verification accepts."""
        return self.audit_signer.keyring()

    def record_refusal(
        self,
        *,
        workspace_id: str | None,
        actor: Actor,
        method: str,
        path: str,
        status: int,
        problem: str,
        detail: str,
    ) -> None:
        """Write the audit event for a refused request, in a transaction of its own (the
        request's own transaction, if any, has rolled back)."""
        with self.unit_of_work() as uow:
            uow.audit.append(
                workspace_id=workspace_id,
                actor=actor,
                action="request.refused",
                outcome="refused",
                details={
                    "method": method[:10],
                    "path": path[:512],
                    "status": status,
                    "problem": problem,
                    "detail": detail[:512],
                },
            )


def open_platform(
    db_url: str,
    audit_key_path: Path,
    *,
    migrate: bool = True,
    settings: PlatformSettings | None = None,
) -> Platform:
    """Open (and by default migrate) the database and load or create the audit key.

    Raises:
        UnsupportedDatabaseError: the URL names an unsupported backend.
        DatabaseUnreachableError: the database refuses the connection (no such server,
            role or database, a wrong password): one line, never a driver traceback.
        AuditKeyError: the audit key file is unreadable, malformed or too widely readable.
    """
    try:
        if migrate:
            run_migrations(db_url)
        database = Database(db_url)
    except sqlalchemy.exc.OperationalError as exc:
        # The driver's first line says why (e.g. 'role "x" does not exist'); the URL,
        # which may hold a password, is not repeated.
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise DatabaseUnreachableError(f"cannot use the database: {reason}") from None
    return Platform(database, AuditSigner.load_or_create(audit_key_path), settings=settings)
