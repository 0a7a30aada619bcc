"""A stub API server for approval tests: it shows one transfer (1 ETH to Alice) with
whatever intent digest a test gives it, and records the approvals posted to it. Served
through :class:`httpx.MockTransport`, so the SDK and the CLI run unchanged."""

from __future__ import annotations

import json
from typing import Any

import httpx

from shardvault.policy.intent import TransferIntent
from shardvault.sdk import ApiKeyCredentials, ShardvaultClient, generate_key_pair

ALICE = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
MALLORY = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
SOURCE = "0xf39Fd6e51aad88F6F4ce6aB8827279cfFFb92266"
TX_ID = "tx-0001"


def stub_intent(**changes: Any) -> TransferIntent:
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


def stub_view(digest: bytes) -> dict[str, object]:
    """The transaction as the server shows it: 1 ETH to Alice, with ``digest``."""
    honest = stub_intent()
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


def stub_client(server: StubServer) -> ShardvaultClient:
    return ShardvaultClient(
        "http://stub.invalid",
        ApiKeyCredentials.from_pem("key-carol", generate_key_pair("EdDSA")[0]),
        transport=httpx.MockTransport(server.handle),
        max_attempts=1,
    )
