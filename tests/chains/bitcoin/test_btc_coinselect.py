"""Coin selection: branch-and-bound exact matches, the fallback, fees and dust.

Size estimates are checked against real transactions built and signed by shardvault
(a P2WPKH and a P2TR spend): the estimate must never be below the real virtual size and
at most one vbyte per input above it (the worst-case 72-byte ECDSA signature).
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shardvault.chains.amounts import Satoshi
from shardvault.chains.bitcoin import (
    FeeRate,
    InsufficientFundsError,
    OutPoint,
    Payment,
    SpendKind,
    Utxo,
    extract_transaction,
    finalize,
    select_coins,
)
from shardvault.chains.bitcoin.coinselect import estimate_weight
from shardvault.chains.errors import InvalidAmountError

from .helpers import p2tr_spend, p2wpkh_spend, sign_p2tr, sign_p2wpkh


def _utxo(i: int, value: int, kind: SpendKind = SpendKind.P2WPKH) -> Utxo:
    return Utxo(OutPoint(bytes([i]) * 32, i), Satoshi(value), kind)


def test_estimates_cover_real_signed_transactions() -> None:
    psbt, key = p2wpkh_spend()
    wpkh = extract_transaction(finalize(sign_p2wpkh(psbt, 0, key)))
    est = -(-estimate_weight([SpendKind.P2WPKH], [SpendKind.P2WPKH]) // 4)
    assert 0 <= est - wpkh.vsize() <= 1
    psbt, key = p2tr_spend()
    tr = extract_transaction(finalize(sign_p2tr(psbt, 0, key)))
    est = -(-estimate_weight([SpendKind.P2TR], [SpendKind.P2TR]) // 4)
    assert est == tr.vsize()


def test_fee_rate_parsing() -> None:
    assert FeeRate.from_sat_per_vb("2.5").sat_per_kvb == 2500
    assert FeeRate.from_btc_per_kvb("0.00001").sat_per_kvb == 1000
    assert FeeRate(1000).fee_for_weight(561) == 141  # ceil(561/4) = 141 vB at 1 sat/vB
    assert FeeRate(1500).fee_for_weight(400) == 150
    for bad in ("-1", "1.2345", "1e3", "100001", " 1"):
        with pytest.raises(InvalidAmountError) as exc:
            FeeRate.from_sat_per_vb(bad)
        assert exc.value.field == "fee_rate"


def test_branch_and_bound_finds_an_exact_match_without_change() -> None:
    rate = FeeRate(1000)
    in_fee = rate.fee_for_weight(SpendKind.P2WPKH.input_weight)
    payments = [Payment(Satoshi(100_000), SpendKind.P2WPKH)]
    base = rate.fee_for_weight(estimate_weight([], [SpendKind.P2WPKH]))
    # Two coins sum exactly to the target once their input fees are paid.
    exact_a = 60_000 + in_fee
    exact_b = 40_000 + base + in_fee
    utxos = [_utxo(1, 500_000), _utxo(2, exact_a), _utxo(3, exact_b), _utxo(4, 7_000)]
    sel = select_coins(utxos, payments, rate, SpendKind.P2WPKH)
    assert sel.algorithm == "branch_and_bound"
    assert sel.change is None
    assert {u.outpoint.index for u in sel.inputs} == {2, 3}
    assert sum(u.value for u in sel.inputs) == 100_000 + sel.fee


def test_fallback_adds_change() -> None:
    rate = FeeRate(5000)
    sel = select_coins(
        [_utxo(1, 1_000_000), _utxo(2, 30_000, SpendKind.P2TR)],
        [Payment(Satoshi(200_000), SpendKind.P2TR)],
        rate,
        SpendKind.P2WPKH,
    )
    assert sel.algorithm == "largest_first"
    assert sel.change is not None
    assert sum(u.value for u in sel.inputs) == 200_000 + sel.change + sel.fee
    assert sel.fee == rate.fee_for_weight(sel.weight)
    assert sel.vsize == -(-sel.weight // 4)


def test_dust_change_goes_to_fee() -> None:
    rate = FeeRate(1000)
    payment = Payment(Satoshi(10_000), SpendKind.P2WPKH)
    base = rate.fee_for_weight(estimate_weight([SpendKind.P2WPKH], [SpendKind.P2WPKH]))
    # Leftover above the BnB window but below the dust limit of a change output.
    utxos = [_utxo(1, 10_000 + base + 200)]
    sel = select_coins(utxos, [payment], rate, SpendKind.P2WPKH)
    assert sel.change is None
    assert sel.fee == base + 200


def test_errors() -> None:
    rate = FeeRate(1000)
    with pytest.raises(InvalidAmountError) as exc:
        select_coins(
            [_utxo(1, 10_000)], [Payment(Satoshi(100), SpendKind.P2TR)], rate, SpendKind.P2TR
        )
    assert exc.value.field == "payments[0].value"
    with pytest.raises(InsufficientFundsError) as exc2:
        select_coins(
            [_utxo(1, 10_000)], [Payment(Satoshi(10_000), SpendKind.P2WPKH)], rate, SpendKind.P2WPKH
        )
    assert exc2.value.field == "utxos"
    with pytest.raises(InvalidAmountError):
        FeeRate(-1)


@given(
    values=st.lists(st.integers(min_value=1, max_value=5_000_000), min_size=1, max_size=12),
    amount=st.integers(min_value=330, max_value=3_000_000),
    rate=st.integers(min_value=0, max_value=50_000),
)
def test_selection_invariants(values: list[int], amount: int, rate: int) -> None:
    fee_rate = FeeRate(rate)
    utxos = [
        _utxo(i, v, SpendKind.P2TR if i % 2 else SpendKind.P2WPKH) for i, v in enumerate(values)
    ]
    payments = [Payment(Satoshi(amount), SpendKind.P2TR)]
    try:
        sel = select_coins(utxos, payments, fee_rate, SpendKind.P2WPKH)
    except InsufficientFundsError:
        return
    total = sum(u.value for u in sel.inputs)
    change = sel.change or 0
    # Money is conserved, the fee pays the estimated size and change is never dust.
    assert total == amount + change + sel.fee
    assert sel.fee >= fee_rate.fee_for_weight(sel.weight)
    assert sel.change is None or sel.change >= SpendKind.P2WPKH.dust_threshold
    assert len(set(sel.inputs)) == len(sel.inputs)
