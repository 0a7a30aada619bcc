"""Reading and verifying a workspace's audit trail."""

import base64
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from shardvault.audit import AuditChainBroken, AuditKeyring, chain_of, verify_chain
from shardvault.service.context import Principal
from shardvault.service.errors import ValidationError
from shardvault.service.pagination import page_of, page_size
from shardvault.service.rbac import Permission, require
from shardvault.service.uow import UnitOfWork
from shardvault.service.views import Page
from shardvault.store.models import AuditEvent


@dataclass(frozen=True, slots=True)
class AuditEventView:
    id: str
    seq: int
    occurred_at: datetime
    actor_type: str
    actor_id: str | None
    action: str
    outcome: str
    resource_type: str | None
    resource_id: str | None
    details: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class VerificationOutcome:
    """The result of verifying one chain: ``valid`` with counts, or where it broke."""

    chain: str
    valid: bool
    events: int
    checkpoints: int
    last_seq: int
    broken_at_seq: int | None = None
    broken_event_id: str | None = None
    problem: str | None = None
    detail: str | None = None


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def _after(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        prefix, _, number = text.partition(":")
        seq = int(number)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("cursor", "not a cursor this server issued") from None
    if prefix != "seq" or seq < 0:
        raise ValidationError("cursor", "not a cursor this server issued")
    return seq


def list_events(
    uow: UnitOfWork, principal: Principal, *, limit: int = 100, cursor: str | None = None
) -> Page[AuditEventView]:
    """A page of the workspace's audit events in chain order.

    Raises:
        Forbidden: the role may not read the audit trail.
        ValidationError: a bad limit or cursor.
    """
    require(principal, Permission.AUDIT_READ)
    size = page_size(limit)
    rows = uow.session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.chain == chain_of(principal.workspace_id),
            AuditEvent.workspace_id == principal.workspace_id,
            AuditEvent.seq > _after(cursor),
        )
        .order_by(AuditEvent.seq)
        .limit(size + 1)
    ).all()

    def view(r: AuditEvent) -> AuditEventView:
        return AuditEventView(
            id=r.id,
            seq=r.seq,
            occurred_at=r.occurred_at,
            actor_type=r.actor_type,
            actor_id=r.actor_id,
            action=r.action,
            outcome=r.outcome,
            resource_type=r.resource_type,
            resource_id=r.resource_id,
            details=r.details,
            prev_hash=r.prev_hash,
            hash=r.hash,
        )

    return page_of(rows, size, view, lambda item: _cursor(item.seq))


def verify_workspace_chain(
    uow: UnitOfWork, principal: Principal, keyring: AuditKeyring
) -> VerificationOutcome:
    """Verify the caller's workspace chain; a broken chain is a result, not an error.

    Raises:
        Forbidden: the role may not read the audit trail.
    """
    require(principal, Permission.AUDIT_READ)
    return verify_one(uow, chain_of(principal.workspace_id), keyring)


def verify_one(uow: UnitOfWork, chain: str, keyring: AuditKeyring) -> VerificationOutcome:
    """Verify any chain (local tools use this for every chain in the database)."""
    try:
        report = verify_chain(uow.session, chain, keyring)
    except AuditChainBroken as broken:
        return VerificationOutcome(
            chain=chain,
            valid=False,
            events=0,
            checkpoints=0,
            last_seq=0,
            broken_at_seq=broken.seq,
            broken_event_id=broken.event_id,
            problem=broken.kind,
            detail=broken.detail,
        )
    return VerificationOutcome(
        chain=chain,
        valid=True,
        events=report.events,
        checkpoints=report.checkpoints,
        last_seq=report.last_seq,
    )
