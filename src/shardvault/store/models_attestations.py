"""Address attestations: what each co-signer signed about a wallet address.

A row holds one co-signer's signed statement that the address is the vault key's at its
path (:mod:`shardvault.policy.address_attestation`), as the co-signer returned it: the
statement (canonical JSON), the signature and the identity that signed. The server keeps
it to hand to clients, who verify it themselves against the co-signers they pinned; it
is evidence, not a decision the server makes. One row per (address, party): attesting
again replaces a party's row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shardvault.store.models import Base, new_id
from shardvault.store.types import UTCDateTime, utcnow


class AddressAttestation(Base):
    """One co-signer's signed attestation of one address."""

    __tablename__ = "address_attestations"
    __table_args__ = (
        UniqueConstraint("workspace_id", "id"),
        UniqueConstraint("address_id", "party"),
        ForeignKeyConstraint(
            ["workspace_id", "address_id"], ["addresses.workspace_id", "addresses.id"]
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    address_id: Mapped[str] = mapped_column(String(36))
    party: Mapped[int] = mapped_column(Integer)
    signing_key: Mapped[str] = mapped_column(String(64))
    encryption_key: Mapped[str] = mapped_column(String(64))
    binding: Mapped[str] = mapped_column(String(128))
    statement: Mapped[str] = mapped_column(Text)
    """The statement's canonical JSON, as signed."""
    signature: Mapped[str] = mapped_column(String(128))
    attested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
