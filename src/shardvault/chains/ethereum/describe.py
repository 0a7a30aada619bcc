"""One JSON-able description of Ethereum data, for the ``shardvault chain decode`` command.

Accepts a raw transaction in hex (signed or unsigned, types 0, 1 and 2) or an EIP-712
typed-data JSON object, and returns every parsed field plus the digests: the signing hash
always, and for a signed transaction its hash and its recovered sender.
"""

from __future__ import annotations

import json
from typing import assert_never

from shardvault.chains.errors import DecodeError
from shardvault.chains.ethereum.abi import abi_value_to_json
from shardvault.chains.ethereum.digest import signing_hash
from shardvault.chains.ethereum.encode import transaction_hash
from shardvault.chains.ethereum.models import (
    AccessListTransaction,
    FeeMarketTransaction,
    LegacyTransaction,
    SignedTransaction,
    Transaction,
)
from shardvault.chains.ethereum.parse import parse_hex, parse_transaction
from shardvault.chains.ethereum.signature import recover_sender
from shardvault.chains.ethereum.summary import TransactionSummary, summarize
from shardvault.chains.ethereum.typed_data import (
    domain_separator,
    hash_struct,
    parse_typed_data,
    typed_data_hash,
)

MAX_TYPED_DATA_CHARS = 1024 * 1024
"""The largest typed-data JSON document accepted."""


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _summary_json(summary: TransactionSummary) -> dict[str, object]:
    return {
        "kind": summary.kind,
        "network": summary.network,
        "recipient": summary.recipient.checksummed if summary.recipient else None,
        "asset": summary.asset if summary.asset == "native" else summary.asset.checksummed,
        "amount": str(summary.amount),
        "native_value": str(summary.native_value),
        "method": summary.method,
        "arguments": {k: abi_value_to_json(v) for k, v in summary.arguments.items()},
        "selector": _hex(summary.selector) if summary.selector else None,
        "decode_error": summary.decode_error,
    }


def _fee_fields(tx: Transaction) -> dict[str, object]:
    if isinstance(tx, LegacyTransaction | AccessListTransaction):
        return {"gas_price": str(tx.gas_price)}
    if isinstance(tx, FeeMarketTransaction):
        return {
            "max_fee_per_gas": str(tx.max_fee_per_gas),
            "max_priority_fee_per_gas": str(tx.max_priority_fee_per_gas),
        }
    assert_never(tx)


def describe_transaction(raw: bytes) -> dict[str, object]:
    """Parse a raw transaction and describe it field by field.

    Raises:
        ChainError: whatever :func:`parse_transaction` raises.
    """
    parsed = parse_transaction(raw)
    signed = parsed if isinstance(parsed, SignedTransaction) else None
    tx = parsed.transaction if isinstance(parsed, SignedTransaction) else parsed
    result: dict[str, object] = {
        "kind": "transaction",
        "type": tx.type,
        "chain_id": tx.chain_id,
        "nonce": tx.nonce,
        "to": tx.to.checksummed if tx.to else None,
        "value": str(tx.value),
        "data": _hex(tx.data),
        "gas_limit": tx.gas_limit,
        **_fee_fields(tx),
    }
    if not isinstance(tx, LegacyTransaction):
        result["access_list"] = [
            {"address": e.address.checksummed, "storage_keys": [_hex(k) for k in e.storage_keys]}
            for e in tx.access_list
        ]
    result["signed"] = signed is not None
    result["signing_hash"] = _hex(signing_hash(tx))
    if signed is not None:
        result["hash"] = _hex(transaction_hash(signed))
        result["from"] = recover_sender(signed).checksummed
        result["v"] = signed.v
        result["r"] = hex(signed.signature.r)
        result["s"] = hex(signed.signature.s)
        result["y_parity"] = signed.signature.y_parity
    else:
        result["hash"] = None
    result["summary"] = _summary_json(summarize(tx))
    return result


def describe_typed_data(text: str) -> dict[str, object]:
    """Validate an EIP-712 JSON document and give its intermediate hashes.

    Raises:
        DecodeError: not JSON or too large.
        InvalidFieldError: the document does not match EIP-712's rules.
    """
    if len(text) > MAX_TYPED_DATA_CHARS:
        raise DecodeError("is larger than 1 MiB", field="typed_data")
    try:
        payload: object = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise DecodeError("is not valid JSON", field="typed_data") from exc
    typed = parse_typed_data(payload)
    return {
        "kind": "eip712",
        "primary_type": typed.primary_type,
        "domain": dict(typed.domain),
        "message": dict(typed.message),
        "domain_separator": _hex(domain_separator(typed)),
        "message_hash": None if typed.primary_type == "EIP712Domain" else _hex(hash_struct(typed)),
        "signing_hash": _hex(typed_data_hash(typed)),
    }


def describe(data: str) -> dict[str, object]:
    """Describe a hex raw transaction or an EIP-712 JSON document (starting with ``{``).

    Raises:
        ChainError: a subclass naming the field at fault when the input is invalid.
    """
    if not isinstance(data, str):
        raise DecodeError("must be text", field="data")
    if data.lstrip().startswith("{"):
        return describe_typed_data(data)
    return describe_transaction(parse_hex(data, field="transaction"))
