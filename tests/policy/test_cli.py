"""``shardvault policy evaluate`` and ``shardvault policy replay`` through click's
CliRunner, on files written to a temporary directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from shardvault.cli.main import cli
from shardvault.policy import approval_to_json

from ._support import HEADER, NOW, WEI, request_data, sign_approval

POLICY = (
    HEADER
    + """\
rules:
  - name: daily-eth
    when:
      asset: [ETH]
      velocity: [{window: 24h, per: initiator, measure: amount, over: "5"}]
    action: block
  - name: to-exchanges
    when: {destination: {whitelists: [exchanges]}}
    action: allow
  - name: everything-else
    action: require_approvals
    approvals: {groups: [{group: treasury, count: 2}], deadline: 1h}
"""
)
CONTEXT = {
    "now": NOW,
    "reference_currency": "USD",
    "prices": {"ETH": "3000"},
    "address_book": {
        "format": "shardvault.address-book/v1",
        "entries": [{"name": "kraken", "network": "ethereum", "address": "0x" + "22" * 20}],
        "whitelists": {"exchanges": ["kraken"]},
    },
}


def write(tmp: Path, name: str, content: Any) -> str:
    path = tmp / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["policy", *args])


def test_evaluate_prints_decision_rule_explanation_and_approvals(tmp_path: Path) -> None:
    policy = write(tmp_path, "policy.yaml", POLICY)
    request = write(tmp_path, "request.json", request_data())
    context = write(tmp_path, "context.json", CONTEXT)
    result = run("evaluate", "--policy", policy, "--request", request, "--context", context)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["decision"] == "require_approvals"
    assert out["rule"] == "everything-else"
    assert out["approvals_needed"] == {"treasury": 2}
    assert out["deadline"] == NOW + 3600
    assert out["explanation"][-1].startswith("decision: require_approvals")
    assert any("one-time address" in line for line in out["explanation"])


def test_evaluate_with_approvals_and_history(tmp_path: Path) -> None:
    policy = write(tmp_path, "policy.yaml", POLICY)
    data = request_data()
    request = write(tmp_path, "request.json", data)
    context = write(tmp_path, "context.json", CONTEXT)
    digest = bytes.fromhex(data["digest"])
    approvals = write(
        tmp_path,
        "approvals.json",
        [approval_to_json(sign_approval(n, digest)) for n in ("carol", "dave")],
    )
    result = run(
        "evaluate",
        "--policy",
        policy,
        "--request",
        request,
        "--context",
        context,
        "--approvals",
        approvals,
    )
    assert json.loads(result.output)["decision"] == "allow"
    history = write(
        tmp_path,
        "history.json",
        [request_data(created_at=NOW - 60, amount=str(5 * WEI), digest="01" * 32)],
    )
    result = run(
        "evaluate",
        "--policy",
        policy,
        "--request",
        request,
        "--context",
        context,
        "--history",
        history,
    )
    out = json.loads(result.output)
    assert (out["decision"], out["rule"]) == ("block", "daily-eth")


def test_evaluate_without_context_uses_the_request_time(tmp_path: Path) -> None:
    policy = write(
        tmp_path,
        "policy.json",
        json.dumps(
            {
                "format": "shardvault.policy/v1",
                "version": 1,
                "reference_currency": "USD",
                "rules": [{"name": "all", "action": "allow"}],
            }
        ),
    )
    request = write(tmp_path, "request.json", request_data())
    result = run("evaluate", "--policy", policy, "--request", request)
    assert json.loads(result.output)["decision"] == "allow"


def test_replay_lists_what_the_draft_decides_differently(tmp_path: Path) -> None:
    draft = write(tmp_path, "draft.yaml", POLICY)
    history = write(
        tmp_path,
        "history.json",
        [
            {**request_data(created_at=NOW, destination="0x" + "22" * 20), "decision": "allow"},
            {**request_data(created_at=NOW + 1, digest="02" * 32), "decision": "allow"},
        ],
    )
    context = write(tmp_path, "context.json", {k: v for k, v in CONTEXT.items() if k != "now"})
    result = run("replay", "--policy", draft, "--history", history, "--context", context)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["replayed"] == 2
    assert [d["index"] for d in out["differences"]] == [1]
    assert out["differences"][0]["after"] == "require_approvals"


def test_refused_input_exits_1_with_the_path(tmp_path: Path) -> None:
    policy = write(
        tmp_path, "policy.yaml", POLICY.replace("action: block", "action: block\n    colour: red")
    )
    request = write(tmp_path, "request.json", request_data())
    result = run("evaluate", "--policy", policy, "--request", request)
    assert result.exit_code == 1
    assert "policy.rules[0]: unknown field 'colour'" in result.output
    good = write(tmp_path, "good.yaml", POLICY)
    bad_request = write(tmp_path, "bad.json", {**request_data(), "amount": "-1"})
    result = run("evaluate", "--policy", good, "--request", bad_request)
    assert result.exit_code == 1
    assert "request.amount" in result.output
    not_json = write(tmp_path, "broken.json", "{")
    result = run("evaluate", "--policy", good, "--request", not_json)
    assert result.exit_code == 1
    assert "not JSON" in result.output


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run("evaluate", "--policy", str(tmp_path / "nope.yaml"), "--request", "x")
    assert result.exit_code == 2


def test_replay_against_a_baseline(tmp_path: Path) -> None:
    draft = write(tmp_path, "draft.yaml", POLICY)
    baseline = write(
        tmp_path,
        "current.json",
        {
            "format": "shardvault.policy/v1",
            "version": 1,
            "reference_currency": "USD",
            "rules": [{"name": "allow-all", "action": "allow"}],
        },
    )
    history = write(tmp_path, "history.json", [request_data(created_at=NOW)])
    result = run("replay", "--policy", draft, "--history", history, "--baseline", baseline)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["changes_by_kind"] == {"allow->require_approvals": 1}
    assert out["differences"][0]["before_rule"] == "allow-all"
