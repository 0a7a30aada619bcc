"""Differential checks against eth-account, an independent implementation: it decodes and
recovers the sender of our raw transactions, and signing the same fields with it yields
byte-identical transactions."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account._utils.legacy_transactions import Transaction as EthAccountLegacy
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes
from hypothesis import given, settings

from shardvault.chains.ethereum import (
    LegacyTransaction,
    Transaction,
    address_from_public_key,
    assemble,
    encode_signed,
    signing_hash,
    transaction_hash,
)
from tests.chains.ethereum.helpers import test_only_public_key, test_only_sign_digest
from tests.chains.ethereum.strategies import test_only_keys, transactions


def _as_web3_dict(tx: Transaction) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "nonce": tx.nonce,
        "gas": tx.gas_limit,
        "to": tx.to.checksummed if tx.to else b"",
        "value": tx.value,
        "data": tx.data,
    }
    if tx.chain_id is not None:
        fields["chainId"] = tx.chain_id
    if isinstance(tx, LegacyTransaction):
        fields["gasPrice"] = tx.gas_price
        return fields
    fields["type"] = tx.type
    fields["accessList"] = [
        {"address": e.address.checksummed, "storageKeys": ["0x" + k.hex() for k in e.storage_keys]}
        for e in tx.access_list
    ]
    if tx.type == 1:
        fields["gasPrice"] = tx.gas_price  # type: ignore[union-attr]
    else:
        fields["maxFeePerGas"] = tx.max_fee_per_gas  # type: ignore[union-attr]
        fields["maxPriorityFeePerGas"] = tx.max_priority_fee_per_gas  # type: ignore[union-attr]
    return fields


@given(transactions, test_only_keys)
@settings(max_examples=150, deadline=None)
def test_eth_account_decodes_and_recovers_our_transactions(tx: Transaction, key: bytes) -> None:
    r, s, y = test_only_sign_digest(key, signing_hash(tx))
    signed = assemble(tx, r, s, y)
    raw = encode_signed(signed)
    expected_sender = address_from_public_key(test_only_public_key(key)).checksummed
    assert Account.recover_transaction(raw) == expected_sender
    if isinstance(tx, LegacyTransaction):
        decoded = EthAccountLegacy.from_bytes(raw)
        assert (decoded.nonce, decoded.gasPrice, decoded.gas, decoded.value, decoded.data) == (
            tx.nonce,
            tx.gas_price,
            tx.gas_limit,
            tx.value,
            tx.data,
        )
        assert (decoded.v, decoded.r, decoded.s) == (signed.v, r, s)
    else:
        typed = TypedTransaction.from_bytes(HexBytes(raw))
        assert bytes(typed.hash()) == signing_hash(tx)
        assert bytes(typed.encode()) == raw
        as_dict = typed.as_dict()
        assert as_dict["chainId"] == tx.chain_id
        assert as_dict["nonce"] == tx.nonce
        assert as_dict["value"] == tx.value
        assert bytes(as_dict["data"]) == tx.data
        assert (as_dict["v"], as_dict["r"], as_dict["s"]) == (y, r, s)


@given(transactions, test_only_keys)
@settings(max_examples=100, deadline=None)
def test_eth_account_signing_gives_identical_bytes(tx: Transaction, key: bytes) -> None:
    r, s, y = test_only_sign_digest(key, signing_hash(tx))
    ours = assemble(tx, r, s, y)
    theirs = Account.sign_transaction(_as_web3_dict(tx), key)
    assert encode_signed(ours) == bytes(theirs.raw_transaction)
    assert transaction_hash(ours) == bytes(theirs.hash)
