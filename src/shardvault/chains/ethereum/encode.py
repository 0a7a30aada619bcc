"""Serialisation of Ethereum transactions: RLP (Yellow Paper Appendix B) and EIP-2718 envelopes.

- Legacy, signed: ``rlp([nonce, gasPrice, gas, to, value, data, v, r, s])``; for signing
  with a chain id, EIP-155 replaces (v, r, s) by (chainId, 0, 0); without a chain id the
  signing list stops after ``data``.
- EIP-2930: ``0x01 ‖ rlp([chainId, nonce, gasPrice, gas, to, value, data, accessList])``,
  signed with ``[yParity, r, s]`` appended.
- EIP-1559: ``0x02 ‖ rlp([chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gas, to,
  value, data, accessList])``, signed likewise.

The unsigned serialisation used to move a transaction between parties is its signing
payload, so the chain id of a legacy transaction survives the trip.
"""

from __future__ import annotations

from typing import assert_never

import rlp
from eth_hash.auto import keccak

from shardvault.chains.ethereum.models import (
    AccessListEntry,
    AccessListTransaction,
    FeeMarketTransaction,
    LegacyTransaction,
    SignedTransaction,
    Transaction,
)

RlpItem = bytes | int | list["RlpItem"]
"""What the rlp encoder takes: byte strings, non-negative integers and nested lists."""


def _to_field(tx: Transaction) -> bytes:
    return b"" if tx.to is None else tx.to.raw


def _access_list(entries: tuple[AccessListEntry, ...]) -> list[RlpItem]:
    return [[e.address.raw, list(e.storage_keys)] for e in entries]


def _fields(tx: Transaction) -> list[RlpItem]:
    """The transaction's own fields in their RLP order, without any signature."""
    if isinstance(tx, LegacyTransaction):
        return [tx.nonce, tx.gas_price, tx.gas_limit, _to_field(tx), tx.value, tx.data]
    if isinstance(tx, AccessListTransaction):
        return [
            tx.chain_id,
            tx.nonce,
            tx.gas_price,
            tx.gas_limit,
            _to_field(tx),
            tx.value,
            tx.data,
            _access_list(tx.access_list),
        ]
    if isinstance(tx, FeeMarketTransaction):
        return [
            tx.chain_id,
            tx.nonce,
            tx.max_priority_fee_per_gas,
            tx.max_fee_per_gas,
            tx.gas_limit,
            _to_field(tx),
            tx.value,
            tx.data,
            _access_list(tx.access_list),
        ]
    assert_never(tx)


def signing_payload(tx: Transaction) -> bytes:
    """The exact bytes whose keccak256 is signed (EIP-155 for legacy, EIP-2718 typed otherwise)."""
    fields = _fields(tx)
    if isinstance(tx, LegacyTransaction):
        if tx.chain_id is not None:
            # EIP-155: hash nine elements, the last three being chainId, 0, 0.
            fields += [tx.chain_id, 0, 0]
        return bytes(rlp.encode(fields))
    return bytes([tx.type]) + bytes(rlp.encode(fields))


def encode_unsigned(tx: Transaction) -> bytes:
    """Serialise an unsigned transaction for transport.

    Equal to the signing payload, except for a legacy transaction without a chain id:
    that one is written, as ethereum/tests writes it, as nine fields ending ``0, 0, 0``
    (chain id 0, no signature) so that the form stays distinct from a signed one.
    """
    if isinstance(tx, LegacyTransaction) and tx.chain_id is None:
        return bytes(rlp.encode([*_fields(tx), 0, 0, 0]))
    return signing_payload(tx)


def encode_signed(signed: SignedTransaction) -> bytes:
    """Serialise a signed transaction as ``eth_sendRawTransaction`` takes it."""
    tx = signed.transaction
    sig = signed.signature
    fields = [*_fields(tx), signed.v, sig.r, sig.s]
    if isinstance(tx, LegacyTransaction):
        return bytes(rlp.encode(fields))
    return bytes([tx.type]) + bytes(rlp.encode(fields))


def transaction_hash(signed: SignedTransaction) -> bytes:
    """The transaction hash nodes and explorers use: keccak256 of the signed serialisation."""
    return bytes(keccak(encode_signed(signed)))
