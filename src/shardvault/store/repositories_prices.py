"""Signed price reports of one workspace (:mod:`shardvault.store.models_prices`).

Repositories never commit; the caller's unit of work does.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from shardvault.store.models_prices import PriceReportRow


class PriceReportRepository:
    """The newest report per (network, asset, signer) of one workspace."""

    def __init__(self, session: Session, workspace_id: str) -> None:
        self._session = session
        self.workspace_id = workspace_id

    def held(
        self, network: str, asset: str, signer: str, *, lock: bool = False
    ) -> PriceReportRow | None:
        """The report held for (``network``, ``asset``, ``signer``), if any."""
        query = select(PriceReportRow).where(
            PriceReportRow.workspace_id == self.workspace_id,
            PriceReportRow.network == network,
            PriceReportRow.asset == asset,
            PriceReportRow.signer == signer,
        )
        return self._session.scalar(query.with_for_update() if lock else query)

    def add(self, row: PriceReportRow) -> PriceReportRow:
        row.workspace_id = self.workspace_id
        self._session.add(row)
        self._session.flush()
        return row

    def list(self) -> Sequence[PriceReportRow]:
        """Every report held, by network, asset and signer."""
        return self._session.scalars(
            select(PriceReportRow)
            .where(PriceReportRow.workspace_id == self.workspace_id)
            .order_by(PriceReportRow.network, PriceReportRow.asset, PriceReportRow.signer)
        ).all()
