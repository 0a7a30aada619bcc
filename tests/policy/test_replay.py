"""Dry runs and replay: which past transactions a draft would decide differently."""

from __future__ import annotations

from typing import Any

import pytest

from shardvault.policy import Decision, RequestError, dry_run, parse_history, replay

from ._support import BOOK, NOW, PRICES, WEI, make_context, make_request, policy_with, request_data

CURRENT = policy_with("rules:\n  - {name: allow-all, action: allow}\n")
DRAFT = policy_with(
    """rules:
  - name: daily-5-eth
    when:
      asset: [ETH]
      velocity: [{window: 24h, per: initiator, measure: amount, over: "5"}]
    action: block
  - name: big-needs-approval
    when: {value: {over: "8000"}}
    action: require_approvals
    approvals: {groups: [{group: treasury, count: 1}], deadline: 1h}
  - {name: allow-rest, action: allow}
"""
)


def history() -> list[dict[str, Any]]:
    """Alice sends 1, 2, 1.5 and 1 ETH within a day; bob 3 ETH; a blocked attempt."""
    entries = []
    for i, (eth_tenths, who, decision) in enumerate(
        [
            (10, "alice", "allow"),
            (20, "alice", "allow"),
            (30, "bob", "allow"),
            (15, "alice", "allow"),
            (900, "alice", "block"),
            (10, "alice", "allow"),
        ]
    ):
        entries.append(
            {
                **request_data(
                    created_at=NOW + i * 600,
                    amount=str(eth_tenths * WEI // 10),
                    initiator={"type": "user", "id": who},
                    digest=f"{i:02x}" * 32,
                ),
                "decision": decision,
            }
        )
    return entries


def test_replay_against_recorded_decisions() -> None:
    report = replay(DRAFT, parse_history(history()), prices=PRICES, address_book=BOOK)
    changed = {item.index: item.after.decision for item in report.differences}
    # bob's 3 ETH (9000 USD) now needs approval; alice's fourth transfer brings her
    # day to 1 + 2 + 1.5 + 1 = 5.5 ETH (the blocked 90 ETH attempt never counted);
    # the blocked 90 ETH would still be blocked, now by the velocity rule.
    assert changed == {2: Decision.REQUIRE_APPROVALS, 5: Decision.BLOCK}
    assert report.items[4].after.rule == "daily-5-eth"
    summary = report.to_json()
    assert summary["replayed"] == 6
    assert summary["changes_by_kind"] == {"allow->block": 1, "allow->require_approvals": 1}


def test_replay_against_a_baseline_policy() -> None:
    entries = [{k: v for k, v in e.items() if k != "decision"} for e in history()]
    report = replay(DRAFT, parse_history(entries), prices=PRICES, baseline=CURRENT)
    # Without recorded decisions every entry counts toward velocity, including the
    # 90 ETH transfer: from it on, alice is over her daily limit.
    assert {i.index for i in report.differences} == {2, 4, 5}
    assert all(i.before_rule == "allow-all" for i in report.items)


def test_replay_needs_something_to_compare_with() -> None:
    entries = [{k: v for k, v in e.items() if k != "decision"} for e in history()]
    with pytest.raises(RequestError) as info:
        replay(DRAFT, parse_history(entries))
    assert info.value.path == "history[0].decision"


def test_dry_run_is_evaluation_without_approvals() -> None:
    result = dry_run(DRAFT, make_request(amount=str(2 * WEI)), make_context())
    assert (result.decision, result.rule) == (Decision.ALLOW, "allow-rest")
