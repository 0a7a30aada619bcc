"""Vault creations: a vault request's key generations as a job that outlives the request.

``POST /v1/vaults`` records a row here (one per workspace and Idempotency-Key) before
any key generation runs; the server's runner (:mod:`shardvault.service.vault_creations`)
runs the job and, in one transaction, records the vault and marks the row ``finished``.
A server that restarts finds the rows still ``generating`` and runs them again with new
sessions (a distributed key generation cannot resume mid-round); ``attempts`` is the
fencing token: only the attempt a row names may finish it, so an older attempt that
comes back late changes nothing and no vault is recorded twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shardvault.store.models import Base, new_id
from shardvault.store.types import UTCDateTime, utcnow


class VaultCreationJob(Base):
    """One vault request's key generations and their outcome."""

    __tablename__ = "vault_creations"
    __table_args__ = (
        UniqueConstraint("workspace_id", "id"),
        UniqueConstraint("workspace_id", "idempotency_key"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    """The request's fingerprint: the same key with another body is refused."""
    vault_id: Mapped[str] = mapped_column(String(36))
    """The id the vault gets (kept across attempts; its shares' address at co-signers)."""
    name: Mapped[str] = mapped_column(String(64))
    schemes: Mapped[str] = mapped_column(Text)
    """JSON list of the schemes, in the request's order."""
    min_signers: Mapped[int] = mapped_column(Integer)
    max_signers: Mapped[int] = mapped_column(Integer)
    initiator: Mapped[str] = mapped_column(String(320))
    """The asking user's email: what the co-signers' policy sees."""
    api_key_id: Mapped[str] = mapped_column(String(36))
    user_id: Mapped[str] = mapped_column(String(36))
    role: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    """``generating``, ``finished`` or ``failed``."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Why the last attempt failed (a problem's detail; never a secret)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
