"""Reading policy documents: strict YAML/JSON, unknown fields, the published schema."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardvault.policy import (
    PolicyDocumentError,
    SchemaViolationError,
    UnknownFieldError,
    load_policy,
    parse_address_book,
    parse_policy,
    parse_text,
    policy_to_document,
    published_schema,
    schema_errors,
)
from shardvault.policy.load import MAX_DEPTH, MAX_VERSION, address_book_to_document

from ._support import HEADER, ed25519_key

REPO = Path(__file__).resolve().parents[2]

RICH = (
    HEADER
    + """\
description: every object of the language at least once
rules:
  - name: block-raw
    description: raw digests only from the signing vault
    when:
      operation: [raw_digest_signing]
      source: {vaults: [signer], wallets: [w1], tags: [hot]}
      initiator: {users: [alice], api_keys: [ci-bot], groups: [traders]}
    action: allow
  - name: swap
    when:
      operation: [contract_call]
      destination:
        contracts:
          - {address: "0x4444444444444444444444444444444444444444", network: ethereum,
             selectors: ["0x3593564c"]}
        address_book: [kraken]
        whitelists: [exchanges]
        one_time: true
        any: true
      asset: [ETH]
      network: [ethereum]
      amount: {over: "0.5", up_to: 10}
      value: {up_to: 25000.75}
      time: {days: [mon, fri], from: "09:00", until: "17:30", timezone: Europe/Zurich}
      velocity:
        - {window: 24h, per: initiator, measure: amount, over: "10"}
        - {window: 90m, per: destination, measure: count, up_to: 5}
    action: require_approvals
    approvals:
      groups: [{group: treasury, count: 2}, {group: compliance, count: 1}]
      deadline: 2h
"""
)


def rich() -> dict[str, Any]:
    data = parse_text(RICH, "yaml")
    assert isinstance(data, dict)
    return data


def field_objects(value: object, path: str) -> list[str]:
    """Paths of every object whose keys are language fields (not user-chosen names)."""
    out: list[str] = []
    if isinstance(value, dict):
        if path.endswith(".approvers"):
            for member, key in value.items():
                out += field_objects(key, f"{path}.{member}")
            return out
        if path.endswith((".groups", ".whitelists")) and not path.endswith("approvals.groups"):
            return out
        out.append(path)
        for key, item in value.items():
            out += field_objects(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += field_objects(item, f"{path}[{i}]")
    return out


def resolve(data: Any, path: str) -> Any:
    """The object at ``path`` (as the loader names paths) inside ``data``."""
    node = data
    for part in path.removeprefix("policy").replace("[", ".[").split("."):
        if not part:
            continue
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    return node


def known_field_names(schema: object) -> set[str]:
    names: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                names |= set(value)
            names |= known_field_names(value)
    elif isinstance(schema, list):
        for item in schema:
            names |= known_field_names(item)
    return names


KNOWN = known_field_names(published_schema())
OBJECT_PATHS = field_objects(rich(), "policy")


def test_rich_document_parses_and_every_object_is_enumerated() -> None:
    policy = parse_policy(rich())
    assert len(policy.rules) == 2
    # The walker found the objects the property below mutates, nested ones included.
    assert "policy.rules[1].when.velocity[1]" in OBJECT_PATHS
    assert "policy.rules[1].approvals.groups[1]" in OBJECT_PATHS
    assert "policy.approvers.alice" in OBJECT_PATHS
    assert len(OBJECT_PATHS) >= 20


@settings(max_examples=150, deadline=None)
@given(
    where=st.sampled_from(OBJECT_PATHS),
    name=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).filter(
        lambda n: n not in KNOWN
    ),
    value=st.one_of(st.booleans(), st.integers(), st.text(max_size=5), st.just([])),
)
def test_unknown_field_anywhere_is_rejected_with_its_path(
    where: str, name: str, value: Any
) -> None:
    """Property: adding a field the language does not define to any object of a valid
    document is rejected by the loader, naming that object's path, and by the
    published schema."""
    data = copy.deepcopy(rich())
    resolve(data, where)[name] = value
    with pytest.raises(UnknownFieldError) as info:
        parse_policy(data)
    assert info.value.path == where
    assert name in str(info.value)
    assert schema_errors(data), "the published schema must reject it too"


def test_unknown_field_in_address_book_is_rejected() -> None:
    book = {
        "format": "shardvault.address-book/v1",
        "entries": [{"name": "a", "network": "ethereum", "address": "0x01", "memo": "x"}],
    }
    with pytest.raises(UnknownFieldError) as info:
        parse_address_book(book)
    assert info.value.path == "address_book.entries[0]"
    assert schema_errors(book, "address_book")


def test_canonical_document_round_trips_and_validates() -> None:
    policy = parse_policy(rich())
    document = policy_to_document(policy)
    assert parse_policy(document) == policy
    assert policy_to_document(parse_policy(document)) == document
    assert schema_errors(document) == []
    # The JSON form of the same document gives the same policy.
    text = json.dumps(document)
    assert load_policy(text, "json") == policy


def test_shipped_schema_is_the_documented_one() -> None:
    shipped = json.loads((REPO / "src/shardvault/policy/schema.json").read_text())
    assert shipped == json.loads((REPO / "docs/policy.schema.json").read_text())
    assert shipped == published_schema()


def test_yaml_times_stay_strings_and_numbers_are_exact() -> None:
    """YAML 1.1 would read 17:30 as the integer 1050 and 0.1 as a binary float."""
    data = parse_text("a: 17:30\nb: 0.1\nc: on\nd: 12\ne: true\n", "yaml")
    assert data == {"a": "17:30", "b": Decimal("0.1"), "c": "on", "d": 12, "e": True}
    assert isinstance(data, dict)
    assert isinstance(data["b"], Decimal)


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("a: 1\na: 2\n", "yaml", "duplicate key"),
        ('{"a": 1, "a": 2}', "json", "duplicate key"),
        ("a: &x [1]\nb: *x\n", "yaml", "aliases"),
        ('{"a": NaN}', "json", "NaN"),
        ("a: [1, 2", "yaml", "not YAML"),
        ("{", "json", "not JSON"),
        ("1: x\n", "yaml", "mapping keys are strings"),
    ],
)
def test_malformed_text_is_rejected(text: str, fmt: Any, message: str) -> None:
    with pytest.raises(PolicyDocumentError, match=message):
        parse_text(text, fmt)


def _mutated(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(rich())
    *parents, last = path.split("/")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "where", "message"),
    [
        ("format", "shardvault.policy/v2", "policy.format", "expected format"),
        ("version", 0, "policy.version", "positive integer"),
        ("version", True, "policy.version", "positive integer"),
        ("rules", _DELETE, "policy", "missing field 'rules'"),
        (
            "rules/1/when/amount",
            {"over": "10", "up_to": "5"},
            "policy.rules[1].when.amount",
            "below",
        ),
        ("rules/1/when/amount", {"over": "-1"}, "policy.rules[1].when.amount.over", "decimal"),
        ("rules/1/when/amount", {"over": 1e400}, "policy.rules[1].when.amount.over", "decimal"),
        (
            "rules/1/when/amount",
            {"over": Decimal("1E+999999")},
            "policy.rules[1].when.amount.over",
            "digits",
        ),
        (
            "rules/1/when/amount",
            {"over": Decimal("1E-81")},
            "policy.rules[1].when.amount.over",
            "digits",
        ),
        ("rules/1/when/amount", {}, "policy.rules[1].when.amount", "over, up_to"),
        ("rules/1/when/asset", _DELETE, "policy.rules[1].when", "asset condition"),
        (
            "rules/1/when/operation",
            ["teleport"],
            "policy.rules[1].when.operation[0]",
            "unknown operation",
        ),
        ("rules/1/when/operation", [], "policy.rules[1].when.operation", "non-empty"),
        (
            "rules/1/when/time/timezone",
            "Mars/Olympus",
            "policy.rules[1].when.time.timezone",
            "time zone",
        ),
        ("rules/1/when/time/from", "9am", "policy.rules[1].when.time.from", "HH:MM"),
        ("rules/1/when/time/until", "09:00", "policy.rules[1].when.time", "empty window"),
        ("rules/1/when/time/days", ["someday"], "policy.rules[1].when.time.days", "unknown day"),
        (
            "rules/1/when/velocity/0/window",
            "1y",
            "policy.rules[1].when.velocity[0].window",
            "duration",
        ),
        (
            "rules/1/when/velocity/0/per",
            "planet",
            "policy.rules[1].when.velocity[0].per",
            "expected one of",
        ),
        (
            "rules/1/when/velocity/1/up_to",
            "2.5",
            "policy.rules[1].when.velocity[1]",
            "whole number",
        ),
        (
            "rules/1/when/destination/contracts/0/selectors",
            ["0x12"],
            "policy.rules[1].when.destination.contracts[0].selectors",
            "4 bytes",
        ),
        (
            "rules/1/when/destination/one_time",
            False,
            "policy.rules[1].when.destination.one_time",
            "expected true",
        ),
        (
            "rules/1/when/initiator",
            {"groups": ["nobody"]},
            "policy.rules[1].when.initiator.groups",
            "no group",
        ),
        (
            "rules/1/approvals/groups/0/group",
            "ghosts",
            "policy.rules[1].approvals.groups[0].group",
            "no group",
        ),
        (
            "rules/1/approvals/groups/1/count",
            2,
            "policy.rules[1].approvals.groups[1].count",
            "fewer than 2",
        ),
        ("rules/1/approvals", _DELETE, "policy.rules[1]", "needs approvals"),
        (
            "rules/0/approvals",
            {"groups": [{"group": "treasury", "count": 1}], "deadline": "1h"},
            "policy.rules[0].approvals",
            "only go with",
        ),
        ("rules/1/action", "maybe", "policy.rules[1].action", "expected allow"),
        ("rules/1/name", "block-raw", "policy.rules[1].name", "used twice"),
        (
            "approvers/alice",
            {"algorithm": "rsa", "public_key": "00"},
            "policy.approvers.alice",
            "algorithm",
        ),
        (
            "approvers/alice",
            {"algorithm": "ed25519", "public_key": "zz"},
            "policy.approvers.alice",
            "hex",
        ),
        (
            "approvers/alice",
            {"algorithm": "p256", "public_key": "04" + "00" * 64},
            "policy.approvers.alice",
            "P-256",
        ),
        ("groups/traders", ["alice", "alice"], "policy.groups.traders[1]", "twice"),
    ],
)
def test_invalid_documents_name_the_path(path: str, value: Any, where: str, message: str) -> None:
    with pytest.raises(PolicyDocumentError) as info:
        parse_policy(_mutated(path, value))
    assert info.value.path == where
    assert message in info.value.reason


def test_schema_is_checked_after_the_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loader also validates against the published schema. Every document the
    parser accepts here is valid under the schema; to see the guard act, the schema
    validator is replaced by one that objects, and the loader reports its complaint as a
    SchemaViolationError at the schema's path."""
    from shardvault.policy import load as load_module

    assert schema_errors(rich()) == []

    def objecting(which: str) -> Any:
        return lambda data: [("$.rules[0].name", "objection")]

    monkeypatch.setattr(load_module, "_validator", objecting)
    with pytest.raises(SchemaViolationError) as info:
        parse_policy(rich())
    assert info.value.path == "policy.rules[0].name"


def test_address_book_checks() -> None:
    base: dict[str, Any] = {
        "format": "shardvault.address-book/v1",
        "entries": [
            {"name": "a", "network": "ethereum", "address": "0xAA"},
            {"name": "b", "network": "ethereum", "address": "0xbb"},
        ],
        "whitelists": {"w": ["a"]},
    }
    book = parse_address_book(base)
    assert book.lookup("ethereum", "0xaa") is not None
    assert parse_address_book(address_book_to_document(book)) == book
    dup = copy.deepcopy(base)
    dup["entries"][1]["address"] = "0xaA"
    with pytest.raises(PolicyDocumentError, match="already has an entry"):
        parse_address_book(dup)
    missing = copy.deepcopy(base)
    missing["whitelists"] = {"w": ["zz"]}
    with pytest.raises(PolicyDocumentError, match="no address-book entry"):
        parse_address_book(missing)


def test_p256_approver_key_accepted() -> None:
    from ._support import p256_key, p256_public_hex

    data = copy.deepcopy(rich())
    data["approvers"]["alice"] = {"algorithm": "p256", "public_key": p256_public_hex(p256_key("a"))}
    assert parse_policy(data).approvers["alice"].algorithm.value == "p256"
    assert ed25519_key("x")  # the helper keys are deterministic


def _nested_lists(depth: int) -> list[object]:
    """``depth`` lists, each the only item of the one around it."""
    data: list[object] = []
    for _ in range(depth - 1):
        data = [data]
    return data


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_text_nested_deeper_than_the_bound_is_refused_before_it_is_parsed(fmt: Any) -> None:
    """The bound, not the interpreter's stack, refuses deep text: 64 levels read,
    65 or 5,000 refused with a PolicyDocumentError (never a RecursionError)."""
    assert parse_text(json.dumps(_nested_lists(MAX_DEPTH)), fmt) == _nested_lists(MAX_DEPTH)
    for depth in (MAX_DEPTH + 1, 5000):
        for text in ("[" * depth + "]" * depth, '{"a": ' * depth + "1" + "}" * depth):
            with pytest.raises(PolicyDocumentError, match=f"nested deeper than {MAX_DEPTH}"):
                parse_text(text, fmt)


def test_brackets_inside_json_strings_do_not_count() -> None:
    text = json.dumps({"description": "[" * 500 + '\\"{' * 100})
    assert parse_text(text, "json") == {"description": "[" * 500 + '\\"{' * 100}


def test_yaml_block_nesting_is_bounded_too() -> None:
    text = "".join("  " * level + "a:\n" for level in range(MAX_DEPTH + 1)) + "  " * 65 + "b: 1\n"
    with pytest.raises(PolicyDocumentError, match="nested deeper"):
        parse_text(text, "yaml")


def test_document_data_nested_deeper_than_the_bound_is_refused() -> None:
    """Data that did not come through parse_text (a JSON object in an API request, a
    Python caller) is bounded by parse_policy and parse_address_book themselves; a cycle
    is refused the same way rather than walked forever."""
    deep: dict[str, object] = {"format": "shardvault.policy/v1", "rules": _nested_lists(5000)}
    with pytest.raises(PolicyDocumentError, match="nested deeper") as caught:
        parse_policy(deep)
    assert caught.value.path == "policy"
    cycle: dict[str, object] = {"format": "shardvault.address-book/v1"}
    cycle["entries"] = [cycle]
    with pytest.raises(PolicyDocumentError, match="nested deeper"):
        parse_address_book(cycle)


@pytest.mark.parametrize("version", [MAX_VERSION + 1, 2**63, 2**63 - 1, 10**40])
def test_a_version_beyond_what_the_database_stores_is_refused(version: int) -> None:
    document = policy_to_document(load_policy(HEADER + "rules: []\n"))
    with pytest.raises(PolicyDocumentError, match=r"at most 2\^31 - 1") as caught:
        parse_policy({**document, "version": version})
    assert caught.value.path == "policy.version"
    assert parse_policy({**document, "version": MAX_VERSION}).version == MAX_VERSION
    assert schema_errors({**document, "version": version})
