"""Signed price reports the server holds for its co-signers (docs/policy.md, "Prices").

The server is not trusted with prices: it stores what a price key signed, newest first
per (network, asset, signer), and forwards the newest to the co-signers, which verify
each report themselves. The ``report`` column holds the transport form exactly as it
was submitted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shardvault.store.models import Base, new_id
from shardvault.store.types import UTCDateTime, utcnow


class PriceReportRow(Base):
    """The newest report one price key signed for one asset of one network."""

    __tablename__ = "price_reports"
    __table_args__ = (
        UniqueConstraint("workspace_id", "id"),
        UniqueConstraint("workspace_id", "network", "asset", "signer"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    network: Mapped[str] = mapped_column(String(64))
    asset: Mapped[str] = mapped_column(String(64))
    signer: Mapped[str] = mapped_column(String(64))
    price: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(64))
    observed_at: Mapped[int] = mapped_column(BigInteger)
    report: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
