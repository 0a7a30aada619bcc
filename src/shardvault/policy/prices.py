"""Signed price reports: prices that a price key, not the coordinator, vouches for.

An asset without a static price in the bundle's registry (:mod:`.registry`) is priced by
reports signed by one of the registry's ``price_keys`` (DESIGN.md invariant 12). A
report is the canonical JSON (keys sorted, no whitespace, ASCII only) of::

    {"format": "shardvault.price-report/v1",
     "asset": {"network": "ethereum", "id": "ETH"},
     "price": "3000.25", "currency": "USD", "observed_at": 1764064800}

(``price``: one whole unit in ``currency``, a decimal string; ``observed_at``: Unix
seconds), signed by the price key (Ed25519 or ECDSA P-256, :mod:`.keys`) over
``PRICE_REPORT_DOMAIN || canonical JSON``. It travels as
``{"report": {...}, "signer": "<price key id>", "signature": "<hex>"}``.

A co-signer verifies every report it is sent (:func:`price_table`) and refuses the
request for any that is malformed, from a signer the registry does not name, with a
signature that does not verify, for an asset the registry does not list, in a currency
other than the policy's, or dated more than :data:`MAX_FUTURE_SKEW` seconds ahead of its
own clock. Then, per asset: a static price is final (reports for that asset are not
used); otherwise the newest report no older than ``max_price_age`` by the co-signer's
clock prices it (on a tie, the higher price: the cautious one for value limits). A
report that is too old is not an error, only unused, and the reason an asset has no
price says so. The coordinator chooses which valid reports to send, so
``max_price_age`` bounds how stale a price it can pick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from shardvault.policy._exact import decimal_text
from shardvault.policy.bundle import canonical_json
from shardvault.policy.context import AssetKey
from shardvault.policy.errors import ConfigurationKeyError, PriceReportError
from shardvault.policy.keys import SignatureCheckFailed
from shardvault.policy.registry import AssetRegistry

PRICE_REPORT_FORMAT = "shardvault.price-report/v1"
"""The ``format`` value of price reports."""

PRICE_REPORT_DOMAIN = b"shardvault/price-report/v1\x00"
"""Prefix of the bytes a price key signs."""

MAX_FUTURE_SKEW = 300
"""How far (seconds) a report's ``observed_at`` may lie ahead of the verifier's clock."""

MAX_REPORTS = 256
"""The most reports one signing request may carry."""


@dataclass(frozen=True, slots=True)
class PriceReport:
    """What a price key says: one whole unit of ``asset`` on ``network`` was worth
    ``price`` ``currency`` at ``observed_at``. ``price_text`` is the price as signed."""

    network: str
    asset: str
    price_text: str
    currency: str
    observed_at: int

    @property
    def price(self) -> Decimal:
        """The price, exactly."""
        value = decimal_text(self.price_text)
        assert value is not None  # parse_price_report and new reports check it
        return value

    @property
    def key(self) -> AssetKey:
        """(asset id, network): how evaluation contexts key prices."""
        return self.asset, self.network

    def to_document(self) -> dict[str, object]:
        """The report document (module docstring)."""
        return {
            "format": PRICE_REPORT_FORMAT,
            "asset": {"network": self.network, "id": self.asset},
            "price": self.price_text,
            "currency": self.currency,
            "observed_at": self.observed_at,
        }

    def signing_message(self) -> bytes:
        """The bytes a price key signs."""
        return PRICE_REPORT_DOMAIN + canonical_json(self.to_document())


@dataclass(frozen=True, slots=True)
class SignedPriceReport:
    """A report with its signer's id and signature."""

    report: PriceReport
    signer: str
    signature: bytes

    def to_json(self) -> dict[str, object]:
        """The transport form (module docstring)."""
        return {
            "report": self.report.to_document(),
            "signer": self.signer,
            "signature": self.signature.hex(),
        }


def new_price_report(
    network: str, asset: str, price: str, currency: str, observed_at: int
) -> PriceReport:
    """A report to sign, its fields checked as :func:`parse_price_report` checks them.

    Raises:
        PriceReportError: a field that is not as the format requires.
    """
    return _report(
        {
            "format": PRICE_REPORT_FORMAT,
            "asset": {"network": network, "id": asset},
            "price": price,
            "currency": currency,
            "observed_at": observed_at,
        },
        "report",
    )


def _fields(value: object, path: str, names: set[str]) -> dict[str, object]:
    if not isinstance(value, Mapping) or set(value) != names:
        raise PriceReportError(f"expected exactly the fields {', '.join(sorted(names))}", path=path)
    return dict(value)


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise PriceReportError("expected a string of 1 to 64 characters", path=path)
    return value


def _report(value: object, path: str) -> PriceReport:
    obj = _fields(value, path, {"format", "asset", "price", "currency", "observed_at"})
    if obj["format"] != PRICE_REPORT_FORMAT:
        raise PriceReportError(f"expected format {PRICE_REPORT_FORMAT!r}", path=f"{path}.format")
    asset = _fields(obj["asset"], f"{path}.asset", {"network", "id"})
    price = obj["price"]
    if decimal_text(price) is None:
        raise PriceReportError(
            'expected a non-negative decimal string such as "3000.25"', path=f"{path}.price"
        )
    assert isinstance(price, str)
    observed = obj["observed_at"]
    if isinstance(observed, bool) or not isinstance(observed, int) or not 0 <= observed < 2**40:
        raise PriceReportError("expected Unix seconds", path=f"{path}.observed_at")
    return PriceReport(
        _text(asset["network"], f"{path}.asset.network"),
        _text(asset["id"], f"{path}.asset.id"),
        price,
        _text(obj["currency"], f"{path}.currency"),
        observed,
    )


def parse_price_report(data: object, path: str = "price_report") -> SignedPriceReport:
    """Read a report's transport form (its signature is not checked here).

    Raises:
        PriceReportError: a missing, unknown or malformed field.
    """
    obj = _fields(data, path, {"report", "signer", "signature"})
    signature = obj["signature"]
    if not isinstance(signature, str) or len(signature) > 300:
        raise PriceReportError("expected hex", path=f"{path}.signature")
    try:
        raw = bytes.fromhex(signature)
    except ValueError:
        raise PriceReportError("expected hex", path=f"{path}.signature") from None
    return SignedPriceReport(
        _report(obj["report"], f"{path}.report"), _text(obj["signer"], f"{path}.signer"), raw
    )


def verify_price_report(
    signed: SignedPriceReport, registry: AssetRegistry | None, *, currency: str, now: int
) -> PriceReport:
    """Check that ``signed`` is a report the bundle's registry lets count (module
    docstring); its age against ``max_price_age`` is :func:`price_table`'s matter.

    Raises:
        PriceReportError: the signer is not a price key of ``registry`` (or there is no
            registry), the signature does not verify, the asset is not listed, the
            currency is not ``currency``, or ``observed_at`` is ahead of ``now`` by more
            than :data:`MAX_FUTURE_SKEW`.
    """
    report = signed.report
    price_key = None if registry is None else registry.price_key(signed.signer)
    if price_key is None:
        raise PriceReportError(
            f"signed by {signed.signer!r}, which the signed asset registry does not name as "
            "a price key"
        )
    try:
        price_key.key.verify(report.signing_message(), signed.signature)
    except (SignatureCheckFailed, ConfigurationKeyError):
        raise PriceReportError(
            f"the signature of price key {signed.signer!r} does not verify"
        ) from None
    assert registry is not None
    if registry.asset(report.network, report.asset) is None:
        raise PriceReportError(
            f"{report.asset} on {report.network} is not in the signed asset registry"
        )
    if report.currency != currency:
        raise PriceReportError(f"priced in {report.currency}, the policy's limits in {currency}")
    if report.observed_at > now + MAX_FUTURE_SKEW:
        raise PriceReportError(f"observed_at {report.observed_at} lies in the future")
    return report


@dataclass(frozen=True, slots=True)
class PriceTable:
    """The prices an evaluation may use, by (asset id, network), and for assets left
    without one, why (a report too old to use)."""

    prices: Mapping[AssetKey, Decimal]
    notes: Mapping[AssetKey, str]


def price_table(
    registry: AssetRegistry | None, reports: object, *, currency: str, now: int
) -> PriceTable:
    """The prices of ``registry``'s assets: static ones, then the newest usable report
    of each other asset (module docstring). ``reports`` is the request's list of
    reports in transport form (``None``: none).

    Raises:
        PriceReportError: ``reports`` is not a list of at most :data:`MAX_REPORTS`, or a
            report is malformed or does not verify (:func:`verify_price_report`); the
            reason names the report's index.
    """
    if reports is None:
        reports = []
    if not isinstance(reports, list) or len(reports) > MAX_REPORTS:
        raise PriceReportError(f"price_reports must be a list of at most {MAX_REPORTS} reports")
    prices: dict[AssetKey, Decimal] = {}
    if registry is not None:
        for network, asset in registry.all_assets():
            if asset.price is not None:
                prices[(asset.id, network.name)] = asset.price
    newest: dict[AssetKey, PriceReport] = {}
    for index, raw in enumerate(reports):
        try:
            report = verify_price_report(
                parse_price_report(raw, "report"), registry, currency=currency, now=now
            )
        except PriceReportError as exc:
            raise PriceReportError(f"price report {index}: {exc}") from None
        held = newest.get(report.key)
        if held is None or (report.observed_at, report.price) > (held.observed_at, held.price):
            newest[report.key] = report
    notes: dict[AssetKey, str] = {}
    max_age = 0 if registry is None or registry.max_price_age is None else registry.max_price_age
    for key, report in newest.items():
        if key in prices:
            continue  # a static price is final
        age = now - report.observed_at
        if age > max_age:
            notes[key] = (
                f"the newest price report, observed {age} s ago, is older than max_price_age "
                f"{max_age} s"
            )
            continue
        prices[key] = report.price
    return PriceTable(prices, notes)
