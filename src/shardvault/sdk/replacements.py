"""Replacing a sent transaction through the SDK: speed it up, or cancel it on chain
(EVM), and follow its replacements (docs/transactions.md "Replacing a sent
transaction")."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from shardvault.sdk.custody import AsyncCustodyMixin, CustodyMixin, _Model


class Replacement(_Model):
    id: str
    transaction_id: str
    seq: int
    mode: str
    status: str
    status_reason: str | None
    replaces_tx_hash: str
    tx_hash: str | None
    fee: dict[str, object] | None
    signing_attempts: int
    created_at: datetime
    updated_at: datetime


class ReplacementList(_Model):
    data: list[Replacement]


class AsyncReplacementsMixin(AsyncCustodyMixin):
    """Replacement methods of :class:`~shardvault.sdk.client.AsyncShardvaultClient`."""

    async def replace_transaction(
        self,
        transaction_id: str,
        *,
        mode: Literal["speed_up", "cancel"],
        idempotency_key: str | None = None,
    ) -> Replacement:
        """Ask for a replacement of a transaction sent and not yet mined; the server
        signs and sends it (follow it with :meth:`list_replacements`)."""
        return await self._custody_call(
            "POST",
            f"/v1/transactions/{transaction_id}/replacements",
            Replacement,
            body={"mode": mode},
            idempotency_key=idempotency_key,
        )

    async def list_replacements(self, transaction_id: str) -> list[Replacement]:
        """A transaction's replacements, oldest first."""
        found = await self._custody_call(
            "GET", f"/v1/transactions/{transaction_id}/replacements", ReplacementList
        )
        return found.data


class ReplacementsMixin(CustodyMixin):
    """Replacement methods of :class:`~shardvault.sdk.client.ShardvaultClient`."""

    @property
    def _replacements(self) -> AsyncReplacementsMixin:
        client = getattr(self, "_client")  # noqa: B009
        assert isinstance(client, AsyncReplacementsMixin)
        return client

    def replace_transaction(self, transaction_id: str, **kwargs: Any) -> Replacement:
        return self._run(self._replacements.replace_transaction(transaction_id, **kwargs))

    def list_replacements(self, transaction_id: str) -> list[Replacement]:
        return self._run(self._replacements.list_replacements(transaction_id))
