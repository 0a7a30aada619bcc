"""Evaluator details beyond the specification table: explanations, failing closed,
context checks, request parsing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from shardvault.policy import (
    ContextError,
    Decision,
    EvaluationContext,
    History,
    Outcome,
    RequestError,
    evaluate,
    parse_context,
    parse_history,
    parse_request,
    request_to_json,
)
from shardvault.policy.request import UnixSeconds

from ._support import NOW, make_context, make_request, policy_with, request_data


def test_explanation_names_every_condition_checked() -> None:
    policy = policy_with(
        """rules:
  - name: usdc-only
    when: {asset: [USDC], initiator: {users: [alice]}}
    action: allow
  - name: small-eth
    when: {initiator: {users: [alice]}, asset: [ETH], amount: {up_to: "2"}}
    action: allow
"""
    )
    result = evaluate(policy, make_request(), make_context())
    assert result.decision is Decision.ALLOW
    lines = result.explanation()
    assert lines == [
        "rule 0 'usdc-only': not_matched",
        "  operation: matched: transfer (rule names no operation)",
        "  initiator: matched: user 'alice' is a listed user",
        "  asset: not_matched: ETH is not in [USDC]",
        "rule 1 'small-eth': matched",
        "  operation: matched: transfer (rule names no operation)",
        "  initiator: matched: user 'alice' is a listed user",
        "  asset: matched: ETH is listed",
        "  amount: matched: 1 ETH is up to 2",
        "decision: allow: allowed by 'small-eth'",
    ]
    as_json = result.to_json()
    assert as_json["decision"] == "allow"
    assert as_json["rule"] == "small-eth"
    assert as_json["explanation"] == lines


def test_history_in_an_unpriced_asset_fails_closed() -> None:
    policy = policy_with(
        """rules:
  - name: usd-limit
    when: {velocity: [{window: 1d, per: workspace, measure: value, up_to: "1000000"}]}
    action: allow
"""
    )
    history = [request_data(created_at=NOW - 60, asset={"id": "DOGE", "decimals": 8})]
    result = evaluate(policy, make_request(), make_context(history=history))
    assert (result.decision, result.rule) == (Decision.BLOCK, "usd-limit")
    assert result.trace[0].outcome is Outcome.INDETERMINATE
    assert "no price for DOGE" in result.trace[0].checks[-1].detail


def test_a_shared_aggregate_is_computed_once_and_reported_in_each_rule() -> None:
    rules = "rules:\n" + "".join(
        f"""  - name: r{i}
    when: {{velocity: [{{window: 1d, per: initiator, measure: count, over: {10 + i}}}]}}
    action: block
"""
        for i in range(5)
    )
    policy = policy_with(rules + "  - {name: rest, action: allow}\n")
    history = [request_data(created_at=NOW - i) for i in range(1, 13)]
    result = evaluate(policy, make_request(), make_context(history=history))
    # 12 past + this one = 13: over 10, 11, 12 match; the first of them decides.
    assert (result.decision, result.rule) == (Decision.BLOCK, "r0")


def test_summer_time_is_read_from_the_time_zone() -> None:
    policy = policy_with(
        """rules:
  - name: morning
    when: {time: {from: "12:00", until: "13:00", timezone: Europe/Zurich}}
    action: allow
"""
    )
    july = 1_784_023_200  # 2026-07-14T10:00:00Z, 12:00 in Zurich (CEST, UTC+2)
    assert evaluate(policy, make_request(), make_context(now=july)).decision is Decision.ALLOW
    # In November the same UTC time is 11:00 in Zurich (CET, UTC+1).
    assert evaluate(policy, make_request(), make_context()).decision is Decision.BLOCK


def test_amount_conditions_do_not_match_requests_without_amounts() -> None:
    policy = policy_with(
        """rules:
  - name: small
    when: {asset: [ETH], amount: {up_to: "1"}}
    action: allow
  - name: cheap
    when: {value: {up_to: "1"}}
    action: allow
"""
    )
    request = make_request(operation="message_signing", amount=None)
    result = evaluate(policy, request, make_context())
    assert result.decision is Decision.BLOCK
    assert result.trace[0].checks[-1].detail == "the request carries no amount"
    assert result.trace[1].checks[-1].detail == "the request carries no amount"


def test_destination_conditions_need_a_destination() -> None:
    policy = policy_with(
        "rules:\n  - {name: any, when: {destination: {any: true}}, action: allow}\n"
    )
    request = make_request(operation="message_signing", destination=None, amount=None)
    assert evaluate(policy, request, make_context()).decision is Decision.BLOCK
    assert evaluate(policy, make_request(), make_context()).decision is Decision.ALLOW


def test_contract_without_selectors_matches_any_call_on_its_network() -> None:
    policy = policy_with(
        """rules:
  - name: weth
    when: {destination: {contracts: [{address: "0x4444444444444444444444444444444444444444",
                                      network: ethereum}]}}
    action: allow
"""
    )
    call = {"operation": "contract_call", "destination": "0x" + "44" * 20, "amount": "0"}
    assert evaluate(policy, make_request(**call), make_context()).decision is Decision.ALLOW
    other = make_request(**call, network="polygon")
    assert evaluate(policy, other, make_context()).decision is Decision.BLOCK


def test_prices_in_another_currency_are_refused() -> None:
    policy = policy_with("rules: []\n")
    context = EvaluationContext(now=UnixSeconds(NOW), reference_currency="EUR")
    with pytest.raises(ContextError, match="EUR"):
        evaluate(policy, make_request(), context)


def test_history_with_conflicting_decimals_is_refused() -> None:
    history = parse_history(
        [request_data(), request_data(asset={"id": "ETH", "decimals": 9}, digest="01" * 32)]
    )
    with pytest.raises(ContextError, match="decimals") as info:
        History(history)
    assert info.value.path == "history[1].asset.decimals"


def test_request_json_round_trips() -> None:
    request = make_request(
        operation="contract_call", contract={"selector": "0xa9059cbb"}, amount="0"
    )
    assert parse_request(request_to_json(request)) == request


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"digest": "ab"}, "request.digest"),
        ({"operation": "mint"}, "request.operation"),
        ({"created_at": -1}, "request.created_at"),
        ({"created_at": "2025-11-25T10:00:00"}, "request.created_at"),
        ({"created_at": "2025-11-25T10:00:00.5Z"}, "request.created_at"),
        ({"created_at": 1.5}, "request.created_at"),
        ({"initiator": {"type": "robot", "id": "x"}}, "request.initiator.type"),
        ({"initiator": {"type": "user"}}, "request.initiator"),
        ({"source": {"vault": "v", "colour": "red"}}, "request.source"),
        ({"source": {"vault": "v", "tags": "hot"}}, "request.source.tags"),
        ({"amount": "-5"}, "request.amount"),
        ({"amount": 1.5}, "request.amount"),
        ({"amount": "1e18"}, "request.amount"),
        ({"asset": {"id": "ETH", "decimals": 99}}, "request.asset.decimals"),
        ({"asset": None}, "request.amount"),
        ({"amount": None}, "request.amount"),
        ({"destination": None}, "request.destination"),
        ({"contract": {"selector": "0xa9059cbb"}}, "request.contract"),
        ({"contract": {"selector": "a9059cbb"}}, "request.contract.selector"),
        ({"fee": "1"}, "request"),
    ],
)
def test_malformed_requests_name_the_path(change: dict[str, Any], where: str) -> None:
    with pytest.raises(RequestError) as info:
        make_request(**change)
    assert info.value.path == where


def test_rfc3339_times_are_read_exactly() -> None:
    assert make_request(created_at="2025-11-25T11:00:00+01:00").created_at == NOW


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({}, "context"),
        ({"now": NOW, "extra": 1}, "context"),
        ({"now": "yesterday"}, "context.now"),
        ({"now": NOW, "prices": {"ETH": "-1"}}, "context.prices.ETH"),
        ({"now": NOW, "prices": {"ETH": 3000.5}}, "context.prices.ETH"),
        ({"now": NOW, "prices": {"ETH": "NaN"}}, "context.prices.ETH"),
        ({"now": NOW, "prices": {"ETH": "1E+99999"}}, "context.prices.ETH"),
        ({"now": NOW, "prices": []}, "context.prices"),
        ({"now": NOW, "reference_currency": 5}, "context.reference_currency"),
    ],
)
def test_malformed_contexts_name_the_path(data: dict[str, Any], where: str) -> None:
    with pytest.raises(ContextError) as info:
        parse_context(data)
    assert info.value.path == where


def test_context_prices_are_exact() -> None:
    context = parse_context({"now": NOW, "prices": {"ETH": "3000.123456789012345678901234"}})
    assert context.prices["ETH"] == Decimal("3000.123456789012345678901234")


def test_history_entries_name_their_index() -> None:
    with pytest.raises(RequestError) as info:
        parse_history([request_data(), {**request_data(), "decision": "maybe"}])
    assert info.value.path == "history[1].decision"
    with pytest.raises(RequestError):
        parse_history({"not": "a list"})
    assert len(parse_history({"transactions": [request_data()]})) == 1
