"""Coin selection: branch-and-bound with a largest-first fallback, fees in sat/vB.

Branch-and-bound searches for a set of UTXOs whose effective value (value minus the fee to
spend it) lands in ``[target, target + cost_of_change]``, so that no change output is
needed (Murch, "An Evaluation of Coin Selection Strategies", 2016, §6.3; the algorithm
Bitcoin Core ships as ``SelectCoinsBnB``). When no such set exists within the search
budget, the fallback takes the largest coins first and adds a change output, unless the
change would be dust, in which case it goes to the fee.

Sizes are BIP141 weights: a P2WPKH input weighs 41*4 + 108 (a 72-byte signature at worst,
the pubkey and the item counts), a taproot key-path input 41*4 + 66, a P2WPKH output
31*4 and a P2TR output 43*4, and a segwit transaction's fixed part 10*4 + 2. Fee rates
are kept as satoshi per 1000 virtual bytes so that fractional sat/vB rates stay exact;
every fee rounds up.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from shardvault.chains.amounts import Satoshi, parse_decimal_amount
from shardvault.chains.bitcoin.models import OutPoint
from shardvault.chains.errors import ChainError, InvalidAmountError, UnsupportedError

MAX_FEE_RATE_SAT_PER_KVB = 100_000_000
"""A sanity cap on fee rates (100,000 sat/vB); anything above is a mistake."""

_BNB_MAX_TRIES = 100_000


class InsufficientFundsError(ChainError):
    """The UTXOs cannot pay the outputs and the fee."""


class SpendKind(Enum):
    """Input and output kinds whose sizes the estimator knows, with their weights."""

    P2WPKH = "p2wpkh"
    P2TR = "p2tr"

    @property
    def input_weight(self) -> int:
        """Weight of spending one such output (worst-case signature size)."""
        return 41 * 4 + (108 if self is SpendKind.P2WPKH else 66)

    @property
    def output_weight(self) -> int:
        """Weight of one such output: value, script length and script."""
        return (31 if self is SpendKind.P2WPKH else 43) * 4

    @property
    def dust_threshold(self) -> Satoshi:
        """Bitcoin Core's dust limit at its 3 sat/vB dust relay fee (``GetDustThreshold``)."""
        return Satoshi(294 if self is SpendKind.P2WPKH else 330)


TX_OVERHEAD_WEIGHT = 10 * 4 + 2
"""Version, locktime, the two counts (one byte each) and the segwit marker and flag."""


@dataclass(frozen=True, slots=True)
class FeeRate:
    """A fee rate in satoshi per 1000 virtual bytes (sat/kvB), exact and non-negative."""

    sat_per_kvb: int

    def __post_init__(self) -> None:
        if not 0 <= self.sat_per_kvb <= MAX_FEE_RATE_SAT_PER_KVB:
            raise InvalidAmountError("must be between 0 and 100000 sat/vB", field="fee_rate")

    @classmethod
    def from_sat_per_vb(cls, text: str) -> "FeeRate":
        """Parse a sat/vB rate such as ``"2.5"`` (at most three decimals).

        Raises:
            InvalidAmountError: negative, too many decimals or above the cap.
        """
        return cls(
            parse_decimal_amount(text, 3, maximum=MAX_FEE_RATE_SAT_PER_KVB, field="fee_rate")
        )

    @classmethod
    def from_btc_per_kvb(cls, text: str) -> "FeeRate":
        """Parse Bitcoin Core's ``estimatesmartfee`` unit (BTC/kvB) exactly."""
        return cls(
            parse_decimal_amount(text, 8, maximum=MAX_FEE_RATE_SAT_PER_KVB, field="fee_rate")
        )

    def fee_for_weight(self, weight: int) -> Satoshi:
        """The fee for ``weight`` units: ceil(ceil(weight / 4) * rate / 1000)."""
        vbytes = -(-weight // 4)
        return Satoshi(-(-vbytes * self.sat_per_kvb // 1000))


@dataclass(frozen=True, slots=True)
class Utxo:
    """A spendable output: where it is, how much it holds and what kind of script."""

    outpoint: OutPoint
    value: Satoshi
    kind: SpendKind


@dataclass(frozen=True, slots=True)
class Payment:
    """An output to create: its value and its kind (for the size estimate)."""

    value: Satoshi
    kind: SpendKind


@dataclass(frozen=True, slots=True)
class Selection:
    """The chosen inputs, the change amount (``None``: no change output) and the fee."""

    inputs: tuple[Utxo, ...]
    change: Satoshi | None
    fee: Satoshi
    weight: int
    algorithm: str

    @property
    def vsize(self) -> int:
        """The estimated virtual size of the transaction."""
        return -(-self.weight // 4)


def estimate_weight(inputs: Sequence[SpendKind], outputs: Sequence[SpendKind]) -> int:
    """The weight of a segwit transaction with these inputs and outputs (< 253 of each)."""
    if len(inputs) >= 0xFD or len(outputs) >= 0xFD:
        raise UnsupportedError("at most 252 inputs and 252 outputs", field="inputs")
    return (
        TX_OVERHEAD_WEIGHT
        + sum(k.input_weight for k in inputs)
        + sum(k.output_weight for k in outputs)
    )


def _branch_and_bound(
    pool: list[tuple[int, Utxo]], target: int, cost_of_change: int
) -> list[Utxo] | None:
    # Depth-first search over include/exclude decisions on coins sorted by descending
    # effective value (inclusion first). Backtrack when the selection overshoots the
    # window, when the undecided coins cannot reach the target, or after a hit; among
    # hits keep the one with the least excess. ``decisions[i]`` is True when coin i is in.
    available = sum(v for v, _ in pool)
    if available < target:
        return None
    best: list[bool] | None = None
    best_excess = cost_of_change + 1
    decisions: list[bool] = []
    value = 0
    for _ in range(_BNB_MAX_TRIES):
        backtrack = value + available < target or value > target + cost_of_change
        if not backtrack and value >= target:
            if value - target < best_excess:
                best, best_excess = list(decisions), value - target
            backtrack = True
        if backtrack:
            if best_excess == 0:
                break
            # Undo trailing exclusions, making those coins undecided again.
            while decisions and not decisions[-1]:
                decisions.pop()
                available += pool[len(decisions)][0]
            if not decisions:
                break
            # Turn the last inclusion into an exclusion.
            decisions[-1] = False
            value -= pool[len(decisions) - 1][0]
        else:
            # Include the next undecided coin.
            coin_value = pool[len(decisions)][0]
            available -= coin_value
            value += coin_value
            decisions.append(True)
    if best is None:
        return None
    return [pool[i][1] for i, included in enumerate(best) if included]


def select_coins(
    utxos: Sequence[Utxo],
    payments: Sequence[Payment],
    fee_rate: FeeRate,
    change_kind: SpendKind,
) -> Selection:
    """Choose inputs that pay ``payments`` at ``fee_rate``, with change if worth it.

    Raises:
        InvalidAmountError: a payment below its dust threshold.
        InsufficientFundsError: the UTXOs cannot cover the payments and the fee.
    """
    for i, payment in enumerate(payments):
        if payment.value < payment.kind.dust_threshold:
            raise InvalidAmountError(
                f"{payment.value} sat is below the dust threshold {payment.kind.dust_threshold}",
                field=f"payments[{i}].value",
            )
    out_kinds = [p.kind for p in payments]
    amount = sum(p.value for p in payments)
    base_fee = fee_rate.fee_for_weight(estimate_weight([], out_kinds))
    change_output_fee = fee_rate.fee_for_weight(change_kind.output_weight)
    cost_of_change = change_output_fee + fee_rate.fee_for_weight(change_kind.input_weight)

    # Effective values: coins that cost more to spend than they hold are left out.
    pool = sorted(
        (
            (u.value - fee_rate.fee_for_weight(u.kind.input_weight), u)
            for u in utxos
            if u.value > fee_rate.fee_for_weight(u.kind.input_weight)
        ),
        key=lambda item: (-item[0], item[1].outpoint.txid, item[1].outpoint.index),
    )
    target = amount + base_fee
    chosen = _branch_and_bound(pool, target, cost_of_change)
    if chosen is not None:
        weight = estimate_weight([u.kind for u in chosen], out_kinds)
        fee = Satoshi(sum(u.value for u in chosen) - amount)
        return Selection(tuple(chosen), None, fee, weight, "branch_and_bound")

    # Fallback: largest first, until the payments, the fee and a change output are paid.
    picked: list[Utxo] = []
    total = 0
    for _, utxo in pool:
        picked.append(utxo)
        total += utxo.value
        in_kinds = [u.kind for u in picked]
        weight_with_change = estimate_weight(in_kinds, [*out_kinds, change_kind])
        fee_with_change = fee_rate.fee_for_weight(weight_with_change)
        change = total - amount - fee_with_change
        if change >= change_kind.dust_threshold:
            return Selection(
                tuple(picked), Satoshi(change), fee_with_change, weight_with_change, "largest_first"
            )
        weight = estimate_weight(in_kinds, out_kinds)
        fee_without = fee_rate.fee_for_weight(weight)
        if total - amount >= fee_without:
            # The leftover is too small for a change output: it goes to the fee.
            return Selection(tuple(picked), None, Satoshi(total - amount), weight, "largest_first")
    raise InsufficientFundsError(
        f"{sum(u.value for u in utxos)} sat available; {target} sat needed before input fees",
        field="utxos",
    )
