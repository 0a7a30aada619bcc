"""Appending to the audit log inside the caller's transaction.

Chains: one per workspace (named by the workspace id) and one ``system`` chain for events
that belong to no workspace (a request naming an unknown API key, for instance). Per
workspace rather than global so that a workspace's auditors can verify their whole history
without seeing other tenants' events, and so that tenants do not contend for one lock.

Concurrency: an append locks its chain's head row (``SELECT ... FOR UPDATE`` on
PostgreSQL; on SQLite every transaction already holds the database write lock from
``BEGIN IMMEDIATE``), reads the last sequence number and hash, writes the event and moves
the head, all in the caller's transaction. Two transactions appending to one chain
therefore run one after the other and cannot fork it; if the caller's transaction rolls
back, the event and the head move roll back with the change they describe.

Every event is signed by the server's audit key, and every ``checkpoint_interval`` events
a signed checkpoint is written as well (checkpoints are compact anchors an auditor can copy
out of the database and later compare, which is what detects a rollback of the whole
database to an earlier state).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from shardvault.audit.encoding import (
    GENESIS_HASH,
    JsonValue,
    canonical_json,
    checkpoint_message,
    event_fields,
    event_hash,
    event_signature_message,
    head_message,
)
from shardvault.audit.keys import AuditSigner
from shardvault.store.models import (
    SYSTEM_CHAIN,
    AuditChainHead,
    AuditCheckpoint,
    AuditEvent,
    new_id,
)
from shardvault.store.repositories import insert_ignoring_conflict, transaction_scoped
from shardvault.store.types import utcnow

DEFAULT_CHECKPOINT_INTERVAL = 100
"""A signed checkpoint is written after every this many events of a chain."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who caused an event: an API key, the local command line, the server itself, or an
    unauthenticated caller (``actor_id`` then holds the key id it claimed, if any)."""

    type: str
    id: str | None = None

    @classmethod
    def api_key(cls, key_id: str) -> "Actor":
        return cls("api_key", key_id)

    @classmethod
    def system(cls) -> "Actor":
        return cls("system", None)

    @classmethod
    def cli(cls) -> "Actor":
        return cls("cli", None)

    @classmethod
    def cosigner(cls, party: int) -> "Actor":
        """A co-signer acting with its own identity key (pairing)."""
        return cls("cosigner", str(party))

    @classmethod
    def anonymous(cls, claimed_key_id: str | None = None) -> "Actor":
        return cls("anonymous", claimed_key_id)


def chain_of(workspace_id: str | None) -> str:
    """The chain an event of ``workspace_id`` goes to."""
    return workspace_id if workspace_id is not None else SYSTEM_CHAIN


_MOVED_HEADS = "shardvault.audit.moved_heads"
"""``session.info`` key: the chain heads moved since the session's last flush, with the
signer of their events."""


@event.listens_for(Session, "before_flush")
def _sign_moved_heads(session: Session, _context: object, _instances: object) -> None:
    """Sign every head an append moved, as it stands, before it is written: a head row
    always carries the server's signature over its own sequence number and hash."""
    moved = session.info.pop(_MOVED_HEADS, None)
    if not moved:
        return
    for chain, (head, signer) in moved.items():
        head.key_id = signer.key_id
        head.signature = signer.sign(head_message(chain, head.last_seq, head.last_hash))


@event.listens_for(Session, "after_rollback")
def _forget_moved_heads(session: Session) -> None:
    session.info.pop(_MOVED_HEADS, None)  # the moves were undone with the transaction


class AuditLog:
    """The append side of the audit log, bound to one session (the caller's transaction)."""

    def __init__(
        self,
        session: Session,
        signer: AuditSigner,
        *,
        checkpoint_interval: int = DEFAULT_CHECKPOINT_INTERVAL,
    ) -> None:
        if checkpoint_interval < 1:
            raise ValueError("checkpoint_interval must be at least 1")
        self._session = session
        self._signer = signer
        self._checkpoint_interval = checkpoint_interval

    def hold_head(self, workspace_id: str | None) -> None:
        """Lock the chain head of ``workspace_id`` now, as the transaction's first append
        would (once per transaction): for a caller that must take it before another lock."""
        self._lock_head(chain_of(workspace_id))

    def _lock_head(self, chain: str) -> AuditChainHead:
        # Locked until the transaction ends: a second event in it reuses the row.
        heads = transaction_scoped(self._session, "audit_chain_heads")
        head = heads.get(chain)
        if head is None:
            # With an autoflush, on purpose: the transaction's pending rows are written
            # (and the workspace row they reference key-share locked, on PostgreSQL)
            # before the head is locked. Taking the head first deadlocked against an
            # evaluation holding the workspace lock and waiting for the head.
            head = heads[chain] = self._read_and_lock_head(chain)
        return head

    def _read_and_lock_head(self, chain: str) -> AuditChainHead:
        query = (
            select(AuditChainHead)
            .where(AuditChainHead.chain == chain)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        head = self._session.scalar(query)
        if head is None:
            # The first event of a chain: create the head, tolerating a concurrent creator,
            # then lock whichever row won.
            insert_ignoring_conflict(
                self._session,
                AuditChainHead,
                {"chain": chain, "last_seq": 0, "last_hash": GENESIS_HASH, "updated_at": utcnow()},
            )
            head = self._session.scalar(query)
            assert head is not None
        return head

    def append(
        self,
        *,
        workspace_id: str | None,
        actor: Actor,
        action: str,
        outcome: str = "success",
        resource_type: str | None = None,
        resource_id: str | None = None,
        details: Mapping[str, JsonValue] | None = None,
        occurred_at: datetime | None = None,
    ) -> AuditEvent:
        """Write one event to the chain of ``workspace_id`` in the current transaction.

        Raises:
            AuditDetailsError: ``details`` holds a value with no canonical encoding.
        """
        if outcome not in ("success", "refused"):
            raise ValueError(f"outcome must be 'success' or 'refused', not {outcome!r}")
        details_text = canonical_json(dict(details or {}))
        chain = chain_of(workspace_id)
        head = self._lock_head(chain)
        seq = head.last_seq + 1
        event_id = new_id()
        when = occurred_at or utcnow()
        digest = event_hash(
            event_fields(
                event_id=event_id,
                chain=chain,
                seq=seq,
                workspace_id=workspace_id,
                occurred_at=when,
                actor_type=actor.type,
                actor_id=actor.id,
                action=action,
                outcome=outcome,
                resource_type=resource_type,
                resource_id=resource_id,
                details=details_text,
                prev_hash=head.last_hash,
            )
        )
        event = AuditEvent(
            id=event_id,
            chain=chain,
            seq=seq,
            workspace_id=workspace_id,
            occurred_at=when,
            actor_type=actor.type,
            actor_id=actor.id,
            action=action,
            outcome=outcome,
            resource_type=resource_type,
            resource_id=resource_id,
            details=details_text,
            prev_hash=head.last_hash,
            hash=digest,
            key_id=self._signer.key_id,
            signature=self._signer.sign(event_signature_message(chain, seq, digest)),
        )
        self._session.add(event)
        head.last_seq = seq
        head.last_hash = digest
        head.updated_at = utcnow()
        # The head is signed once, as it stands when the transaction next flushes
        # (:func:`_sign_moved_heads`), not once per event of a batch.
        self._session.info.setdefault(_MOVED_HEADS, {})[chain] = (head, self._signer)
        if seq % self._checkpoint_interval == 0:
            self._add_checkpoint(chain, seq, digest)
        # No flush here: the event and the head are written with the transaction's next
        # flush (its next query or its commit), several events in one batch.
        return event

    def checkpoint(self, workspace_id: str | None) -> AuditCheckpoint | None:
        """Write a signed checkpoint at the chain's current head (none for an empty chain)."""
        chain = chain_of(workspace_id)
        head = self._lock_head(chain)
        if head.last_seq == 0:
            return None
        existing = self._session.scalar(
            select(AuditCheckpoint).where(
                AuditCheckpoint.chain == chain, AuditCheckpoint.seq == head.last_seq
            )
        )
        if existing is not None:
            return existing
        checkpoint = self._add_checkpoint(chain, head.last_seq, head.last_hash)
        self._session.flush()
        return checkpoint

    def _add_checkpoint(self, chain: str, seq: int, digest: str) -> AuditCheckpoint:
        created_at = utcnow()
        checkpoint = AuditCheckpoint(
            id=new_id(),
            chain=chain,
            seq=seq,
            hash=digest,
            created_at=created_at,
            key_id=self._signer.key_id,
            signature=self._signer.sign(checkpoint_message(chain, seq, digest, created_at)),
        )
        self._session.add(checkpoint)
        return checkpoint
