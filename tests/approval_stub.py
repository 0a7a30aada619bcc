"""A stub API server for approval tests: it shows one transfer (by default 1 ETH to
Alice) with whatever intent digest a test gives it, and records the approvals posted to
it. Served through :class:`httpx.MockTransport` (or over a loopback socket, as the
compromised-server suite does), so the SDK and the CLI run unchanged."""

from __future__ import annotations

import json
from typing import Any

import httpx

from shardvault.chains.amounts import format_decimal_amount
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


def stub_view(
    digest: bytes, honest: TransferIntent | None = None, *, decimals: int = 18
) -> dict[str, object]:
    """The transaction as the server shows it: the fields of ``honest`` (default: 1 ETH
    to Alice, :func:`stub_intent`), an asset of ``decimals``, with ``digest``."""
    honest = honest or stub_intent()
    return {
        "id": honest.transaction_id,
        "workspace_id": honest.workspace_id,
        "vault_id": "vault-1",
        "wallet_id": "wallet-1",
        "source_address": honest.source,
        "network": f"my-{honest.network}",
        "intent_network": honest.network,
        "asset": honest.asset,
        "intent_asset": honest.asset,
        "asset_decimals": decimals,
        "operation": "transfer",
        "destination": honest.destination,
        "amount": format_decimal_amount(honest.amount, decimals),
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
    """Serves one transaction view, at ``transaction_id``, whatever id the view itself
    says, and records the approvals posted to it."""

    def __init__(self, view: dict[str, object], transaction_id: str = TX_ID) -> None:
        self.view = view
        self.transaction_id = transaction_id
        self.approvals: list[dict[str, object]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        shown = f"/v1/transactions/{self.transaction_id}"
        if request.method == "GET" and request.url.path == shown:
            return httpx.Response(200, json=self.view)
        if request.method == "POST" and request.url.path == f"{shown}/approvals":
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
