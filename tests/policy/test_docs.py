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
        sign_approval(name, request.digest, version=policy.version)
        for name in example.get("approvals", [])
    ]
    result = evaluate(policy, request, context, approvals)
    expected = example["expect"]
    assert result.decision is Decision(expected["decision"]), "\n".join(result.explanation())
    assert result.rule == expected["rule"]


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
