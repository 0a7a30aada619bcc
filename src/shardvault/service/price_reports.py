"""Signed price reports: held by the server, forwarded to the co-signers, never trusted.

A price key's owner signs reports off the server (``shardvault prices sign``) and submits
them (``POST /v1/price-reports``). The server checks each against the active bundle as
a co-signer will (:func:`shardvault.policy.verify_price_report`: the signer is one of its
price keys, the signature verifies, the asset is in its registry, the currency is the
policy's), keeps the newest one per (network, asset, signer), and sends the newest valid
one per asset with every signing request (:func:`signed_prices`). Each co-signer verifies
them again with its own clock; the server's check only keeps its store free of what no
co-signer would use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from shardvault.policy import (
    PolicyBundle,
    PolicyError,
    PriceReport,
    PriceTable,
    SignedPriceReport,
    parse_price_report,
    price_table,
    verify_price_report,
)
from shardvault.service.context import Principal
from shardvault.service.errors import Conflict, ValidationError
from shardvault.service.policies import active_policy
from shardvault.service.rbac import Permission, require
from shardvault.service.uow import UnitOfWork
from shardvault.store.models_prices import PriceReportRow
from shardvault.store.repositories_prices import PriceReportRepository
from shardvault.store.types import utcnow


class PriceReportRefused(ValidationError):
    """A price report the active policy does not let count (malformed, an unknown
    signer, a bad signature, an unlisted asset, another currency, a future time)."""

    problem = "price-report-refused"


@dataclass(frozen=True, slots=True)
class PriceReportView:
    network: str
    asset: str
    signer: str
    price: str
    currency: str
    observed_at: int
    received_at: datetime
    report: dict[str, object]

    @classmethod
    def of(cls, row: PriceReportRow) -> PriceReportView:
        return cls(
            row.network,
            row.asset,
            row.signer,
            row.price,
            row.currency,
            row.observed_at,
            row.received_at,
            json.loads(row.report),
        )


def submit_price_report(
    uow: UnitOfWork, principal: Principal, report: object, *, now: int
) -> PriceReportView:
    """Check ``report`` (transport form) against the active bundle and hold it as the
    newest of its (network, asset, signer).

    Raises:
        Forbidden: the role may not manage policies.
        PriceReportRefused: the report is malformed, or the active bundle (if any) does
            not let it count; the reason names the fault.
        Conflict: a report of that signer for that asset observed as late or later is
            held already.
    """
    require(principal, Permission.POLICIES_MANAGE)
    bundle = active_policy(uow, principal.workspace_id)
    try:
        signed = parse_price_report(report, "report")
        checked = _verify(bundle, signed, now=now)
    except PolicyError as exc:
        raise PriceReportRefused(exc.path or "report", exc.reason) from None
    repository = PriceReportRepository(uow.session, principal.workspace_id)
    held = repository.held(checked.network, checked.asset, signed.signer, lock=True)
    if held is not None and held.observed_at >= checked.observed_at:
        raise Conflict(
            f"a report of {signed.signer!r} for {checked.asset} on {checked.network} observed "
            f"at {held.observed_at} is held; only a newer one replaces it"
        )
    row = held or PriceReportRow(network=checked.network, asset=checked.asset, signer=signed.signer)
    row.price = checked.price_text
    row.currency = checked.currency
    row.observed_at = checked.observed_at
    row.report = json.dumps(signed.to_json(), sort_keys=True)
    row.received_at = utcnow()
    if held is None:
        repository.add(row)
    else:
        uow.session.flush()
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="price_report.submit",
        resource_type="price_report",
        resource_id=row.id,
        details={
            "network": checked.network,
            "asset": checked.asset,
            "signer": signed.signer,
            "price": checked.price_text,
            "observed_at": checked.observed_at,
        },
    )
    return PriceReportView.of(row)


def list_price_reports(uow: UnitOfWork, principal: Principal) -> list[PriceReportView]:
    """Every report held, by network, asset and signer."""
    require(principal, Permission.POLICIES_READ)
    repository = PriceReportRepository(uow.session, principal.workspace_id)
    return [PriceReportView.of(row) for row in repository.list()]


def _verify(bundle: PolicyBundle | None, signed: SignedPriceReport, *, now: int) -> PriceReport:
    """``signed`` verified against ``bundle`` (a co-signer's checks but the age).

    Raises:
        PriceReportError: see :func:`shardvault.policy.verify_price_report`.
    """
    return verify_price_report(
        signed,
        None if bundle is None else bundle.assets,
        currency="" if bundle is None else bundle.policy.reference_currency,
        now=now,
    )


@dataclass(frozen=True, slots=True)
class SignedPrices:
    """The reports the server forwards with a signing request (the newest valid one per
    asset, in transport form) and the prices they and the bundle's static prices give
    the server's own evaluation."""

    reports: tuple[dict[str, object], ...] = ()
    table: PriceTable = field(default_factory=lambda: PriceTable({}, {}))


def signed_prices(
    uow: UnitOfWork, workspace_id: str, bundle: PolicyBundle | None, *, now: int
) -> SignedPrices:
    """What :class:`SignedPrices` says, for ``bundle`` (the active one) at ``now``.

    Reports that no longer verify under ``bundle`` (a price key since removed, an asset
    no longer listed) are left out, never forwarded, and so are reports for assets with
    a static price (a co-signer would not use them). A report older than
    ``max_price_age`` is still forwarded: a co-signer says so when it is left without a
    price.
    """
    if bundle is None or bundle.assets is None:
        return SignedPrices()
    registry = bundle.assets
    newest: dict[tuple[str, str | None], tuple[PriceReport, dict[str, object]]] = {}
    for row in PriceReportRepository(uow.session, workspace_id).list():
        document = json.loads(row.report)
        try:
            report = _verify(bundle, parse_price_report(document, "report"), now=now)
        except PolicyError:
            continue
        listed = registry.asset(report.network, report.asset)
        if listed is not None and listed.price is not None:
            continue
        held = newest.get(report.key)
        # The newest, and on a tie the higher price, as a co-signer picks (prices.py).
        if held is None or (report.observed_at, report.price) > (
            held[0].observed_at,
            held[0].price,
        ):
            newest[report.key] = (report, document)
    reports = tuple(document for _, document in newest.values())
    table = price_table(registry, list(reports), currency=bundle.policy.reference_currency, now=now)
    return SignedPrices(reports, table)
