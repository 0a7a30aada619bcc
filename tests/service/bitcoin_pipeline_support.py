"""Shared set-up of the Bitcoin pipeline tests: a regtest network served by
:class:`~tests.support_bitcoin_node.BitcoinNodeStandIn`, a BTC asset, a 2-of-3 ECDSA vault
with its BTC wallet (the P2WPKH address of the derived key), and a signed policy that
allows key generation, lets the signer send up to 0.5 BTC (and Solana transfers up to
1 SOL) and holds anything larger for carol's approval.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from shardvault.chains.bitcoin import Network as BitcoinNetwork
from shardvault.chains.bitcoin import encode_segwit_address
from shardvault.policy import policy_to_document
from shardvault.service import policies, transactions, vaults
from shardvault.service.signing import SigningBackend
from tests.service.pipeline_support import (
    Workspace,
    activate_policy,
    create_signed_transfer,
    make_vault_wallet,
)

DESTINATION = encode_segwit_address(
    BitcoinNetwork.REGTEST, 0, hashlib.sha256(b"test destination").digest()[:20]
)
"""A regtest P2WPKH address nobody in the tests holds."""


def bitcoin_policy(ws: Workspace, *, version: int = 1) -> dict[str, object]:
    return {
        "format": "shardvault.policy/v1",
        "version": version,
        "reference_currency": "USD",
        "approvers": {
            ws.approver.email: {
                "algorithm": "ed25519",
                "public_key": ws.approver.approval_public_hex,
            },
        },
        "groups": {"treasury": [ws.approver.email], "traders": [ws.signer.email]},
        "rules": [
            {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
            {
                "name": "small-btc",
                "when": {
                    "initiator": {"groups": ["traders"]},
                    "asset": ["BTC"],
                    "amount": {"up_to": "0.5"},
                },
                "action": "allow",
            },
            {
                "name": "small-sol",
                "when": {
                    "initiator": {"groups": ["traders"]},
                    "asset": ["SOL"],
                    "amount": {"up_to": "1"},
                },
                "action": "allow",
            },
            {
                "name": "large",
                "when": {"initiator": {"groups": ["traders"]}},
                "action": "require_approvals",
                "approvals": {"groups": [{"group": "treasury", "count": 1}], "deadline": "4h"},
            },
        ],
    }


def activate(ws: Workspace, document: dict[str, object]) -> int:
    """Draft, propose (pinning ws.admin_key as a 1-of-1 admin set), sign and activate."""
    return activate_policy(ws, document, sanctioned_entry=False)


def republish(ws: Workspace) -> int | None:
    """The active policy again, as the next version: its bundle then carries the asset
    registry of the networks and assets added since (docs/policy.md, "Asset registry");
    ``None`` while no policy is active."""
    with ws.platform.unit_of_work() as uow:
        bundle = policies.active_policy(uow, ws.owner.principal.workspace_id)
    if bundle is None:
        return None
    document = policy_to_document(bundle.policy)
    return activate(ws, {**document, "version": bundle.version + 1})


@dataclass
class BtcWallet:
    vault_id: str
    wallet_id: str
    address: str


def make_btc_vault(
    ws: Workspace,
    backend: SigningBackend,
    rpc_url: str,
    *,
    schemes: tuple[str, ...] = ("ecdsa-secp256k1",),
) -> BtcWallet:
    """A "regtest" network at ``rpc_url``, a BTC asset, a 2-of-3 vault, its BTC wallet."""
    owner = ws.owner.principal
    with ws.platform.unit_of_work() as uow:
        vaults.configure_network(uow, owner, name="regtest", kind="bitcoin", rpc_url=rpc_url)
        vaults.add_asset(uow, owner, symbol="BTC", network="regtest", price="60000")
    republish(ws)
    made = make_vault_wallet(ws, backend, "BTC", schemes)
    return BtcWallet(made.vault_id, made.wallet_id, made.address)


def send(ws: Workspace, wallet_id: str, amount: str, to: str = DESTINATION) -> str:
    """A transfer the signer creates with a signed request (as through the API)."""
    view = create_signed_transfer(ws, ws.signer, wallet_id=wallet_id, destination=to, amount=amount)
    assert view.status == "submitted"
    return view.id


def get(ws: Workspace, tx_id: str) -> transactions.TransactionView:
    with ws.platform.unit_of_work() as uow:
        return transactions.get_transaction(uow, ws.owner.principal, tx_id)


def approve(ws: Workspace, tx_id: str) -> None:
    view = get(ws, tx_id)
    assert view.status == "pending_approval", view.status_reason
    assert view.policy_version is not None
    with ws.platform.unit_of_work() as uow:
        transactions.submit_approval(
            uow,
            ws.approver.principal,
            tx_id,
            **ws.approver.statement(view.intent_digest, view.policy_version),
            now=int(time.time()),
        )
