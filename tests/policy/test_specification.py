"""The policy language, specified by example.

Each row is one policy (a ``rules:`` block under the shared header of ``_support``: three
groups, five approvers with keys), one transaction request (the default transfer of
1 ETH by user alice from vault ``ops`` to a one-time address, with fields overridden),
one context (Tuesday 2025-11-25 10:00 UTC, ETH at 3000 USD, the test address book, a
history), the approvals supplied, and the expected decision and deciding rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from shardvault.policy import Decision, evaluate

from ._support import (
    NOW,
    USDC,
    WEI,
    make_context,
    make_request,
    policy_with,
    request_data,
    sign_approval,
)

ALLOW, BLOCK, APPROVALS = Decision.ALLOW, Decision.BLOCK, Decision.REQUIRE_APPROVALS
KRAKEN = "0x" + "22" * 20
PAYROLL = "0x" + "33" * 20
UNISWAP = "0x" + "44" * 20
HOUR, DAY = 3600, 86400


def past(eth: str, ago: int, **overrides: Any) -> dict[str, Any]:
    """A history entry: a transfer of ``eth`` ETH made ``ago`` seconds before NOW."""
    whole, _, frac = eth.partition(".")
    amount = int(whole) * WEI + (int(frac.ljust(18, "0")) if frac else 0)
    data = request_data(created_at=NOW - ago, amount=str(amount), digest="cd" * 32)
    data.update(overrides)
    return data


@dataclass
class Row:
    """One line of the specification."""

    id: str
    rules: str
    expect: Decision
    rule: str | None
    request: dict[str, Any] = field(default_factory=dict)
    now: int = NOW
    history: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[str] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    prices: dict[str, Any] | None = None


ALLOW_ALL = """
  - name: allow-rest
    action: allow
"""

ROWS = [
    # --- ordering and default deny -----------------------------------------------
    Row("no rules: default deny", "rules: []", BLOCK, None),
    Row("one allow rule", "rules:" + ALLOW_ALL, ALLOW, "allow-rest"),
    Row(
        "first match wins over a later allow",
        """rules:
  - name: block-eth
    when: {asset: [ETH]}
    action: block
"""
        + ALLOW_ALL,
        BLOCK,
        "block-eth",
    ),
    Row(
        "a rule that does not match is skipped",
        """rules:
  - name: block-usdc
    when: {asset: [USDC]}
    action: block
"""
        + ALLOW_ALL,
        ALLOW,
        "allow-rest",
    ),
    # --- initiator --------------------------------------------------------------
    Row(
        "initiator in a group (from the policy, not the request)",
        """rules:
  - name: traders
    when: {initiator: {groups: [traders]}}
    action: allow
""",
        ALLOW,
        "traders",
    ),
    Row(
        "an API key that is a group member",
        """rules:
  - name: traders
    when: {initiator: {groups: [traders]}}
    action: allow
""",
        ALLOW,
        "traders",
        request={"initiator": {"type": "api_key", "id": "ci-bot"}},
    ),
    Row(
        "an initiator outside every listed group is denied",
        """rules:
  - name: traders
    when: {initiator: {groups: [traders]}}
    action: allow
""",
        BLOCK,
        None,
        request={"initiator": {"type": "user", "id": "mallory"}},
    ),
    Row(
        "a user id does not match an api_keys entry of the same name",
        """rules:
  - name: bots
    when: {initiator: {api_keys: [alice]}}
    action: allow
""",
        BLOCK,
        None,
    ),
    # --- operations and raw digests ---------------------------------------------
    Row(
        "a rule without an operation condition never allows raw-digest signing",
        "rules:" + ALLOW_ALL,
        BLOCK,
        None,
        request={"operation": "raw_digest_signing", "amount": None, "asset": None},
    ),
    Row(
        "raw-digest signing allowed by a rule that names it",
        """rules:
  - name: raw-for-ops
    when: {operation: [raw_digest_signing], source: {vaults: [ops]}}
    action: allow
""",
        ALLOW,
        "raw-for-ops",
        request={"operation": "raw_digest_signing", "amount": None, "asset": None},
    ),
    Row(
        "operation mismatch falls through",
        """rules:
  - name: messages-only
    when: {operation: [message_signing, typed_data_signing]}
    action: allow
""",
        BLOCK,
        None,
    ),
    Row(
        "key generation needs approvals",
        """rules:
  - name: keygen
    when: {operation: [key_generation]}
    action: require_approvals
    approvals: {groups: [{group: treasury, count: 2}], deadline: 1d}
""",
        APPROVALS,
        "keygen",
        request={
            "operation": "key_generation",
            "amount": None,
            "asset": None,
            "network": None,
            "destination": None,
        },
    ),
    # --- source -------------------------------------------------------------------
    Row(
        "source by wallet",
        """rules:
  - name: from-ops-eth
    when: {source: {wallets: [ops-eth]}}
    action: allow
""",
        ALLOW,
        "from-ops-eth",
    ),
    Row(
        "source by tag",
        """rules:
  - name: cold-needs-approval
    when: {source: {tags: [cold]}}
    action: block
"""
        + ALLOW_ALL,
        BLOCK,
        "cold-needs-approval",
        request={"source": {"vault": "reserve", "tags": ["cold"]}},
    ),
    # --- destination ----------------------------------------------------------------
    Row(
        "address-book entry by name",
        """rules:
  - name: to-kraken
    when: {destination: {address_book: [kraken]}}
    action: allow
""",
        ALLOW,
        "to-kraken",
        request={"destination": KRAKEN},
    ),
    Row(
        "address book '*' matches any entry",
        """rules:
  - name: to-book
    when: {destination: {address_book: "*"}}
    action: allow
""",
        ALLOW,
        "to-book",
        request={"destination": PAYROLL},
    ),
    Row(
        "whitelisted destination",
        """rules:
  - name: payroll
    when: {destination: {whitelists: [payroll]}, asset: [USDC], amount: {up_to: "50000"}}
    action: allow
""",
        ALLOW,
        "payroll",
        request={"destination": PAYROLL, "asset": USDC, "amount": str(12_000 * 10**6)},
    ),
    Row(
        "an address-book entry on another whitelist does not match",
        """rules:
  - name: payroll
    when: {destination: {whitelists: [payroll]}}
    action: allow
""",
        BLOCK,
        None,
        request={"destination": KRAKEN},
    ),
    Row(
        "one-time addresses need approval",
        """rules:
  - name: one-time
    when: {destination: {one_time: true}}
    action: require_approvals
    approvals: {groups: [{group: treasury, count: 1}], deadline: 4h}
"""
        + ALLOW_ALL,
        APPROVALS,
        "one-time",
    ),
    Row(
        "an address-book entry is not one-time",
        """rules:
  - name: one-time
    when: {destination: {one_time: true}}
    action: block
"""
        + ALLOW_ALL,
        ALLOW,
        "allow-rest",
        request={"destination": KRAKEN},
    ),
    Row(
        "a contract call with an allowed method selector",
        """rules:
  - name: uniswap-swap
    when:
      operation: [contract_call]
      destination: {contracts: [{address: "0x4444444444444444444444444444444444444444",
                                 selectors: ["0x3593564c"]}]}
    action: allow
""",
        ALLOW,
        "uniswap-swap",
        request={
            "operation": "contract_call",
            "destination": UNISWAP,
            "contract": {"selector": "0x3593564c"},
            "amount": "0",
        },
    ),
    Row(
        "the same contract with another method is denied",
        """rules:
  - name: uniswap-swap
    when:
      operation: [contract_call]
      destination: {contracts: [{address: "0x4444444444444444444444444444444444444444",
                                 selectors: ["0x3593564c"]}]}
    action: allow
""",
        BLOCK,
        None,
        request={
            "operation": "contract_call",
            "destination": UNISWAP,
            "contract": {"selector": "0x095ea7b3"},
            "amount": "0",
        },
    ),
    # --- asset, network, amount, value ------------------------------------------------
    Row(
        "network mismatch",
        """rules:
  - name: mainnet-only
    when: {network: [ethereum]}
    action: allow
""",
        BLOCK,
        None,
        request={"network": "polygon"},
    ),
    Row(
        "amount in asset units, inside the limit",
        """rules:
  - name: small-eth
    when: {asset: [ETH], amount: {up_to: "5"}}
    action: allow
""",
        ALLOW,
        "small-eth",
    ),
    Row(
        "amount limits are inclusive at up_to",
        """rules:
  - name: small-eth
    when: {asset: [ETH], amount: {up_to: "1"}}
    action: allow
""",
        ALLOW,
        "small-eth",
    ),
    Row(
        "amount limits are exclusive at over",
        """rules:
  - name: big-eth
    when: {asset: [ETH], amount: {over: "1"}}
    action: block
"""
        + ALLOW_ALL,
        ALLOW,
        "allow-rest",
    ),
    Row(
        "value in the reference currency at the context's price",
        """rules:
  - name: over-1000-usd
    when: {value: {over: "1000"}}
    action: require_approvals
    approvals: {groups: [{group: treasury, count: 2}], deadline: 1h}
"""
        + ALLOW_ALL,
        APPROVALS,
        "over-1000-usd",
    ),
    Row(
        "a missing price fails closed on the rule that needs it",
        """rules:
  - name: under-1000-usd
    when: {value: {up_to: "1000"}}
    action: allow
"""
        + ALLOW_ALL,
        BLOCK,
        "under-1000-usd",
        prices={},
    ),
    Row(
        "a missing price does not matter when another condition already fails",
        """rules:
  - name: usdc-under-1000
    when: {asset: [USDC], value: {up_to: "1000"}}
    action: block
"""
        + ALLOW_ALL,
        ALLOW,
        "allow-rest",
        prices={},
    ),
    # --- time windows -----------------------------------------------------------------
    Row(
        "inside office hours in Zurich (10:00 UTC is 11:00 CET)",
        """rules:
  - name: office-hours
    when: {time: {days: [mon, tue, wed, thu, fri], from: "09:00", until: "17:00",
                  timezone: Europe/Zurich}}
    action: allow
""",
        ALLOW,
        "office-hours",
    ),
    Row(
        "outside office hours (16:30 UTC is 17:30 CET)",
        """rules:
  - name: office-hours
    when: {time: {days: [mon, tue, wed, thu, fri], from: "09:00", until: "17:00",
                  timezone: Europe/Zurich}}
    action: allow
""",
        BLOCK,
        None,
        now=NOW + 6 * HOUR + 30 * 60,
    ),
    Row(
        "weekends are outside a weekday window",
        """rules:
  - name: office-hours
    when: {time: {days: [mon, tue, wed, thu, fri], timezone: UTC}}
    action: allow
""",
        BLOCK,
        None,
        now=NOW + 4 * DAY,
    ),
    Row(
        "a night window wraps past midnight",
        """rules:
  - name: night-block
    when: {time: {from: "22:00", until: "06:00", timezone: America/New_York}}
    action: block
"""
        + ALLOW_ALL,
        BLOCK,
        "night-block",
        now=NOW - 7 * HOUR,  # 03:00 UTC is 22:00 in New York (EST).
    ),
    # --- velocity -----------------------------------------------------------------------
    Row(
        "velocity: amount per initiator over 24h exceeds the limit",
        """rules:
  - name: daily-eth-limit
    when:
      asset: [ETH]
      velocity: [{window: 24h, per: initiator, measure: amount, over: "10"}]
    action: block
"""
        + ALLOW_ALL,
        BLOCK,
        "daily-eth-limit",
        history=[past("5", 2 * HOUR), past("4.5", 20 * HOUR)],
    ),
    Row(
        "velocity: history older than the window does not count",
        """rules:
  - name: daily-eth-limit
    when:
      asset: [ETH]
      velocity: [{window: 24h, per: initiator, measure: amount, over: "10"}]
    action: block
"""
        + ALLOW_ALL,
        ALLOW,
        "allow-rest",
        history=[past("5", 2 * HOUR), past("4.5", 25 * HOUR)],
    ),
    Row(
        "velocity: another initiator's history does not count per initiator",
        """rules:
  - name: daily-eth-limit
    when:
      asset: [ETH]
      velocity: [{window: 24h, per: initiator, measure: amount, over: "10"}]
    action: block
"""
        + ALLOW_ALL,
        ALLOW,
        "allow-rest",
        history=[past("9.5", HOUR, initiator={"type": "user", "id": "bob"})],
    ),
    Row(
        "velocity: but it counts per source",
        """rules:
  - name: vault-daily
    when:
      asset: [ETH]
      velocity: [{window: 24h, per: source, measure: amount, over: "10"}]
    action: block
"""
        + ALLOW_ALL,
        BLOCK,
        "vault-daily",
        history=[past("9.5", HOUR, initiator={"type": "user", "id": "bob"})],
    ),
    Row(
        "velocity: blocked past transactions do not count",
        """rules:
  - name: daily-eth-limit
    when:
      asset: [ETH]
      velocity: [{window: 24h, per: initiator, measure: amount, over: "10"}]
    action: block
"""
        + ALLOW_ALL,
        ALLOW,
        "allow-rest",
        history=[past("9.5", HOUR, decision="block")],
    ),
    Row(
        "velocity: count per destination",
        """rules:
  - name: three-a-day-to-one-address
    when:
      velocity: [{window: 1d, per: destination, measure: count, up_to: 3}]
    action: allow
""",
        BLOCK,
        None,
        history=[past("0.1", 60), past("0.1", 120), past("0.1", 180)],
    ),
    Row(
        "velocity: value per workspace across assets",
        """rules:
  - name: workspace-usd-limit
    when:
      velocity: [{window: 1h, per: workspace, measure: value, over: "10000"}]
    action: require_approvals
    approvals: {groups: [{group: treasury, count: 1}], deadline: 1h}
"""
        + ALLOW_ALL,
        APPROVALS,
        "workspace-usd-limit",
        history=[
            past("2", 600, initiator={"type": "user", "id": "bob"}),
            past("0", 900, asset=USDC, amount=str(1500 * 10**6)),
        ],
    ),
    # --- approvals ------------------------------------------------------------------------
    Row(
        "enough approvals turn require_approvals into allow",
        """rules:
  - name: treasury-2
    action: require_approvals
    approvals: {groups: [{group: treasury, count: 2}], deadline: 1h}
""",
        ALLOW,
        "treasury-2",
        approvals=["carol", "dave"],
    ),
    Row(
        "too few approvals keep it pending",
        """rules:
  - name: treasury-2
    action: require_approvals
    approvals: {groups: [{group: treasury, count: 2}], deadline: 1h}
""",
        APPROVALS,
        "treasury-2",
        approvals=["carol"],
    ),
    Row(
        "one person counts for one group only",
        """rules:
  - name: two-groups
    action: require_approvals
    approvals:
      groups: [{group: treasury, count: 1}, {group: compliance, count: 1}]
      deadline: 1h
""",
        APPROVALS,
        "two-groups",
        approvals=["erin"],
    ),
    Row(
        "two people fill two groups (erin for compliance, carol for treasury)",
        """rules:
  - name: two-groups
    action: require_approvals
    approvals:
      groups: [{group: treasury, count: 1}, {group: compliance, count: 1}]
      deadline: 1h
""",
        ALLOW,
        "two-groups",
        approvals=["erin", "carol"],
    ),
    Row(
        "a rejection by an eligible approver blocks",
        """rules:
  - name: treasury-2
    action: require_approvals
    approvals: {groups: [{group: treasury, count: 2}], deadline: 1h}
""",
        BLOCK,
        "treasury-2",
        approvals=["carol", "dave"],
        rejections=["erin"],
    ),
    Row(
        "past the deadline the request is blocked",
        """rules:
  - name: treasury-1
    action: require_approvals
    approvals: {groups: [{group: treasury, count: 1}], deadline: 1h}
""",
        BLOCK,
        "treasury-1",
        now=NOW + HOUR + 1,
        approvals=["carol"],
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_specification(row: Row) -> None:
    from shardvault.policy import ApprovalVerdict

    policy = policy_with(row.rules)
    request = make_request(**row.request)
    context = make_context(now=row.now, history=row.history, prices=row.prices)
    approvals = [sign_approval(name, request.digest) for name in row.approvals]
    approvals += [
        sign_approval(name, request.digest, verdict=ApprovalVerdict.REJECT)
        for name in row.rejections
    ]
    result = evaluate(policy, request, context, approvals)
    assert (result.decision, result.rule) == (row.expect, row.rule), "\n".join(result.explanation())
    # Every evaluation explains itself: one trace per rule tried, ending with the
    # deciding rule, and a final line naming the decision.
    assert result.explanation()[-1].startswith(f"decision: {row.expect.value}")
    if row.rule is not None:
        assert result.trace[-1].rule == row.rule
    else:
        assert len(result.trace) == len(policy.rules)
