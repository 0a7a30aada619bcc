"""Properties of the evaluator (hypothesis).

* Splitting an amount across many transactions never escapes a velocity limit, in asset
  units, in the reference currency, or in count; and the limit is tight (a transaction
  is blocked only if allowing it would exceed the limit).
* Reordering rules that do not decide (those after the first match, and the
  non-matching ones before it, each among themselves) changes nothing.
* The history index answers every sliding-window aggregate exactly as a brute-force sum.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shardvault.policy import Decision, EvaluationContext, History, evaluate, parse_history
from shardvault.policy._exact import EXACT
from shardvault.policy.model import Scope
from shardvault.policy.request import UnixSeconds

from ._support import NOW, make_request, policy_with, request_data

WINDOW = 3600
PRICE = Decimal("1234.5678")

LIMIT_RULES = """rules:
  - name: limit
    when:
      asset: [ETH]
      velocity: [{{window: 1h, per: {per}, measure: {measure}, over: "{limit}"}}]
    action: block
  - name: allow-rest
    action: allow
"""


def _units(base: int) -> Decimal:
    return EXACT.scaleb(Decimal(base), -18)


def _measure_of(measure: str, base: int) -> Decimal:
    if measure == "amount":
        return _units(base)
    if measure == "value":
        return EXACT.multiply(_units(base), PRICE)
    return Decimal(1)


transactions = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3 * WINDOW),  # seconds after NOW
        st.integers(min_value=0, max_value=5 * 10**18),  # base units of ETH
        st.sampled_from(["alice", "bob"]),
    ),
    min_size=1,
    max_size=25,
).map(lambda txs: sorted(txs, key=lambda t: t[0]))


@settings(max_examples=60, deadline=None)
@given(
    txs=transactions,
    measure=st.sampled_from(["amount", "value", "count"]),
    per=st.sampled_from(["initiator", "workspace"]),
    limit=st.integers(min_value=1, max_value=12),
)
def test_splitting_never_escapes_a_velocity_limit(
    txs: list[tuple[int, int, str]], measure: str, per: str, limit: int
) -> None:
    """Submit the transactions one by one, each evaluated against the history of those
    allowed before it. In every window ending at an allowed transaction, the allowed
    total stays within the limit, and every blocked one would have exceeded it."""
    scaled_limit = Decimal(limit) * (1000 if measure == "value" else 1)
    policy = policy_with(LIMIT_RULES.format(per=per, measure=measure, limit=scaled_limit))
    allowed: list[tuple[int, int, str]] = []
    history: list[dict[str, Any]] = []
    for offset, base, who in txs:
        now = NOW + offset
        data = request_data(created_at=now, amount=str(base), initiator={"type": "user", "id": who})
        context = EvaluationContext(
            now=UnixSeconds(now),
            prices={"ETH": PRICE},
            history=History(parse_history(history)),
        )
        decision = evaluate(policy, make_request(**data), context).decision

        def window_total(t: int, w: str, extra: Decimal) -> Decimal:
            total = extra
            for o, b, x in allowed:
                if t - WINDOW < NOW + o <= t and (per == "workspace" or x == w):
                    total = EXACT.add(total, _measure_of(measure, b))
            return total

        would_be = window_total(now, who, _measure_of(measure, base))
        if decision is Decision.ALLOW:
            assert would_be <= scaled_limit
            allowed.append((offset, base, who))
            history.append(data)
        else:
            assert decision is Decision.BLOCK
            assert would_be > scaled_limit


@settings(max_examples=60, deadline=None)
@given(
    parts=st.lists(st.integers(min_value=1, max_value=10**18), min_size=2, max_size=40),
    gaps=st.lists(st.integers(min_value=0, max_value=60), min_size=40, max_size=40),
)
def test_splitting_one_amount_is_caught(parts: list[int], gaps: list[int]) -> None:
    """Whatever the split of an amount over the limit into transactions within one
    window, not all of them are allowed, and the allowed ones sum to at most the
    limit."""
    total = sum(parts)
    limit = _units(total - 1)  # the whole amount exceeds the limit by one base unit
    policy = policy_with(
        LIMIT_RULES.format(per="initiator", measure="amount", limit=format(limit, "f"))
    )
    history: list[dict[str, Any]] = []
    now = NOW
    allowed_sum = 0
    for part, gap in zip(parts, gaps, strict=False):
        now += gap
        data = request_data(created_at=now, amount=str(part))
        context = EvaluationContext(now=UnixSeconds(now), history=History(parse_history(history)))
        if evaluate(policy, make_request(**data), context).decision is Decision.ALLOW:
            history.append(data)
            allowed_sum += part
    assert allowed_sum <= total - 1
    assert len(history) < len(parts)


# --- reordering ---------------------------------------------------------------------

rule_docs = st.fixed_dictionaries(
    {
        "when": st.fixed_dictionaries(
            {},
            optional={
                "asset": st.sampled_from([["ETH"], ["USDC"], ["ETH", "USDC"]]),
                "initiator": st.sampled_from(
                    [{"users": ["alice"]}, {"groups": ["treasury"]}, {"api_keys": ["ci-bot"]}]
                ),
                "destination": st.sampled_from(
                    [{"one_time": True}, {"address_book": "*"}, {"whitelists": ["exchanges"]}]
                ),
                "value": st.sampled_from([{"up_to": "1000"}, {"over": "2000"}]),
                "operation": st.sampled_from([["transfer"], ["message_signing"]]),
            },
        ),
        "action": st.sampled_from(["allow", "block", "require_approvals"]),
    }
)


def _rules_yaml(docs: list[tuple[int, dict[str, Any]]]) -> str:
    """A ``rules:`` block (JSON is YAML) naming each rule after its original index."""
    import json

    items = []
    for i, doc in docs:
        item = {"name": f"r{i}", "when": doc["when"], "action": doc["action"]}
        if doc["action"] == "require_approvals":
            item["approvals"] = {"groups": [{"group": "treasury", "count": 1}], "deadline": "1h"}
        items.append(item)
    return "rules: " + json.dumps(items) + "\n"


@settings(max_examples=100, deadline=None)
@given(
    docs=st.lists(rule_docs, min_size=1, max_size=10),
    initiator=st.sampled_from(["alice", "carol", "mallory"]),
    destination=st.sampled_from(["0x" + "22" * 20, "0x" + "33" * 20, "0x" + "99" * 20]),
    eth=st.integers(min_value=0, max_value=2),
    seed=st.randoms(use_true_random=False),
)
def test_reordering_rules_that_do_not_decide_changes_nothing(
    docs: list[dict[str, Any]], initiator: str, destination: str, eth: int, seed: Any
) -> None:
    from ._support import make_context

    policy = policy_with(_rules_yaml(list(enumerate(docs))))
    request = make_request(
        initiator={"type": "user", "id": initiator},
        destination=destination,
        amount=str(eth * 10**18 // 2),
    )
    first = evaluate(policy, request, make_context())
    cut = first.rule_index if first.rule_index is not None else len(docs)
    before = list(range(cut))
    after = list(range(cut + 1, len(docs)))
    seed.shuffle(before)
    seed.shuffle(after)
    order = before + ([cut] if cut < len(docs) else []) + after
    second = evaluate(
        policy_with(_rules_yaml([(i, docs[i]) for i in order])), request, make_context()
    )
    assert (second.decision, second.rule) == (first.decision, first.rule)
    assert second.summary == first.summary


# --- the history index against brute force ---------------------------------------------

history_entries = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=500),  # time
        st.integers(min_value=0, max_value=10**6),  # base units
        st.sampled_from(["alice", "bob"]),
        st.sampled_from(["ETH", "USDC"]),
        st.sampled_from([None, "allow", "block"]),
    ),
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(
    entries=history_entries,
    now=st.integers(min_value=0, max_value=600),
    window=st.integers(min_value=1, max_value=700),
    before=st.integers(min_value=0, max_value=40),
)
def test_history_index_matches_brute_force(
    entries: list[tuple[int, int, str, str, str | None]], now: int, window: int, before: int
) -> None:
    data = []
    for t, base, who, asset, decision in entries:
        item = request_data(
            created_at=NOW + t,
            amount=str(base),
            initiator={"type": "user", "id": who},
            asset={"id": asset, "decimals": 6 if asset == "USDC" else 18},
        )
        if decision is not None:
            item["decision"] = decision
        data.append(item)
    parsed = parse_history(data)
    history = History(parsed)
    at = NOW + now
    lower = history.lower_bound(at - window)
    cut = before if before < len(parsed) else None
    upper = history.upper_bound(at, cut)
    # Brute force: entries that count, inside (at - window, at], and (with a cut) that
    # come before the cut entry in time order, ties broken by input order.
    order = sorted(range(len(parsed)), key=lambda i: parsed[i].request.created_at)
    rank = {i: r for r, i in enumerate(order)}
    for who in ("alice", "bob"):
        expected_count = 0
        expected_eth = 0
        for i, entry in enumerate(parsed):
            req = entry.request
            if not entry.counts or req.initiator.id != who:
                continue
            if not at - window < req.created_at <= at:
                continue
            if cut is not None and not (
                (req.created_at, rank[i]) < (parsed[cut].request.created_at, rank[cut])
            ):
                continue
            expected_count += 1
            if req.asset is not None and req.asset.id == "ETH":
                expected_eth += int(req.amount or 0)
        key = f"user:{who}"
        assert history.count(Scope.INITIATOR, key, lower, upper) == expected_count
        assert (
            history.amount(Scope.INITIATOR, key, ("ETH", "ethereum"), lower, upper) == expected_eth
        )


@settings(max_examples=100, deadline=None)
@given(docs=st.lists(rule_docs, max_size=8))
def test_canonical_documents_are_a_fixed_point(docs: list[dict[str, Any]]) -> None:
    """The canonical document of a policy parses back to the same policy and is its own
    canonical form, so the YAML and JSON forms of one policy sign as the same bundle."""
    from shardvault.policy import load_policy, parse_policy, policy_to_document

    from ._support import HEADER

    policy = load_policy(HEADER + _rules_yaml(list(enumerate(docs))))
    document = policy_to_document(policy)
    again = parse_policy(document)
    assert again == policy
    assert policy_to_document(again) == document
