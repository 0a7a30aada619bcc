"""Remote co-signers a workspace paired, and the one-time tokens that pair them.

A pairing record is what the *server* believes about a co-signer (its party id and
public identity, as the co-signer presented it with a proof of possession). It is not
trusted by the co-signers themselves: they take their peers only from the directory the
admin quorum signs into a policy bundle (docs/cosigner.md, "Pairing"). Pairing tokens
are stored as SHA-256 hashes only; a token is used once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shardvault.store.models import Base, new_id
from shardvault.store.types import UTCDateTime, utcnow


class PairedCosigner(Base):
    """A co-signer paired with a workspace (one row per party id while paired)."""

    __tablename__ = "paired_cosigners"
    __table_args__ = (
        UniqueConstraint("workspace_id", "id"),
        UniqueConstraint("workspace_id", "party"),
        UniqueConstraint("workspace_id", "signing_key"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    party: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(100))
    signing_key: Mapped[str] = mapped_column(String(64))
    encryption_key: Mapped[str] = mapped_column(String(64))
    binding: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    """The shardvault version the co-signer reported when it paired."""
    details: Mapped[str] = mapped_column(Text, default="{}")
    """What else it reported at pairing (unlock mode, attestation), as JSON."""
    paired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CosignerPairingToken(Base):
    """A one-time token an admin made for pairing a co-signer (its hash only)."""

    __tablename__ = "cosigner_pairing_tokens"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    party: Mapped[int] = mapped_column(Integer)
    """The party id the token pairs (fixed by the admin who made it)."""
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
