"""Fuzzing the policy layer's parsers: whatever the input, only typed errors escape.

Each parser of untrusted input (policy and address-book documents, YAML/JSON text,
requests, history, contexts, approvals, bundles) gets arbitrary JSON-like values and
random mutations of valid inputs; it must either return a value or raise a
:class:`~shardvault.policy.errors.PolicyError`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shardvault.policy import (
    PolicyError,
    approval_to_json,
    new_bundle,
    parse_address_book,
    parse_approval,
    parse_bundle,
    parse_context,
    parse_history,
    parse_policy,
    parse_request,
    parse_text,
)

from ._support import BOOK, request_data, sign_approval
from .test_bundle import ADMINS, policy_v
from .test_load import rich

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["0x" + "ab" * 32, "ab" * 32, "24h", "09:00", "ed25519", "*", "1.5", "-1"]),
)
json_like = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=10), children, max_size=4),
    ),
    max_leaves=20,
)


def nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value``."""
    out = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            out += nodes(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += nodes(item, (*path, i))
    return out


def replaced(document: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    out = copy.deepcopy(document)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = new
    return out


PARSERS: dict[str, Callable[[Any], object]] = {
    "policy": parse_policy,
    "address_book": parse_address_book,
    "request": parse_request,
    "history": parse_history,
    "context": parse_context,
    "approval": parse_approval,
    "bundle": parse_bundle,
}
VALID = {
    "policy": rich(),
    "address_book": {
        "format": "shardvault.address-book/v1",
        "entries": [{"name": "a", "network": "ethereum", "address": "0x01"}],
        "whitelists": {"w": ["a"]},
    },
    "request": request_data(contract=None),
    "history": [request_data(), {**request_data(), "decision": "block"}],
    "context": {"now": 1, "prices": {"ETH": "1"}, "reference_currency": "USD"},
    "approval": approval_to_json(sign_approval("carol", b"\x01" * 32)),
    "bundle": new_bundle("acme", policy_v(1), BOOK, ADMINS).to_json(),
}


def must_only_raise_typed(parser: Any, data: Any) -> None:
    try:
        parser(data)
    except PolicyError:
        pass


@settings(max_examples=300, deadline=None)
@given(which=st.sampled_from(sorted(PARSERS)), data=json_like)
def test_arbitrary_values_raise_only_typed_errors(which: str, data: Any) -> None:
    must_only_raise_typed(PARSERS[which], data)


@settings(max_examples=400, deadline=None)
@given(which=st.sampled_from(sorted(PARSERS)), data=st.data())
def test_mutated_valid_inputs_raise_only_typed_errors(which: str, data: st.DataObject) -> None:
    valid = VALID[which]
    path = data.draw(st.sampled_from(nodes(valid)))
    new = data.draw(json_like)
    must_only_raise_typed(PARSERS[which], replaced(valid, path, new))


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200), fmt=st.sampled_from(["yaml", "json"]))
def test_arbitrary_text_raises_only_typed_errors(text: str, fmt: Any) -> None:
    try:
        parse_text(text, fmt)
    except PolicyError:
        pass


def test_valid_inputs_parse() -> None:
    for which, parser in PARSERS.items():
        assert parser(VALID[which]) is not None, which
    assert parse_text("a: 1.25", "yaml") == {"a": Decimal("1.25")}
