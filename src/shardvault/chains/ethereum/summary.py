"""Human-readable summaries of Ethereum transactions: who receives what.

What an approver must see before a signature exists: the network, the recipient, the
asset (ether or a token contract), the amount in base units, and for contract calls the
method and its arguments when the ABI is known (ERC-20 is always known). Calldata that
matches no known ABI is reported as an opaque call with its selector, never guessed at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from shardvault.chains.amounts import Wei
from shardvault.chains.errors import DecodeError, UnsupportedError
from shardvault.chains.ethereum.abi import (
    ERC20_APPROVE,
    ERC20_FUNCTIONS,
    ERC20_TRANSFER,
    ERC20_TRANSFER_FROM,
    AbiFunction,
    AbiValue,
    decode_call,
)
from shardvault.chains.ethereum.address import Address
from shardvault.chains.ethereum.models import Transaction
from shardvault.chains.ethereum.networks import KNOWN_NETWORKS

SummaryKind = Literal[
    "native_transfer",
    "token_transfer",
    "token_approval",
    "contract_call",
    "unknown_contract_call",
    "contract_creation",
]


@dataclass(frozen=True, slots=True)
class TransactionSummary:
    """What a transaction does, in the terms a person approves.

    ``asset`` is ``"native"`` for ether (or the chain's native coin) and the token
    contract's address for token operations; ``amount`` is in the asset's base units.
    """

    kind: SummaryKind
    network: str | None
    recipient: Address | None
    asset: Address | Literal["native"]
    amount: int
    native_value: Wei
    method: str | None = None
    arguments: Mapping[str, AbiValue] = field(default_factory=dict)
    selector: bytes | None = None
    decode_error: str | None = None


def summarize(
    tx: Transaction, known_functions: Iterable[AbiFunction] = ERC20_FUNCTIONS
) -> TransactionSummary:
    """Summarise ``tx`` using ``known_functions`` to decode calldata.

    Never raises for a well-formed transaction: calldata that fails to decode is
    reported in ``decode_error`` with kind ``unknown_contract_call``.
    """
    network = KNOWN_NETWORKS.get(tx.chain_id) if tx.chain_id is not None else None
    network_name = network.name if network else None
    if tx.to is None:
        return TransactionSummary(
            "contract_creation", network_name, None, "native", tx.value, tx.value
        )
    if not tx.data:
        return TransactionSummary(
            "native_transfer", network_name, tx.to, "native", tx.value, tx.value
        )
    try:
        call = decode_call(tx.data, known_functions)
    except (DecodeError, UnsupportedError) as exc:
        return TransactionSummary(
            "unknown_contract_call",
            network_name,
            tx.to,
            "native",
            tx.value,
            tx.value,
            selector=tx.data[:4] if len(tx.data) >= 4 else None,
            decode_error=str(exc),
        )
    args = call.named_arguments()
    values = call.arguments
    fn = call.function
    if fn.selector in (ERC20_TRANSFER.selector, ERC20_APPROVE.selector):
        kind: SummaryKind = (
            "token_transfer" if fn.selector == ERC20_TRANSFER.selector else "token_approval"
        )
        target, amount = values[0], values[1]
        if isinstance(target, Address) and isinstance(amount, int):
            return TransactionSummary(
                kind, network_name, target, tx.to, amount, tx.value, fn.signature, args, fn.selector
            )
    if fn.selector == ERC20_TRANSFER_FROM.selector:
        target, amount = values[1], values[2]
        if isinstance(target, Address) and isinstance(amount, int):
            return TransactionSummary(
                "token_transfer",
                network_name,
                target,
                tx.to,
                amount,
                tx.value,
                fn.signature,
                args,
                fn.selector,
            )
    return TransactionSummary(
        "contract_call",
        network_name,
        tx.to,
        "native",
        tx.value,
        tx.value,
        fn.signature,
        args,
        fn.selector,
    )
