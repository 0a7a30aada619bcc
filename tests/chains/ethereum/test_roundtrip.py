"""Property tests: encode/parse round trips for every transaction type, signed and not,
and agreement of sender recovery with the key that signed."""

from __future__ import annotations

from hypothesis import given, settings

from shardvault.chains.ethereum import (
    SignedTransaction,
    Transaction,
    address_from_public_key,
    assemble,
    assemble_with_public_key,
    encode_signed,
    encode_unsigned,
    parse_transaction,
    recover_sender,
    signing_hash,
)
from tests.chains.ethereum.helpers import test_only_public_key, test_only_sign_digest
from tests.chains.ethereum.strategies import test_only_keys, transactions


@given(transactions)
@settings(max_examples=300)
def test_unsigned_round_trip(tx: Transaction) -> None:
    assert parse_transaction(encode_unsigned(tx)) == tx


@given(transactions, test_only_keys)
@settings(max_examples=150)
def test_signed_round_trip_and_sender(tx: Transaction, key: bytes) -> None:
    r, s, y = test_only_sign_digest(key, signing_hash(tx))
    signed = assemble(tx, r, s, y)
    raw = encode_signed(signed)
    parsed = parse_transaction(raw)
    assert parsed == signed
    assert isinstance(parsed, SignedTransaction)
    assert encode_signed(parsed) == raw
    assert recover_sender(parsed) == address_from_public_key(test_only_public_key(key))
    assert assemble_with_public_key(tx, r, s, test_only_public_key(key)) == signed


@given(transactions)
@settings(max_examples=100)
def test_unsigned_and_signed_forms_never_collide(tx: Transaction) -> None:
    """An unsigned encoding never parses as signed, so nobody mistakes one for the other."""
    assert not isinstance(parse_transaction(encode_unsigned(tx)), SignedTransaction)
