"""Approvers sign what they see (DESIGN.md invariant 13): the SDK recomputes a transfer's
intent digest from the fields of the transaction it was shown and refuses a server
digest that differs.

A stub transport plays a compromised server: it shows the approver one transfer and
returns the intent digest of another, and records whether an approval reached it.
"""

from __future__ import annotations

import time

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shardvault.policy import ApprovalVerdict, approval_message
from shardvault.policy.intent import TransferIntent, intent_digest
from shardvault.sdk import DigestMismatchError, SdkError
from shardvault.sdk.approvals import INTENT_FIELDS
from shardvault.sdk.custody import Transaction, sign_approval
from tests.approval_stub import MALLORY, TX_ID, StubServer, stub_client, stub_intent, stub_view


def _approve(server: StubServer) -> None:
    client = stub_client(server)
    with client:
        client.approve_transaction(
            TX_ID, approver="carol@acme.example", key=Ed25519PrivateKey.generate()
        )


def test_sdk_refuses_a_digest_of_another_transfer() -> None:
    # The server shows 1 ETH to Alice and asks for an approval of 1 ETH to Mallory.
    server = StubServer(stub_view(intent_digest(stub_intent(destination=MALLORY))))
    with pytest.raises(SdkError):
        _approve(server)
    assert server.approvals == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("destination", MALLORY),
        ("amount", 10**21),
        ("asset", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"),
        ("network", "mainnet"),
        ("source", MALLORY),
        ("workspace_id", "ws-globex"),
        ("transaction_id", "tx-0002"),
    ],
)
def test_a_digest_over_any_other_intent_field_is_refused(field: str, value: object) -> None:
    server = StubServer(stub_view(intent_digest(stub_intent(**{field: value}))))
    with pytest.raises(DigestMismatchError) as refused:
        _approve(server)
    assert refused.value.fields == INTENT_FIELDS
    assert "destination" in str(refused.value)
    assert server.approvals == []


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        # Another transaction than the one asked for, even with its own honest digest.
        ({"id": "tx-0002"}, ("id",)),
        # "1" ETH shown, a thousand in the intent.
        ({"amount": "1", "amount_base_units": str(10**21)}, ("amount",)),
        ({"asset_decimals": 15}, ("amount",)),
        ({"amount": "NaN"}, ("amount",)),
        ({"operation": "contract_call"}, ("operation",)),
        ({"destination": ""}, INTENT_FIELDS),
    ],
)
def test_a_view_that_contradicts_itself_is_refused(
    changes: dict[str, object], fields: tuple[str, ...]
) -> None:
    view = stub_view(intent_digest(stub_intent()))
    view.update(changes)
    if "id" in changes:
        view["intent_digest"] = intent_digest(stub_intent(transaction_id=changes["id"])).hex()
    server = StubServer(view)
    with pytest.raises(DigestMismatchError) as refused:
        _approve(server)
    assert refused.value.fields[0] == fields[0]
    assert server.approvals == []


def test_an_honest_view_is_signed_over_the_recomputed_digest() -> None:
    honest = intent_digest(stub_intent())
    server = StubServer(stub_view(honest))
    key = Ed25519PrivateKey.generate()
    reviewed: list[TransferIntent] = []
    client = stub_client(server)
    with client:
        client.approve_transaction(
            TX_ID,
            approver="carol@acme.example",
            key=key,
            on_review=lambda _tx, intent: reviewed.append(intent),
        )
    assert reviewed == [stub_intent()]
    [posted] = server.approvals
    # Dated by the client's clock, and that date is inside the signed statement.
    signed_at = posted["signed_at"]
    assert isinstance(signed_at, int)
    assert abs(signed_at - time.time()) < 60
    statement = sign_approval(
        key,
        approver="carol@acme.example",
        intent_digest=honest.hex(),
        policy_version=1,
        signed_at=signed_at,
    )
    # Ed25519 is deterministic: the same statement gives the same signature.
    assert posted["signature"] == statement
    message = approval_message("carol@acme.example", honest, ApprovalVerdict.APPROVE, 1, signed_at)
    key.public_key().verify(bytes.fromhex(str(posted["signature"])), message)
    redated = approval_message(
        "carol@acme.example", honest, ApprovalVerdict.APPROVE, 1, signed_at + 3600
    )
    with pytest.raises(InvalidSignature):
        key.public_key().verify(bytes.fromhex(str(posted["signature"])), redated)


def test_a_refusal_in_review_signs_nothing() -> None:
    server = StubServer(stub_view(intent_digest(stub_intent())))

    class DeclinedError(Exception):
        pass

    def decline(_tx: Transaction, _intent: TransferIntent) -> None:
        raise DeclinedError

    client = stub_client(server)
    with client, pytest.raises(DeclinedError):
        client.approve_transaction(
            TX_ID,
            approver="carol@acme.example",
            key=Ed25519PrivateKey.generate(),
            on_review=decline,
        )
    assert server.approvals == []
