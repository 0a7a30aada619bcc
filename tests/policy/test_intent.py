"""The shared transfer-intent digest (shardvault.policy.intent).

The expected digests below were computed with ``service/transactions.intent_digest`` as
it stood before the definition moved to the policy layer (commit 18bf3c4), so stored
intent digests keep their meaning. ``_previous_formula`` is that implementation, kept
here as the reference the property test compares against.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shardvault.policy.errors import RequestError
from shardvault.policy.intent import TransferIntent, intent_digest
from shardvault.service.transactions import intent_digest as service_intent_digest


def _previous_formula(**fields: object) -> bytes:
    body = {
        "workspace": fields["workspace_id"],
        "transaction": fields["transaction_id"],
        "network": fields["network"],
        "source": fields["source"],
        "destination": fields["destination"],
        "asset": fields["asset"],
        "amount": str(fields["amount_base_units"]),
    }
    return hashlib.sha256(
        b"shardvault/transaction/intent/v1\x00"
        + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).digest()


CASES = [
    (
        {
            "workspace_id": "0b7e1c2a-3f4d-4e5f-8a9b-0c1d2e3f4a5b",
            "transaction_id": "6f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f",
            "network": "hardhat",
            "source": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "destination": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "asset": "ETH",
            "amount_base_units": 10**18,
        },
        "5d28eed2f456f2a75baefba3b689801229252ff4d60348fdf7606887350cddee",
    ),
    (
        {
            "workspace_id": "ws",
            "transaction_id": "tx-1",
            "network": "solana",
            "source": "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin",
            "destination": "Ünïcode",
            "asset": "SOL",
            "amount_base_units": 0,
        },
        "b2269e6e742c3ed2afad71427daaba6ead9a47f1cc96d6974cf1b3a736451a8e",
    ),
    (
        {
            "workspace_id": "w",
            "transaction_id": "t",
            "network": "sepolia",
            "source": "a",
            "destination": "b",
            "asset": "USDC",
            "amount_base_units": 2**256 - 1,
        },
        "b5ee798f84ed0457de93d617085b32723f2fdc8b95268e810a25cfa1b950558c",
    ),
]


def _intent(fields: dict[str, object]) -> TransferIntent:
    values = dict(fields)
    amount = values.pop("amount_base_units")
    return TransferIntent(amount=amount, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("fields", "expected"), CASES)
def test_policy_digest_is_byte_for_byte_the_previous_service_digest(fields, expected):
    assert intent_digest(_intent(fields)).hex() == expected
    assert _previous_formula(**fields).hex() == expected
    assert service_intent_digest(**fields).hex() == expected  # type: ignore[arg-type]


_text = st.text(min_size=1, max_size=40)


@given(
    workspace=_text,
    transaction=_text,
    network=_text,
    source=_text,
    destination=_text,
    asset=_text,
    amount=st.integers(min_value=0, max_value=2**256),
)
def test_policy_digest_matches_the_previous_formula(
    workspace, transaction, network, source, destination, asset, amount
):
    fields = {
        "workspace_id": workspace,
        "transaction_id": transaction,
        "network": network,
        "source": source,
        "destination": destination,
        "asset": asset,
        "amount_base_units": amount,
    }
    assert intent_digest(_intent(fields)) == _previous_formula(**fields)


@pytest.mark.parametrize(
    "field", ["workspace_id", "transaction_id", "network", "source", "destination", "asset"]
)
def test_every_field_changes_the_digest(field):
    fields, _ = CASES[0]
    base = _intent(fields)
    changed = _intent({**fields, field: str(fields[field]) + "x"})
    assert intent_digest(changed) != intent_digest(base)
    assert intent_digest(_intent({**fields, "amount_base_units": 10**18 + 1})) != intent_digest(
        base
    )


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"workspace_id": ""}, "intent.workspace_id"),
        ({"transaction_id": ""}, "intent.transaction_id"),
        ({"asset": ""}, "intent.asset"),
        ({"amount_base_units": -1}, "intent.amount"),
        ({"amount_base_units": True}, "intent.amount"),
        ({"amount_base_units": "1"}, "intent.amount"),
    ],
)
def test_malformed_intent_is_refused_naming_the_field(change, path):
    fields, _ = CASES[0]
    with pytest.raises(RequestError) as caught:
        _intent({**fields, **change})
    assert caught.value.path == path
