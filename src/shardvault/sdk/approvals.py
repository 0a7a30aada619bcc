"""What an approver's client checks before it signs (DESIGN.md invariant 13, "Approvers
sign what they see"; docs/transactions.md, "Approvals").

The server computes a transfer's intent digest when the transfer is created; a
compromised server could show one transfer and ask for an approval of another's digest.
So the client recomputes the digest itself, with :mod:`shardvault.policy.intent` (the
one definition, the same code co-signers run), from the fields of the transaction it
shows the approver, and signs only that digest: the server's ``intent_digest`` must
equal it, or :class:`~shardvault.sdk.errors.DigestMismatchError` is raised and nothing
is signed.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation, localcontext
from typing import TYPE_CHECKING

from shardvault.policy.errors import PolicyError
from shardvault.policy.intent import TransferIntent, intent_digest
from shardvault.sdk.errors import DigestMismatchError

if TYPE_CHECKING:
    from shardvault.sdk.custody import Transaction

INTENT_FIELDS = (
    "workspace_id",
    "id",
    "intent_network",
    "source_address",
    "destination",
    "intent_asset",
    "amount_base_units",
)
"""The fields of a transaction view that make up its intent, in the intent's order."""


AMOUNT_PRECISION = 80
"""Digits enough for any amount the API accepts (80 characters) at any decimals."""


def _amount_agrees(tx: Transaction) -> bool:
    """Whether ``amount`` (whole units, what a person reads) is exactly
    ``amount_base_units`` (what the intent holds) at ``asset_decimals``."""
    try:
        whole = Decimal(tx.amount)
        base_units = int(tx.amount_base_units)
    except (InvalidOperation, ValueError):
        return False
    if not whole.is_finite() or not 0 <= tx.asset_decimals <= AMOUNT_PRECISION:
        return False
    with localcontext() as context:
        context.prec = 2 * AMOUNT_PRECISION
        return whole.scaleb(tx.asset_decimals) == base_units


def checked_intent(tx: Transaction, transaction_id: str) -> TransferIntent:
    """The intent of ``tx``, the transaction the server returned for ``transaction_id``,
    once its ``intent_digest`` is checked against the one recomputed from its fields.

    Raises:
        DigestMismatchError: ``tx`` is another transaction than the one asked for, not a
            transfer, its ``amount`` is not its ``amount_base_units``, its fields do not
            form an intent, or the server's digest is not theirs.
    """
    if tx.id != transaction_id:
        raise DigestMismatchError(
            f"asked for transaction {transaction_id!r}, the server returned another",
            fields=("id",),
        )
    if tx.operation != "transfer":
        raise DigestMismatchError(
            f"a {tx.operation!r} has no intent this client can recompute", fields=("operation",)
        )
    if not _amount_agrees(tx):
        raise DigestMismatchError(
            f"amount is not amount_base_units at {tx.asset_decimals} decimals",
            fields=("amount", "amount_base_units", "asset_decimals"),
        )
    try:
        intent = TransferIntent(
            workspace_id=tx.workspace_id,
            transaction_id=tx.id,
            network=tx.intent_network,
            source=tx.source_address,
            destination=tx.destination,
            asset=tx.intent_asset,
            amount=int(tx.amount_base_units),
        )
    except PolicyError as exc:
        raise DigestMismatchError(
            f"the transaction's fields do not form an intent: {exc}", fields=INTENT_FIELDS
        ) from None
    if intent_digest(intent).hex() != tx.intent_digest.lower():
        raise DigestMismatchError(
            "the server's intent_digest is not the digest of the transfer it shows",
            fields=INTENT_FIELDS,
        )
    return intent
