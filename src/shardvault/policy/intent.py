"""The transfer intent approvers sign (docs/transactions.md, "Approvals"; docs/cosigner.md).

An intent says what a transfer does, before any nonce or fee exists: workspace,
transaction id, network, source address, destination, asset and amount in exact base
units. Its digest is

    SHA-256("shardvault/transaction/intent/v1" || 0x00 || canonical JSON of
    {"workspace", "transaction", "network", "source", "destination", "asset", "amount"})

with canonical JSON as keys sorted, no spaces, ASCII only, and the amount as a decimal
string of base units. The service computes it when a transaction is created; a co-signer
recomputes it from the parsed payload plus the transaction and workspace ids in the
request metadata, so both count approvals over one digest defined here only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from shardvault.policy.errors import RequestError

INTENT_DOMAIN = b"shardvault/transaction/intent/v1\x00"
"""Prefix of the bytes hashed into a transaction's intent digest."""


@dataclass(frozen=True, slots=True)
class TransferIntent:
    """What a transfer does, as approvers see it.

    ``amount`` is in the asset's base units (wei, lamports, token units), exactly.

    Raises:
        RequestError: an empty identifier, or an amount that is not a non-negative integer.
    """

    workspace_id: str
    transaction_id: str
    network: str
    source: str
    destination: str
    asset: str
    amount: int

    def __post_init__(self) -> None:
        for name in ("workspace_id", "transaction_id", "network", "source", "destination"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise RequestError("expected a non-empty string", path=f"intent.{name}")
        if not isinstance(self.asset, str) or not self.asset:
            raise RequestError("expected a non-empty string", path="intent.asset")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount < 0:
            raise RequestError("expected a non-negative integer", path="intent.amount")


def intent_body(intent: TransferIntent) -> bytes:
    """The canonical JSON hashed into the intent digest (module docstring)."""
    body = {
        "workspace": intent.workspace_id,
        "transaction": intent.transaction_id,
        "network": intent.network,
        "source": intent.source,
        "destination": intent.destination,
        "asset": intent.asset,
        "amount": str(intent.amount),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def intent_digest(intent: TransferIntent) -> bytes:
    """The 32-byte digest approvers sign for ``intent``."""
    return hashlib.sha256(INTENT_DOMAIN + intent_body(intent)).digest()
