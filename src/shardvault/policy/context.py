"""What the caller supplies to an evaluation: time, prices, address book, history.

The policy layer reads no clock and no database. The caller passes the evaluation time
(``now``), prices of whole asset units in the policy's reference currency, the address
book and whitelists from the verified policy bundle, and the past transactions that count
toward velocity limits.

Velocity aggregates are answered from :class:`History`, an index built once per history:
for every grouping key (initiator, source vault, wallet, destination, whole workspace) it
keeps the entries' times in sorted order and running (prefix) sums of their amounts per
asset. A sliding-window sum is then two binary searches and a subtraction, so one
aggregate costs O(log n) per evaluation whatever the size of the history; building the
index costs O(n log n) once. Reference-currency sums are kept per key as well, built on
first use for the prices of the evaluation and reused while the prices stay the same
(:class:`PricedHistory`). That memo is the index's only mutable state: it never changes
an answer, only how fast it comes, and concurrent evaluations at most rebuild it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import assert_never

from shardvault.policy._exact import EXACT, ZERO, value_of
from shardvault.policy.errors import ContextError, RequestError
from shardvault.policy.model import AddressBook, Scope
from shardvault.policy.request import (
    PastTransaction,
    TransactionRequest,
    UnixSeconds,
    parse_timestamp,
)

AssetKey = tuple[str, str | None]
"""An asset on a network: amounts of the same asset id on two networks are kept apart."""


def scope_key(scope: Scope, request: TransactionRequest) -> str | None:
    """The key under which ``request`` is grouped for ``scope``; ``None`` when the
    request has no such attribute (no wallet, no destination)."""
    if scope is Scope.INITIATOR:
        return request.initiator.key
    if scope is Scope.SOURCE:
        return request.source.vault
    if scope is Scope.WALLET:
        return request.source.wallet
    if scope is Scope.DESTINATION:
        dest = request.destination_key
        return None if dest is None else f"{request.network}:{dest}"
    if scope is Scope.WORKSPACE:
        return ""
    assert_never(scope)


class _Series:
    """The entries of one grouping key, in time order, with running sums per asset."""

    __slots__ = ("assets", "positions")

    def __init__(self) -> None:
        # Sorted positions (time * M + rank) of every entry of this key.
        self.positions: list[int] = []
        # Per asset: sorted positions and prefix sums of base units (prefix[0] == 0).
        self.assets: dict[AssetKey, tuple[list[int], list[int]]] = {}

    def append(self, position: int, asset: AssetKey | None, amount: int) -> None:
        self.positions.append(position)
        if asset is None:
            return
        series = self.assets.get(asset)
        if series is None:
            series = ([], [0])
            self.assets[asset] = series
        series[0].append(position)
        series[1].append(series[1][-1] + amount)


class History:
    """Past transactions, indexed once for sliding-window aggregates.

    Only entries that count (see :attr:`PastTransaction.counts`) enter the aggregates.
    Entries are ordered by ``created_at`` and, within a second, by their order in the
    input; a position ``created_at * M + rank`` (``M`` larger than any rank) encodes
    both so that window bounds are single integers.

    Raises (on construction):
        ContextError: the same asset on the same network with two decimals values.
    """

    __slots__ = ("_decimals", "_multiplier", "_positions", "_priced", "_series")

    def __init__(self, entries: Sequence[PastTransaction] = ()) -> None:
        self._multiplier = len(entries) + 1
        order = sorted(range(len(entries)), key=lambda i: entries[i].request.created_at)
        self._positions: list[int] = [0] * len(entries)
        self._decimals: dict[AssetKey, int] = {}
        self._series: dict[tuple[Scope, str], _Series] = {}
        self._priced: PricedHistory | None = None
        for rank, i in enumerate(order):
            entry = entries[i]
            request = entry.request
            position = int(request.created_at) * self._multiplier + rank
            self._positions[i] = position
            if not entry.counts:
                continue
            asset_key: AssetKey | None = None
            if request.asset is not None:
                asset_key = (request.asset.id, request.network)
                known = self._decimals.setdefault(asset_key, request.asset.decimals)
                if known != request.asset.decimals:
                    raise ContextError(
                        f"asset {request.asset.id} on {request.network} has decimals "
                        f"{known} and {request.asset.decimals}",
                        path=f"history[{i}].asset.decimals",
                    )
            amount = int(request.amount or 0)
            for scope in Scope:
                key = scope_key(scope, request)
                if key is None:
                    continue
                series = self._series.get((scope, key))
                if series is None:
                    series = _Series()
                    self._series[(scope, key)] = series
                series.append(position, asset_key, amount)

    def __len__(self) -> int:
        return len(self._positions)

    def upper_bound(self, now: int, before_entry: int | None) -> int:
        """The largest position inside a window ending at ``now``; with
        ``before_entry`` (an input index), the largest position before that entry."""
        at_now = now * self._multiplier + self._multiplier - 1
        if before_entry is None:
            return at_now
        return min(at_now, self._positions[before_entry] - 1)

    def lower_bound(self, since_exclusive: int) -> int:
        """The largest position outside a window that starts after ``since_exclusive``."""
        return since_exclusive * self._multiplier + self._multiplier - 1

    def count(self, scope: Scope, key: str, lower: int, upper: int) -> int:
        """Entries of ``key`` with ``lower < position <= upper``."""
        series = self._series.get((scope, key))
        if series is None or upper <= lower:
            return 0
        pos = series.positions
        return bisect_right(pos, upper) - bisect_right(pos, lower)

    def amount(self, scope: Scope, key: str, asset: AssetKey, lower: int, upper: int) -> int:
        """Sum of base units of ``asset`` for ``key`` with ``lower < position <= upper``."""
        series = self._series.get((scope, key))
        if series is None or upper <= lower:
            return 0
        per_asset = series.assets.get(asset)
        if per_asset is None:
            return 0
        pos, prefix = per_asset
        return prefix[bisect_right(pos, upper)] - prefix[bisect_right(pos, lower)]

    def priced(
        self,
        prices: Mapping[str, Decimal],
        network_prices: Mapping[AssetKey, Decimal] | None = None,
    ) -> PricedHistory:
        """The reference-currency view of this history at ``prices`` (by asset id) and
        ``network_prices`` (by asset id and network, which take precedence).

        The view is memoized for the last price snapshot seen, so evaluations that share
        prices share its per-key running sums of value (built on first use of a key).
        """
        by_network = {} if network_prices is None else dict(network_prices)
        priced = self._priced
        if priced is None or priced.prices != prices or priced.network_prices != by_network:
            priced = PricedHistory(self, dict(prices), by_network)
            self._priced = priced
        return priced

    def series_assets(
        self, scope: Scope, key: str
    ) -> Iterable[tuple[AssetKey, int, list[int], list[int]]]:
        """Per asset of ``key``: the asset, its decimals, positions and prefix sums."""
        series = self._series.get((scope, key))
        if series is None:
            return
        for asset, (pos, prefix) in series.assets.items():
            yield asset, self._decimals[asset], pos, prefix


class PricedHistory:
    """Running sums of reference-currency value per grouping key, at fixed prices.

    For each key it merges the key's entries of every asset in position order, with
    prefix sums of their value and of the number of entries whose asset has no price,
    so a value aggregate is two binary searches and a subtraction whatever the number
    of assets.
    """

    __slots__ = ("_cache", "_history", "network_prices", "prices")

    def __init__(
        self,
        history: History,
        prices: dict[str, Decimal],
        network_prices: dict[AssetKey, Decimal] | None = None,
    ) -> None:
        self._history = history
        self.prices = prices
        self.network_prices = {} if network_prices is None else network_prices
        self._cache: dict[tuple[Scope, str], tuple[list[int], list[Decimal], list[int], str]] = {}

    def _build(self, scope: Scope, key: str) -> tuple[list[int], list[Decimal], list[int], str]:
        items: list[tuple[int, Decimal | None, str]] = []
        for (asset_id, network), decimals, pos, prefix in self._history.series_assets(scope, key):
            price = self.network_prices.get((asset_id, network), self.prices.get(asset_id))
            for i, position in enumerate(pos):
                amount = prefix[i + 1] - prefix[i]
                value = None if price is None else value_of(amount, decimals, price)
                items.append((position, value, asset_id))
        items.sort(key=lambda item: item[0])
        positions = [item[0] for item in items]
        sums = [ZERO]
        unpriced = [0]
        missing = ""
        for _position, value, asset_id in items:
            if value is None:
                sums.append(sums[-1])
                unpriced.append(unpriced[-1] + 1)
                missing = missing or asset_id
            else:
                sums.append(EXACT.add(sums[-1], value))
                unpriced.append(unpriced[-1])
        return positions, sums, unpriced, missing

    def value(self, scope: Scope, key: str, lower: int, upper: int) -> Decimal | str:
        """Value of ``key``'s entries with ``lower < position <= upper``, or the reason
        it is unknown (an entry in the window whose asset has no price)."""
        if upper <= lower:
            return ZERO
        cached = self._cache.get((scope, key))
        if cached is None:
            cached = self._cache[(scope, key)] = self._build(scope, key)
        positions, sums, unpriced, missing = cached
        lo = bisect_right(positions, lower)
        hi = bisect_right(positions, upper)
        if unpriced[hi] != unpriced[lo]:
            return f"no price for {missing} (in history)"
        return EXACT.subtract(sums[hi], sums[lo])


@dataclass(frozen=True, slots=True)
class EvaluationContext:
    """Everything an evaluation reads besides the policy and the request.

    ``prices`` give the value of one whole unit of an asset in ``reference_currency``,
    by asset id; ``network_prices`` by asset id and network (what a co-signer builds
    from the signed registry and price reports, :mod:`.prices`), which take precedence.
    ``price_notes`` say, by asset id and network, why an asset has no price (a report
    too old to use), for explanations. When ``reference_currency`` is set it must equal
    the policy's, so prices quoted in another currency are never compared with the
    policy's limits. ``history_before`` is used by replay: only history entries before
    that input index count.
    """

    now: UnixSeconds
    prices: Mapping[str, Decimal] = field(default_factory=dict)
    address_book: AddressBook = field(default_factory=AddressBook)
    history: History = field(default_factory=History)
    reference_currency: str | None = None
    history_before: int | None = None
    network_prices: Mapping[AssetKey, Decimal] = field(default_factory=dict)
    price_notes: Mapping[AssetKey, str] = field(default_factory=dict)

    def price(self, asset: str, network: str | None = None) -> Decimal | None:
        """The price of one whole unit of ``asset`` (on ``network``), if the caller
        supplied one."""
        found = self.network_prices.get((asset, network)) if network is not None else None
        return found if found is not None else self.prices.get(asset)


def parse_prices(data: object, path: str = "context.prices") -> dict[str, Decimal]:
    """Read ``{asset: price}`` with prices as decimal strings or JSON numbers.

    Raises:
        ContextError: a price that is not a finite, non-negative decimal.
    """
    if not isinstance(data, Mapping):
        raise ContextError("expected an object of asset to price", path=path)
    out: dict[str, Decimal] = {}
    for asset, raw in data.items():
        item_path = f"{path}.{asset}"
        if not isinstance(asset, str) or not asset:
            raise ContextError("asset ids are non-empty strings", path=path)
        if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
            raise ContextError("expected a decimal string", path=item_path)
        try:
            price = EXACT.create_decimal(raw) if isinstance(raw, str) else Decimal(raw)
        except (InvalidOperation, ArithmeticError):
            raise ContextError("not a decimal number", path=item_path) from None
        exponent = price.as_tuple().exponent
        if (
            not price.is_finite()
            or price < 0
            or len(price.as_tuple().digits) > 80
            or price.adjusted() >= 80
            or (isinstance(exponent, int) and exponent < -80)
        ):
            raise ContextError("expected a finite, non-negative price", path=item_path)
        out[asset] = price
    return out


def parse_context(
    data: object,
    *,
    history: History | None = None,
    path: str = "context",
) -> EvaluationContext:
    """Read the JSON form of a context: ``now``, optional ``reference_currency``,
    ``prices`` and ``address_book`` (a document as :func:`.load.parse_address_book`
    reads it).

    Raises:
        ContextError: a missing or unknown field, a bad timestamp or price.
        PolicyDocumentError: a malformed address book.
    """
    from shardvault.policy.load import parse_address_book

    if not isinstance(data, Mapping):
        raise ContextError("expected an object", path=path)
    allowed = {"now", "reference_currency", "prices", "address_book"}
    for key in data:
        if key not in allowed:
            raise ContextError(f"unknown field {key!r}", path=path)
    if "now" not in data:
        raise ContextError("missing field 'now'", path=path)
    try:
        now = parse_timestamp(data["now"], f"{path}.now")
    except RequestError as exc:
        raise ContextError(exc.reason, path=exc.path) from None
    currency = data.get("reference_currency")
    if currency is not None and (not isinstance(currency, str) or not currency):
        raise ContextError("expected a currency code", path=f"{path}.reference_currency")
    prices = parse_prices(data.get("prices", {}), f"{path}.prices")
    book = (
        parse_address_book(data["address_book"], path=f"{path}.address_book")
        if "address_book" in data
        else AddressBook()
    )
    return EvaluationContext(
        now=UnixSeconds(now),
        prices=prices,
        address_book=book,
        history=history if history is not None else History(),
        reference_currency=currency,
    )
