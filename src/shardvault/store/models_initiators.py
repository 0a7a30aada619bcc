"""The initiator's own signed request, kept with the transaction it created.

A transfer created through ``POST /v1/transactions`` keeps the request exactly as the
initiator signed it: the JWT from its ``Authorization`` header and the raw body. Neither
is a secret (the token is a signed statement whose nonce the server has already spent);
the server forwards both with every signing request of the transfer, and each co-signer
verifies them under the initiator keys of its signed policy (docs/cosigner.md, "The
initiator's signed request").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, ForeignKeyConstraint, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shardvault.store.models import Base, new_id
from shardvault.store.types import UTCDateTime, utcnow


class TransactionInitiatorRequest(Base):
    """The signed create request of one transaction (at most one per transaction)."""

    __tablename__ = "initiator_requests"
    __table_args__ = (
        UniqueConstraint("workspace_id", "transaction_id"),
        ForeignKeyConstraint(
            ["workspace_id", "transaction_id"], ["transactions.workspace_id", "transactions.id"]
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    transaction_id: Mapped[str] = mapped_column(String(36))
    api_key_id: Mapped[str] = mapped_column(String(64))
    token: Mapped[str] = mapped_column(Text)
    """The request's JWT, as it arrived."""
    body: Mapped[str] = mapped_column(Text)
    """The raw request body, base64 (RFC 4648 §4), byte for byte as it arrived."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
