"""Signed price reports: their format, every refusal, and which price an evaluation gets
(docs/policy.md, "Prices"). Reports are built and signed here from the format's
definition (canonical JSON, the domain prefix), with Ed25519 (PyNaCl) and with P-256 in
WebCrypto's raw ``r || s`` form."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from shardvault.policy import (
    EvaluationContext,
    History,
    PriceReportError,
    evaluate,
    parse_history,
    parse_price_report,
    parse_registry,
    price_table,
    verify_price_report,
)
from shardvault.policy.prices import MAX_REPORTS, new_price_report
from shardvault.policy.request import UnixSeconds

from ._support import (
    USDC_CONTRACT,
    ed25519_key,
    ethereum_network,
    make_request,
    p256_key,
    p256_public_hex,
    p256_sign_raw,
    policy_with,
    request_data,
)

NOW = 1_764_064_800
DOMAIN = b"shardvault/price-report/v1\x00"

REGISTRY = parse_registry(
    {
        "format": "shardvault.asset-registry/v1",
        "networks": [
            ethereum_network(
                {"id": "ETH", "native": True, "decimals": 18},
                {"id": "USDC", "contract": USDC_CONTRACT, "decimals": 6, "price": "1"},
            ),
            {
                "name": "solana",
                "chain": "solana",
                "assets": [{"id": "SOL", "native": True, "decimals": 9}],
            },
        ],
        "price_keys": [
            {
                "id": "ed-oracle",
                "algorithm": "ed25519",
                "public_key": ed25519_key("ed-oracle").verify_key.encode().hex(),
            },
            {
                "id": "browser-oracle",
                "algorithm": "p256",
                "public_key": p256_public_hex(p256_key("browser-oracle")),
            },
        ],
        "max_price_age": 600,
    }
)


def _report(
    asset: str = "ETH",
    price: str = "3000",
    *,
    network: str = "ethereum",
    observed_at: int = NOW - 10,
    currency: str = "USD",
    signer: str = "ed-oracle",
    key: str | None = None,
) -> dict[str, Any]:
    report = {
        "format": "shardvault.price-report/v1",
        "asset": {"network": network, "id": asset},
        "price": price,
        "currency": currency,
        "observed_at": observed_at,
    }
    message = DOMAIN + json.dumps(report, sort_keys=True, separators=(",", ":")).encode()
    name = key or signer
    if name.startswith("browser"):
        signature = p256_sign_raw(p256_key(name), message)
    else:
        signature = ed25519_key(name).sign(message).signature
    return {"report": report, "signer": signer, "signature": signature.hex()}


def _table(*reports: object, now: int = NOW):
    return price_table(REGISTRY, list(reports), currency="USD", now=now)


def test_the_report_format_round_trips_and_the_library_signs_the_same_bytes():
    raw = _report()
    signed = parse_price_report(raw)
    assert signed.to_json() == raw
    again = new_price_report("ethereum", "ETH", "3000", "USD", NOW - 10)
    assert again.signing_message() == signed.report.signing_message()
    assert verify_price_report(signed, REGISTRY, currency="USD", now=NOW).price == 3000


def test_ed25519_and_p256_price_keys_both_price_assets():
    table = _table(
        _report("ETH", "3000.5"), _report("SOL", "150", network="solana", signer="browser-oracle")
    )
    assert table.prices[("ETH", "ethereum")] == Decimal("3000.5")
    assert table.prices[("SOL", "solana")] == 150
    assert table.prices[("USDC", "ethereum")] == 1  # static


def test_the_newest_report_wins_and_a_tie_takes_the_higher_price():
    table = _table(
        _report(price="2900", observed_at=NOW - 30),
        _report(price="3100", observed_at=NOW - 5),
        _report(price="3000", observed_at=NOW - 5),
        _report(price="2000", observed_at=NOW - 100),
    )
    assert table.prices[("ETH", "ethereum")] == 3100


def test_a_static_price_is_final():
    table = _table(_report("USDC", "0.0001"))
    assert table.prices[("USDC", "ethereum")] == 1


def test_a_report_older_than_max_price_age_is_unused_and_says_so():
    table = _table(_report(observed_at=NOW - 601))
    assert ("ETH", "ethereum") not in table.prices
    assert "older than max_price_age 600 s" in table.notes[("ETH", "ethereum")]
    assert "601 s ago" in table.notes[("ETH", "ethereum")]
    # At the limit it is used.
    assert _table(_report(observed_at=NOW - 600)).prices[("ETH", "ethereum")] == 3000


def test_no_reports_leave_only_static_prices():
    assert dict(_table().prices) == {("USDC", "ethereum"): 1}
    assert dict(price_table(REGISTRY, None, currency="USD", now=NOW).prices) == {
        ("USDC", "ethereum"): 1
    }


def _tampered(**changes: object) -> dict[str, Any]:
    raw = _report()
    raw["report"].update(changes)
    return raw


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (_report(signer="rogue"), "'rogue', which the signed asset registry does not name"),
        (_report(key="mallory"), "does not verify"),
        (_tampered(price="0.0001"), "does not verify"),
        (_report(signer="browser-oracle", key="browser-mallory"), "does not verify"),
        (_report("BTC"), "BTC on ethereum is not in the signed asset registry"),
        (_report(network="base"), "ETH on base is not in the signed asset registry"),
        (_report(currency="EUR"), "priced in EUR, the policy's limits in USD"),
        (_report(observed_at=NOW + 301), "lies in the future"),
        ({**_report(), "extra": 1}, "exactly the fields"),
        ({**_report(), "signature": "zz"}, "hex"),
        ({**_report(), "signature": 5}, "hex"),
        ({**_report(), "signer": ""}, "a string"),
        (_tampered(format="v2"), "format"),
        (_tampered(price="1e3"), "decimal string"),
        (_tampered(price=3000), "decimal string"),
        (_tampered(price="-1"), "decimal string"),
        (_tampered(observed_at="now"), "Unix seconds"),
        (_tampered(observed_at=True), "Unix seconds"),
        (_tampered(asset={"network": "ethereum"}), "exactly the fields"),
        (_tampered(asset={"network": "ethereum", "id": "x" * 65}), "1 to 64"),
        (_tampered(extra=1), "exactly the fields"),
        ("not an object", "exactly the fields"),
    ],
)
def test_a_bad_report_is_refused_naming_its_index_and_fault(raw, words):
    with pytest.raises(PriceReportError) as refused:
        _table(_report(), copy.deepcopy(raw))
    assert str(refused.value).startswith("price report 1: "), refused.value
    assert words in str(refused.value), refused.value


def test_a_report_without_a_registry_to_name_its_key_is_refused():
    with pytest.raises(PriceReportError, match="does not name as a price key"):
        price_table(None, [_report()], currency="USD", now=NOW)


@pytest.mark.parametrize("reports", [{"ETH": "1"}, "report", [_report()] * (MAX_REPORTS + 1)])
def test_price_reports_must_be_a_short_list(reports):
    with pytest.raises(PriceReportError, match="a list of at most"):
        price_table(REGISTRY, reports, currency="USD", now=NOW)


# --- Prices by network in an evaluation ------------------------------------------------


VALUE_POLICY = """rules:
  - name: daily-value
    when:
      velocity: [{window: 24h, per: initiator, measure: value, over: "5000"}]
    action: block
  - name: rest
    action: allow
"""


def _context(history: list[dict[str, Any]], prices: dict[tuple[str, str | None], Decimal]):
    return EvaluationContext(
        now=UnixSeconds(NOW),
        history=History(parse_history(history)),
        network_prices=prices,
        price_notes={("ETH", "base"): "the newest price report is too old"},
    )


def test_network_prices_value_the_request_and_its_history_per_network():
    """ETH on ethereum and ETH on base are priced apart: 1 ETH now (3000) plus 1 ETH on
    base earlier (3000) is over 5000; at a lower base price it is not; without a base
    price the velocity fails closed, naming why."""
    policy = policy_with(VALUE_POLICY)
    on_base = request_data(network="base", created_at=NOW - 60, digest="cd" * 32)
    history = [on_base]
    priced = {("ETH", "ethereum"): Decimal(3000), ("ETH", "base"): Decimal(3000)}
    assert evaluate(policy, make_request(), _context(history, priced)).rule == "daily-value"
    cheap = {**priced, ("ETH", "base"): Decimal(1000)}
    assert evaluate(policy, make_request(), _context(history, cheap)).rule == "rest"
    missing = {("ETH", "ethereum"): Decimal(3000)}
    blocked = evaluate(policy, make_request(), _context(history, missing))
    assert (blocked.decision.value, blocked.rule) == ("block", "daily-value")
    assert "no price for ETH (in history)" in blocked.summary
    alone = evaluate(policy, make_request(network="base"), _context([], missing))
    assert "the newest price report is too old" in alone.summary
