"""In-process py-evm (eth-tester) as a consensus-rule verifier: signed transactions of all
three types, built and assembled by shardvault, are accepted and executed by py-evm,
which recovers the same sender. Fast and needs no node."""

from __future__ import annotations

import pytest
from eth_tester import EthereumTester, PyEVMBackend

from shardvault.chains.amounts import Wei
from shardvault.chains.ethereum import (
    AccessListEntry,
    AccessListTransaction,
    FeeMarketTransaction,
    LegacyTransaction,
    Transaction,
    address_from_public_key,
    assemble_with_public_key,
    encode_signed,
    parse_address,
    signing_hash,
    transaction_hash,
)
from tests.chains.ethereum.helpers import test_only_public_key, test_only_sign_digest

RECIPIENT = parse_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")


@pytest.fixture(scope="module")
def chain() -> tuple[EthereumTester, bytes, int]:
    backend = PyEVMBackend()
    tester = EthereumTester(backend)
    key = backend.account_keys[0].to_bytes()  # eth-tester's well-known TEST-ONLY key
    return tester, key, int(backend.chain.chain_id)


def _send(tester: EthereumTester, key: bytes, tx: Transaction) -> dict[str, object]:
    r, s, _ = test_only_sign_digest(key, signing_hash(tx))
    signed = assemble_with_public_key(tx, r, s, test_only_public_key(key))
    tx_hash = tester.send_raw_transaction("0x" + encode_signed(signed).hex())
    assert bytes.fromhex(tx_hash[2:]) == transaction_hash(signed)
    receipt: dict[str, object] = tester.get_transaction_receipt(tx_hash)
    mined = tester.get_transaction_by_hash(tx_hash)
    assert (
        mined["from"].lower()
        == address_from_public_key(test_only_public_key(key)).checksummed.lower()
    )
    return receipt


def test_py_evm_accepts_all_three_types(chain: tuple[EthereumTester, bytes, int]) -> None:
    tester, key, chain_id = chain
    sender = address_from_public_key(test_only_public_key(key)).checksummed
    base_fee = int(tester.get_block_by_number("pending")["base_fee_per_gas"])
    gas_price = Wei(base_fee * 2)
    start = int(tester.get_balance(RECIPIENT.checksummed))
    nonce = int(tester.get_nonce(sender))
    txs: list[Transaction] = [
        LegacyTransaction(chain_id, nonce, gas_price, 21000, RECIPIENT, Wei(1)),
        AccessListTransaction(
            chain_id,
            nonce + 1,
            gas_price,
            30000,
            RECIPIENT,
            Wei(2),
            access_list=(AccessListEntry(RECIPIENT, (bytes(32),)),),
        ),
        FeeMarketTransaction(chain_id, nonce + 2, Wei(10**9), gas_price, 21000, RECIPIENT, Wei(4)),
    ]
    for tx in txs:
        receipt = _send(tester, key, tx)
        assert receipt["status"] == 1
    assert int(tester.get_balance(RECIPIENT.checksummed)) == start + 7
