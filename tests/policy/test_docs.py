"""The worked examples of ``docs/policy.md`` are tests.

Every fenced block marked ``yaml example`` holds a policy, a context, an optional
history and approvals, a request and the expected decision and rule; each is evaluated
here. Blocks marked ``yaml policy``, ``yaml address-book`` and ``yaml registry`` must load.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from shardvault.policy import (
    Decision,
    History,
    evaluate,
    load_address_book,
    load_policy,
    load_registry,
    parse_context,
    parse_history,
    parse_policy,
    parse_request,
    parse_text,
)
from shardvault.policy.request import parse_timestamp

from ._support import sign_approval

DOC = Path(__file__).resolve().parents[2] / "docs" / "policy.md"
BLOCK = re.compile(r"^```(\w+) ([\w-]+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(kind: str) -> list[str]:
    return [
        body for lang, tag, body in BLOCK.findall(DOC.read_text()) if (lang, tag) == ("yaml", kind)
    ]


EXAMPLES = [parse_text(body, "yaml") for body in blocks("example")]


def test_the_document_has_examples_of_every_outcome() -> None:
    assert len(EXAMPLES) >= 8
    outcomes = {example["expect"]["decision"] for example in EXAMPLES}  # type: ignore[index]
    assert outcomes == {"allow", "block", "require_approvals"}


@pytest.mark.parametrize(
    "example",
    EXAMPLES,
    ids=[str(example["name"]) for example in EXAMPLES],  # type: ignore[index]
)
def test_worked_example(example: Any) -> None:
    policy = parse_policy(example["policy"])
    history = History(parse_history(example.get("history", [])))
    context = parse_context(example["context"], history=history)
    request = parse_request(example["request"])
    approvals = [
        sign_approval(name, request.digest, version=policy.version, signed_at=signed_at)
        for name, signed_at in _approvals(example.get("approvals", []), context.now)
    ]
    result = evaluate(policy, request, context, approvals)
    expected = example["expect"]
    assert result.decision is Decision(expected["decision"]), "\n".join(result.explanation())
    assert result.rule == expected["rule"]
    if "refused" in expected:
        # The typed errors of the statements that did not count, in order.
        counted = result.approval_tally
        assert counted is not None
        assert [type(error).__name__ for _, error in counted.refused] == expected["refused"]


def _approvals(items: list[Any], now: int) -> list[tuple[str, int]]:
    """An example's approvers with the time each signed: a bare name signed at the
    context's ``now``; ``{approver: name, signed_at: time}`` at that time."""
    return [
        (item, now)
        if isinstance(item, str)
        else (item["approver"], parse_timestamp(item["signed_at"], "signed_at"))
        for item in items
    ]


def test_reference_blocks_load() -> None:
    policies = blocks("policy")
    books = blocks("address-book")
    assert policies
    assert books
    for body in policies:
        load_policy(body)
    for body in books:
        load_address_book(body)
    registries = blocks("registry")
    assert registries
    for body in registries:
        registry = load_registry(body)
        assert registry.networks
