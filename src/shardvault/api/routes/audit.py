"""The workspace's audit trail: events (cursor-paginated) and verification."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from shardvault.api.deps import authorized, get_platform
from shardvault.api.schemas import AuditEventOut, AuditEventPage, AuditVerificationOut
from shardvault.service import audit_trail
from shardvault.service.context import Principal
from shardvault.service.pagination import MAX_PAGE_SIZE
from shardvault.service.platform import Platform
from shardvault.service.rbac import Permission

router = APIRouter(prefix="/audit", tags=["audit"])

PlatformDep = Annotated[Platform, Depends(get_platform)]
AuditReader = Annotated[Principal, Depends(authorized(Permission.AUDIT_READ))]


@router.get("/events", response_model=AuditEventPage)
def list_events(
    platform: PlatformDep,
    principal: AuditReader,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AuditEventPage:
    """Audit events of the workspace in chain order (oldest first)."""
    with platform.unit_of_work(read_only=True) as uow:
        page = audit_trail.list_events(uow, principal, limit=limit, cursor=cursor)
    return AuditEventPage(
        data=[AuditEventOut.of(e) for e in page.items], next_cursor=page.next_cursor
    )


@router.get("/verify", response_model=AuditVerificationOut)
def verify(platform: PlatformDep, principal: AuditReader) -> AuditVerificationOut:
    """Verify the workspace's hash chain, its signatures and checkpoints; a broken chain
    is reported (``valid: false`` with the sequence number and event id), not an error."""
    with platform.unit_of_work(read_only=True) as uow:
        outcome = audit_trail.verify_workspace_chain(uow, principal, platform.keyring())
    return AuditVerificationOut.of(outcome)
