"""Verification of audit chains: detects any edited, deleted, inserted or reordered event.

For each event in sequence order the verifier checks, and on the first failure raises
:class:`~shardvault.audit.errors.AuditChainBroken` naming the sequence number and event:

1. the sequence continues without a gap (a gap is a deleted event: ``missing``);
2. the stored hash equals the hash recomputed from the stored fields (``edited``; a moved
   event fails here too, because its sequence number is hashed);
3. the hash carries the audit key's signature (``forged``: someone who knows the encoding
   but not the key recomputed or invented an event);
4. ``prev_hash`` equals the previous event's hash (``relinked``).

Then it checks the head record (its signature, and that it points at the last event, so
deleting the newest events is ``truncated``) and every checkpoint (its signature, and that
the event it names still has that hash).
"""

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from shardvault.audit.encoding import (
    GENESIS_HASH,
    checkpoint_message,
    event_fields,
    event_hash,
    event_signature_message,
    head_message,
)
from shardvault.audit.errors import AuditChainBroken, AuditSignatureInvalid
from shardvault.audit.keys import AuditKeyring
from shardvault.store.models import AuditChainHead, AuditCheckpoint, AuditEvent

_BATCH = 1000


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What a successful verification covered."""

    chain: str
    events: int
    last_seq: int
    last_hash: str
    checkpoints: int


def _events(session: Session, chain: str) -> Iterator[AuditEvent]:
    after = 0
    while True:
        batch = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain == chain, AuditEvent.seq > after)
            .order_by(AuditEvent.seq)
            .limit(_BATCH)
        ).all()
        if not batch:
            return
        yield from batch
        after = batch[-1].seq


def recompute_hash(event: AuditEvent) -> str:
    """The hash ``event``'s stored fields should have."""
    return event_hash(
        event_fields(
            event_id=event.id,
            chain=event.chain,
            seq=event.seq,
            workspace_id=event.workspace_id,
            occurred_at=event.occurred_at,
            actor_type=event.actor_type,
            actor_id=event.actor_id,
            action=event.action,
            outcome=event.outcome,
            resource_type=event.resource_type,
            resource_id=event.resource_id,
            details=event.details,
            prev_hash=event.prev_hash,
        )
    )


def verify_chain(session: Session, chain: str, keyring: AuditKeyring) -> ChainReport:
    """Verify one chain from its first event to its head and against its checkpoints.

    Raises:
        AuditChainBroken: the first place where the chain is not what was written.
    """
    expected_seq = 1
    previous_hash = GENESIS_HASH
    last_id: str | None = None
    for event in _events(session, chain):
        if event.seq != expected_seq:
            missing = (
                f"seq {expected_seq}"
                if event.seq == expected_seq + 1
                else f"seq {expected_seq}..{event.seq - 1}"
            )
            raise AuditChainBroken(
                chain,
                expected_seq,
                event.id,
                "missing",
                f"{missing} deleted: the next stored event has seq {event.seq}",
            )
        if recompute_hash(event) != event.hash:
            raise AuditChainBroken(
                chain, event.seq, event.id, "edited", "stored fields do not match the event hash"
            )
        try:
            keyring.verify(
                event.key_id, event_signature_message(chain, event.seq, event.hash), event.signature
            )
        except AuditSignatureInvalid as exc:
            raise AuditChainBroken(chain, event.seq, event.id, "forged", str(exc)) from None
        if event.prev_hash != previous_hash:
            raise AuditChainBroken(
                chain,
                event.seq,
                event.id,
                "relinked",
                f"prev_hash does not equal the hash of seq {event.seq - 1}",
            )
        previous_hash = event.hash
        last_id = event.id
        expected_seq += 1
    last_seq = expected_seq - 1

    head = session.get(AuditChainHead, chain, populate_existing=True)
    if head is None:
        if last_seq:
            raise AuditChainBroken(chain, last_seq, last_id, "checkpoint", "chain head is gone")
    else:
        if head.key_id is None or head.signature is None:
            raise AuditChainBroken(chain, head.last_seq, None, "checkpoint", "head is unsigned")
        try:
            keyring.verify(
                head.key_id, head_message(chain, head.last_seq, head.last_hash), head.signature
            )
        except AuditSignatureInvalid as exc:
            raise AuditChainBroken(
                chain, head.last_seq, None, "checkpoint", f"head record: {exc}"
            ) from None
        if head.last_seq > last_seq:
            raise AuditChainBroken(
                chain,
                last_seq + 1,
                None,
                "truncated",
                f"the head says the chain ends at seq {head.last_seq} but the last stored "
                f"event has seq {last_seq}",
            )
        if head.last_seq < last_seq or head.last_hash != previous_hash:
            raise AuditChainBroken(
                chain,
                last_seq,
                last_id,
                "truncated" if head.last_seq < last_seq else "edited",
                "the signed head does not point at the last stored event",
            )

    checkpoints = session.scalars(
        select(AuditCheckpoint).where(AuditCheckpoint.chain == chain).order_by(AuditCheckpoint.seq)
    ).all()
    for checkpoint in checkpoints:
        try:
            keyring.verify(
                checkpoint.key_id,
                checkpoint_message(chain, checkpoint.seq, checkpoint.hash, checkpoint.created_at),
                checkpoint.signature,
            )
        except AuditSignatureInvalid as exc:
            raise AuditChainBroken(
                chain, checkpoint.seq, None, "checkpoint", f"checkpoint: {exc}"
            ) from None
        if checkpoint.seq > last_seq:
            raise AuditChainBroken(
                chain,
                last_seq + 1,
                None,
                "truncated",
                f"a signed checkpoint names seq {checkpoint.seq}, after the last stored event",
            )
        stored = session.scalar(
            select(AuditEvent.hash).where(
                AuditEvent.chain == chain, AuditEvent.seq == checkpoint.seq
            )
        )
        if stored != checkpoint.hash:
            raise AuditChainBroken(
                chain,
                checkpoint.seq,
                None,
                "checkpoint",
                "the event at this seq does not have the hash the checkpoint signed",
            )
    return ChainReport(
        chain=chain,
        events=last_seq,
        last_seq=last_seq,
        last_hash=previous_hash,
        checkpoints=len(checkpoints),
    )


def all_chains(session: Session) -> list[str]:
    """Every chain that has a head or an event, sorted."""
    heads = set(session.scalars(select(AuditChainHead.chain)).all())
    events = set(session.scalars(select(AuditEvent.chain).distinct()).all())
    return sorted(heads | events)
