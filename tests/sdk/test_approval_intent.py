"""Approvers sign what they see (DESIGN.md invariant 13): the SDK recomputes a transfer's
intent digest from the fields of the transaction it was shown and refuses a server
digest that differs.

A stub transport plays a compromised server: it shows the approver one transfer and
returns the intent digest of another, and records whether an approval reached it.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shardvault.policy.intent import TransferIntent, intent_digest
from shardvault.sdk import (
    ApiKeyCredentials,
    DigestMismatchError,
    SdkError,
    ShardvaultClient,
    generate_key_pair,
)
from shardvault.sdk.approvals import INTENT_FIELDS
from shardvault.sdk.custody import Transaction, sign_approval

ALICE = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
MALLORY = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
SOURCE = "0xf39Fd6e51aad88F6F4ce6aB8827279cfFFb92266"
TX_ID = "tx-0001"


def _intent(**changes: Any) -> TransferIntent:
    fields: dict[str, Any] = {
        "workspace_id": "ws-acme",
        "transaction_id": TX_ID,
        "network": "sepolia",
        "source": SOURCE,
        "destination": ALICE,
        "asset": "ETH",
        "amount": 10**18,
    }
    fields.update(changes)
    return TransferIntent(**fields)


def _view(digest: bytes) -> dict[str, object]:
    """The transaction as the server shows it: 1 ETH to Alice, with ``digest``."""
    honest = _intent()
    return {
        "id": TX_ID,
        "workspace_id": honest.workspace_id,
        "vault_id": "vault-1",
        "wallet_id": "wallet-1",
        "source_address": honest.source,
        "network": "my-sepolia",
        "intent_network": honest.network,
        "asset": "ETH",
        "intent_asset": honest.asset,
        "asset_decimals": 18,
        "operation": "transfer",
        "destination": honest.destination,
        "amount": "1",
        "amount_base_units": str(honest.amount),
        "note": None,
        "status": "pending_approval",
        "status_reason": None,
        "intent_digest": digest.hex(),
        "policy_version": 1,
        "policy_rule": "needs-carol",
        "approvals_needed": {"treasury": 1},
        "approval_deadline": None,
        "approvals": [],
        "nonce": None,
        "digest": None,
        "signature": None,
        "signed_payload": None,
        "tx_hash": None,
        "confirmations": 0,
        "block_number": None,
        "created_at": "2025-11-25T10:00:00Z",
        "updated_at": "2025-11-25T10:00:00Z",
        "completed_at": None,
        "version": 3,
    }


class StubServer:
    """Serves one transaction view and records the approvals posted to it."""

    def __init__(self, view: dict[str, object]) -> None:
        self.view = view
        self.approvals: list[dict[str, object]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == f"/v1/transactions/{TX_ID}":
            return httpx.Response(200, json=self.view)
        if request.method == "POST" and request.url.path == f"/v1/transactions/{TX_ID}/approvals":
            self.approvals.append(json.loads(request.content))
            return httpx.Response(200, json=self.view)
        return httpx.Response(404, json={"title": "Not Found", "detail": request.url.path})


def _client(server: StubServer) -> ShardvaultClient:
    return ShardvaultClient(
        "http://stub.invalid",
        ApiKeyCredentials.from_pem("key-carol", generate_key_pair("EdDSA")[0]),
        transport=httpx.MockTransport(server.handle),
        max_attempts=1,
    )


def _approve(server: StubServer) -> None:
    client = _client(server)
    with client:
        client.approve_transaction(
            TX_ID, approver="carol@acme.example", key=Ed25519PrivateKey.generate()
        )


def test_sdk_refuses_a_digest_of_another_transfer() -> None:
    # The server shows 1 ETH to Alice and asks for an approval of 1 ETH to Mallory.
    server = StubServer(_view(intent_digest(_intent(destination=MALLORY))))
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
    server = StubServer(_view(intent_digest(_intent(**{field: value}))))
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
    view = _view(intent_digest(_intent()))
    view.update(changes)
    if "id" in changes:
        view["intent_digest"] = intent_digest(_intent(transaction_id=changes["id"])).hex()
    server = StubServer(view)
    with pytest.raises(DigestMismatchError) as refused:
        _approve(server)
    assert refused.value.fields[0] == fields[0]
    assert server.approvals == []


def test_an_honest_view_is_signed_over_the_recomputed_digest() -> None:
    honest = intent_digest(_intent())
    server = StubServer(_view(honest))
    key = Ed25519PrivateKey.generate()
    reviewed: list[TransferIntent] = []
    client = _client(server)
    with client:
        client.approve_transaction(
            TX_ID,
            approver="carol@acme.example",
            key=key,
            on_review=lambda _tx, intent: reviewed.append(intent),
        )
    assert reviewed == [_intent()]
    [posted] = server.approvals
    statement = sign_approval(
        key, approver="carol@acme.example", intent_digest=honest.hex(), policy_version=1
    )
    # Ed25519 is deterministic: the same statement gives the same signature.
    assert posted["signature"] == statement


def test_a_refusal_in_review_signs_nothing() -> None:
    server = StubServer(_view(intent_digest(_intent())))

    class DeclinedError(Exception):
        pass

    def decline(_tx: Transaction, _intent: TransferIntent) -> None:
        raise DeclinedError

    client = _client(server)
    with client, pytest.raises(DeclinedError):
        client.approve_transaction(
            TX_ID,
            approver="carol@acme.example",
            key=Ed25519PrivateKey.generate(),
            on_review=decline,
        )
    assert server.approvals == []
