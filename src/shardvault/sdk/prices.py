"""Signed price reports through the SDK: signing one with a price key (locally; the key
never reaches the server), submitting it, and listing what the server holds.

docs/policy.md, "Prices".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shardvault.policy.prices import SignedPriceReport, new_price_report
from shardvault.sdk.custody import AsyncCustodyMixin, CustodyMixin, _Model

PriceKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey
"""A price key: Ed25519, or ECDSA on P-256."""


class PriceReport(_Model):
    network: str
    asset: str
    signer: str
    price: str
    currency: str
    observed_at: int
    received_at: datetime
    report: dict[str, object]


class PriceReportList(_Model):
    data: list[PriceReport]


def sign_price_report(
    key: PriceKey,
    *,
    signer: str,
    network: str,
    asset: str,
    price: str,
    currency: str,
    observed_at: int,
) -> dict[str, object]:
    """A price report signed with ``key`` (the price key the asset registry names
    ``signer``), in the transport form ``POST /v1/price-reports`` takes.

    Raises:
        PriceReportError: a field that is not as the report format requires.
        ValueError: a key that is neither Ed25519 nor P-256.
    """
    report = new_price_report(network, asset, price, currency, observed_at)
    message = report.signing_message()
    if isinstance(key, Ed25519PrivateKey):
        signature = key.sign(message)
    elif isinstance(key.curve, ec.SECP256R1):
        signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    else:
        raise ValueError("a price key is Ed25519 or ECDSA on P-256")
    return SignedPriceReport(report, signer, signature).to_json()


class AsyncPricesMixin(AsyncCustodyMixin):
    """Price-report methods of :class:`~shardvault.sdk.client.AsyncShardvaultClient`."""

    async def submit_price_report(
        self, report: Mapping[str, object], *, idempotency_key: str | None = None
    ) -> PriceReport:
        """Hand the server a signed report (:func:`sign_price_report`) to forward to the
        co-signers; refused (400) unless the active policy names its price key."""
        return await self._custody_call(
            "POST",
            "/v1/price-reports",
            PriceReport,
            body=dict(report),
            idempotency_key=idempotency_key,
        )

    async def list_price_reports(self) -> PriceReportList:
        """The newest report the server holds per network, asset and signer."""
        return await self._custody_call("GET", "/v1/price-reports", PriceReportList)


class PricesMixin(CustodyMixin):
    """Price-report methods of :class:`~shardvault.sdk.client.ShardvaultClient`."""

    @property
    def _prices(self) -> AsyncPricesMixin:
        client = getattr(self, "_client")  # noqa: B009
        assert isinstance(client, AsyncPricesMixin)
        return client

    def submit_price_report(self, report: Mapping[str, object], **kwargs: Any) -> PriceReport:
        return self._run(self._prices.submit_price_report(report, **kwargs))

    def list_price_reports(self) -> PriceReportList:
        return self._run(self._prices.list_price_reports())
