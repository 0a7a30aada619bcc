"""The unit of work: one database transaction, its repositories and its audit log.

A service function receives a :class:`UnitOfWork`, changes state through its repositories
and records what it did with ``uow.audit.append(...)``; the change and its audit event
commit together or not at all. Repositories are handed out per workspace, so a service
cannot reach another tenant's rows by accident.

On SQLite the transaction starts with ``BEGIN IMMEDIATE`` (writers run one at a time); on
PostgreSQL it runs at READ COMMITTED and serializes where it must through row locks and
unique keys (audit chain head, idempotency keys, nonces).
"""

from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session

from shardvault.audit import AuditLog, AuditSigner
from shardvault.store import Database
from shardvault.store.repositories import (
    ApiKeyRepository,
    CredentialLookup,
    IdempotencyRepository,
    NonceRepository,
    UserRepository,
    WorkspaceRepository,
)


class UnitOfWork:
    """A transaction: commits when the ``with`` block ends normally, else rolls back.

    ``read_only=True``: a snapshot for reads (on SQLite it neither takes nor waits for the
    write lock); pending writes at its end are rolled back and raise.
    """

    def __init__(
        self,
        database: Database,
        signer: AuditSigner,
        *,
        checkpoint_interval: int,
        read_only: bool = False,
    ) -> None:
        self._database = database
        self._read_only = read_only
        self._signer = signer
        self._checkpoint_interval = checkpoint_interval
        self._session: Session | None = None
        self._audit: AuditLog | None = None
        self._after_commit: list[Callable[[], None]] = []

    def __enter__(self) -> Self:
        self._session = (
            self._database.new_read_session() if self._read_only else self._database.new_session()
        )
        self._session.begin()
        self._audit = AuditLog(
            self._session, self._signer, checkpoint_interval=self._checkpoint_interval
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            if self._read_only and (session.new or session.dirty or session.deleted):
                session.rollback()
                if exc_type is None:
                    raise RuntimeError("a read-only unit of work has pending writes")
            elif exc_type is None:
                # (A read-only snapshot ends with a commit too: nothing is written, and
                # unlike a rollback it leaves the loaded objects readable.)
                session.commit()
                for callback in self._after_commit:
                    callback()
            else:
                session.rollback()
        finally:
            session.close()
            self._session = None
            self._audit = None
            self._after_commit = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this unit of work has committed (not on a rollback).
        Callbacks must not raise (they only signal)."""
        self._after_commit.append(callback)

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("the unit of work is not open")
        return self._session

    @property
    def audit(self) -> AuditLog:
        if self._audit is None:
            raise RuntimeError("the unit of work is not open")
        return self._audit

    def workspaces(self) -> WorkspaceRepository:
        return WorkspaceRepository(self.session)

    def users(self, workspace_id: str) -> UserRepository:
        return UserRepository(self.session, workspace_id)

    def api_keys(self, workspace_id: str) -> ApiKeyRepository:
        return ApiKeyRepository(self.session, workspace_id)

    def nonces(self, workspace_id: str) -> NonceRepository:
        return NonceRepository(self.session, workspace_id)

    def idempotency(self, workspace_id: str) -> IdempotencyRepository:
        return IdempotencyRepository(self.session, workspace_id)

    def credentials(self) -> CredentialLookup:
        return CredentialLookup(self.session)
