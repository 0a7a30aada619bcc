"""Repositories: the only code that builds queries against the tenant tables.

Every repository except :class:`WorkspaceRepository` and :class:`CredentialLookup` is bound
to one workspace when it is created and adds ``workspace_id = :bound`` to every query, so a
caller cannot read or change another tenant's rows through it. :class:`CredentialLookup`
is the one deliberate cross-tenant read: authentication must find an API key by its id
before it knows the workspace.

Repositories never commit; the caller's unit of work does.
"""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shardvault.store.models import (
    ApiKey,
    Base,
    IdempotencyRecord,
    KeyAlgorithm,
    PrincipalStatus,
    Role,
    UsedNonce,
    User,
    Workspace,
    new_id,
)
from shardvault.store.types import utcnow


def single_writer(session: Session) -> bool:
    """Whether ``session``'s database runs one writer at a time (SQLite, from ``BEGIN
    IMMEDIATE``): then there are no row locks to order, and none to take."""
    return session.get_bind().dialect.name == "sqlite"


def defers_writes(session: Session) -> bool:
    """Whether ``session``'s pending rows may wait for its transaction's last flush.

    On SQLite (one writer at a time, from ``BEGIN IMMEDIATE``) they may: rows written
    together cost one flush, and no lock order can deadlock. On PostgreSQL each write
    takes row locks (and key-share locks on the rows it references) when it is flushed,
    so a flush moved later changes the order in which a transaction takes its locks;
    deferring them there made the pipeline's transactions deadlock (each was retried,
    but a burst slowed to a crawl), so PostgreSQL keeps writing them as they come.
    """
    return single_writer(session)


@contextmanager
def deferred_writes(session: Session) -> Iterator[None]:
    """``session.no_autoflush`` where :func:`defers_writes`, else nothing."""
    if defers_writes(session):
        with session.no_autoflush:
            yield
    else:
        yield


def transaction_scoped(session: Session, name: str) -> dict[Any, Any]:
    """A dict that lives as long as ``session``'s current transaction, for rows that
    transaction holds locked (their values cannot change under it until it ends, so a
    second read in the same transaction can be skipped). A new transaction of the same
    session gets an empty dict."""
    current = session.get_transaction()
    key = f"shardvault.transaction_scoped.{name}"
    held = session.info.get(key)
    if held is None or held[0] is not current:
        held = (current, {})
        session.info[key] = held
    return held[1]


def flush_unless_deferred(session: Session) -> None:
    """Write ``session``'s pending rows now, unless :func:`defers_writes`."""
    if not defers_writes(session):
        session.flush()


_INSERT_IGNORING: dict[tuple[str, str], Any] = {}
"""``INSERT ... ON CONFLICT DO NOTHING RETURNING <key>`` per (dialect, table), built once:
executed with the row as parameters, its compiled form comes from the engine's cache
without the statement being rebuilt (and its cache key recomputed) for every row."""


def _insert_ignoring(dialect: str, table: Table) -> Any:
    statement = _INSERT_IGNORING.get((dialect, table.name))
    if statement is None:
        key_column = next(iter(table.primary_key.columns))
        module = postgresql if dialect == "postgresql" else sqlite
        # RETURNING rather than rowcount: drivers report -1 for INSERT ... ON CONFLICT.
        statement = module.insert(table).on_conflict_do_nothing().returning(key_column)
        _INSERT_IGNORING[(dialect, table.name)] = statement
    return statement


def insert_ignoring_conflict(
    session: Session, model: type[Base], values: Mapping[str, object]
) -> bool:
    """Insert one row unless a unique key already holds it; return whether it was inserted.

    On PostgreSQL a concurrent, uncommitted insert of the same key makes this wait for that
    transaction to finish (then it inserts nothing if it committed), which is what makes
    nonces and idempotency keys race-free.
    """
    table = model.__table__
    assert isinstance(table, Table)
    statement = _insert_ignoring(session.get_bind().dialect.name, table)
    return session.execute(statement, dict(values)).first() is not None


def insert_many_ignoring_conflict(
    session: Session, model: type[Base], rows: Sequence[Mapping[str, object]]
) -> None:
    """:func:`insert_ignoring_conflict` of several rows in one statement."""
    if not rows:
        return
    table = model.__table__
    assert isinstance(table, Table)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(postgresql.insert(table).values(list(rows)).on_conflict_do_nothing())
    else:
        session.execute(sqlite.insert(table).values(list(rows)).on_conflict_do_nothing())


class WorkspaceRepository:
    """Workspaces, the tenant roots."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, name: str) -> Workspace:
        workspace = Workspace(name=name, created_at=utcnow())
        self._session.add(workspace)
        self._session.flush()
        return workspace

    def get(self, workspace_id: str) -> Workspace | None:
        return self._session.get(Workspace, workspace_id)

    def share(self, workspace_id: str) -> None:
        """Take the key-share lock on the workspace row (PostgreSQL's ``FOR KEY SHARE``,
        what inserting a row that references it takes), so that a caller can take it
        before its other locks rather than at its first insert; nothing on SQLite."""
        if single_writer(self._session):
            return
        self._session.execute(
            select(Workspace.id)
            .where(Workspace.id == workspace_id)
            .with_for_update(read=True, key_share=True)
        )

    def serialize(self, workspace_id: str) -> None:
        """Take PostgreSQL's ``FOR NO KEY UPDATE`` lock on the workspace row: callers
        that take it run one at a time per workspace, while rows that reference the
        workspace can still be inserted (their foreign-key check takes ``FOR KEY SHARE``,
        which this lock does not block; :meth:`lock` does). Nothing on SQLite."""
        if single_writer(self._session):
            return
        self._session.execute(
            select(Workspace.id).where(Workspace.id == workspace_id).with_for_update(key_share=True)
        )

    def lock(self, workspace_id: str) -> Workspace | None:
        """Read the workspace row with ``FOR UPDATE``: changes that must see every other
        change of the workspace (the last-owner rule) take this lock first."""
        return self._session.scalar(
            select(Workspace)
            .where(Workspace.id == workspace_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )


class UserRepository:
    """Users of one workspace."""

    def __init__(self, session: Session, workspace_id: str) -> None:
        self._session = session
        self.workspace_id = workspace_id

    def add(self, *, name: str, email: str, role: Role) -> User:
        user = User(
            workspace_id=self.workspace_id,
            name=name,
            email=email,
            role=role,
            status=PrincipalStatus.ACTIVE,
            created_at=utcnow(),
        )
        self._session.add(user)
        self._session.flush()
        return user

    def get(self, user_id: str) -> User | None:
        # From the session's identity map when it holds the row (no query); the rows
        # read are held for the transaction, or the map (weak) could drop one between
        # two transfers of a batch and read it again.
        held = transaction_scoped(self._session, "users")
        user = held.get(user_id)
        if user is None:
            user = held[user_id] = self._session.get(User, user_id)
        return user if user is not None and user.workspace_id == self.workspace_id else None

    def get_by_email(self, email: str) -> User | None:
        return self._session.scalar(
            select(User).where(User.workspace_id == self.workspace_id, User.email == email)
        )

    def list(self, *, limit: int, after_id: str | None = None) -> Sequence[User]:
        query = select(User).where(User.workspace_id == self.workspace_id)
        if after_id is not None:
            query = query.where(User.id > after_id)
        return self._session.scalars(query.order_by(User.id).limit(limit)).all()


class ApiKeyRepository:
    """API keys of one workspace."""

    def __init__(self, session: Session, workspace_id: str) -> None:
        self._session = session
        self.workspace_id = workspace_id

    def add(
        self,
        *,
        user_id: str,
        name: str,
        algorithm: KeyAlgorithm,
        public_key_pem: str,
        role: Role,
    ) -> ApiKey:
        key = ApiKey(
            workspace_id=self.workspace_id,
            user_id=user_id,
            name=name,
            algorithm=algorithm,
            public_key_pem=public_key_pem,
            role=role,
            status=PrincipalStatus.ACTIVE,
            created_at=utcnow(),
        )
        self._session.add(key)
        self._session.flush()
        return key

    def get(self, key_id: str) -> ApiKey | None:
        return self._session.scalar(
            select(ApiKey).where(ApiKey.workspace_id == self.workspace_id, ApiKey.id == key_id)
        )

    def list(self, *, limit: int, after_id: str | None = None) -> Sequence[ApiKey]:
        query = select(ApiKey).where(ApiKey.workspace_id == self.workspace_id)
        if after_id is not None:
            query = query.where(ApiKey.id > after_id)
        return self._session.scalars(query.order_by(ApiKey.id).limit(limit)).all()

    def count_active_with_role(self, role: Role) -> int:
        """How many active keys of active users hold ``role``."""
        return int(
            self._session.scalar(
                select(func.count())
                .select_from(ApiKey)
                .join(
                    User, (User.workspace_id == ApiKey.workspace_id) & (User.id == ApiKey.user_id)
                )
                .where(
                    ApiKey.workspace_id == self.workspace_id,
                    ApiKey.role == role,
                    ApiKey.status == PrincipalStatus.ACTIVE,
                    User.status == PrincipalStatus.ACTIVE,
                )
            )
            or 0
        )

    def list_for_user(self, user_id: str) -> Sequence[ApiKey]:
        return self._session.scalars(
            select(ApiKey)
            .where(ApiKey.workspace_id == self.workspace_id, ApiKey.user_id == user_id)
            .order_by(ApiKey.id)
        ).all()


class CredentialLookup:
    """The one cross-tenant read: find an API key by id to authenticate a request."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def api_key(self, key_id: str) -> ApiKey | None:
        return self._session.get(ApiKey, key_id)


class NonceRepository:
    """Request-JWT nonces already used by the keys of one workspace."""

    def __init__(self, session: Session, workspace_id: str) -> None:
        self._session = session
        self.workspace_id = workspace_id

    def remember(self, *, api_key_id: str, nonce: str, expires_at: datetime) -> bool:
        """Record ``nonce`` for ``api_key_id``; return ``False`` if it was already used."""
        return insert_ignoring_conflict(
            self._session,
            UsedNonce,
            {
                "api_key_id": api_key_id,
                "nonce": nonce,
                "workspace_id": self.workspace_id,
                "expires_at": expires_at,
            },
        )

    def used(self, *, api_key_id: str, nonce: str) -> bool:
        """Whether ``nonce`` is recorded for ``api_key_id``."""
        return self._session.get(UsedNonce, {"api_key_id": api_key_id, "nonce": nonce}) is not None


def purge_expired_nonces(session: Session, now: datetime) -> int:
    """Delete every nonce whose JWT has expired (across workspaces); return how many."""
    result = session.execute(delete(UsedNonce).where(UsedNonce.expires_at < now))
    return int(result.rowcount)  # type: ignore[attr-defined]


_IDEMPOTENCY = cast(Table, IdempotencyRecord.__table__)


class IdempotencyRepository:
    """Stored first responses of one workspace, by idempotency key."""

    def __init__(self, session: Session, workspace_id: str) -> None:
        self._session = session
        self.workspace_id = workspace_id

    def claim(self, *, key: str, method: str, path: str, request_hash: str) -> bool:
        """Reserve ``key`` in this transaction; ``False`` if a committed record holds it.

        A concurrent transaction that reserved the same key makes this wait until that
        transaction ends (row lock on PostgreSQL, the write lock on SQLite).
        """
        return insert_ignoring_conflict(
            self._session,
            IdempotencyRecord,
            {
                "id": new_id(),
                "workspace_id": self.workspace_id,
                "key": key,
                "method": method,
                "path": path,
                "request_hash": request_hash,
                "response_status": 0,
                "response_body": "",
                "created_at": utcnow(),
            },
        )

    def get(self, key: str) -> IdempotencyRecord | None:
        return self._session.scalar(
            select(IdempotencyRecord)
            .where(
                IdempotencyRecord.workspace_id == self.workspace_id,
                IdempotencyRecord.key == key,
            )
            .execution_options(populate_existing=True)
        )

    def complete(self, key: str, *, response_status: int, response_body: str) -> None:
        """Store the response of the request that claimed ``key`` in this transaction.
        One UPDATE, without an autoflush: the claim's row was inserted by a statement,
        and the operation's pending rows are written by the commit, with this."""
        records = _IDEMPOTENCY.c
        with deferred_writes(self._session):
            result = self._session.execute(
                update(_IDEMPOTENCY)
                .where(records.workspace_id == self.workspace_id, records.key == key)
                .values(response_status=response_status, response_body=response_body)
            )
        if result.rowcount != 1:  # type: ignore[attr-defined]  # pragma: no cover
            raise LookupError(f"idempotency key {key!r} was not claimed in this transaction")
