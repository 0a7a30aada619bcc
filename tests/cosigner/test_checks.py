"""What a co-signer recomputes from a payload, and every refusal of a bad one.

Each refusal names its check (``malformed``, ``payload``, ``digest``, ``key``,
``policy``). Ethereum transactions are built with shardvault's builders and their
digests compared with eth-account's in ``test_node.py``; here the policy view is checked.
"""

from __future__ import annotations

import hashlib
import time

import pytest

from shardvault.chains import bitcoin, ethereum, solana
from shardvault.chains.ethereum.abi import function
from shardvault.chains.solana import system, token
from shardvault.cosigner.checks import (
    bitcoin_target,
    check_policy,
    ethereum_target,
    raw_target,
    signing_target,
    solana_target,
)
from shardvault.cosigner.errors import RequestRefused
from shardvault.policy import BundleChain, parse_admin_set, parse_registry
from tests.cosigner.support import ADMIN_SET, REGTEST_NETWORK, WORKSPACE, metadata, registry

FEES = ethereum.FeeParameters(30 * 10**9, 10**9, 100_000)
TOKEN = "0x3333333333333333333333333333333333333333"
RECIPIENT = "0x2222222222222222222222222222222222222222"
KEY = hashlib.sha256(b"vault key").digest()


def _refused(check: str, call, *args, **kwargs) -> RequestRefused:
    with pytest.raises(RequestRefused) as info:
        call(*args, **kwargs)
    assert info.value.check == check, info.value
    return info.value


MAINNET_TOKENS = parse_registry(
    registry(
        {
            "name": "ethereum",
            "chain": "ethereum",
            "chain_id": 1,
            "assets": [{"id": "TKN", "contract": TOKEN, "decimals": 6}],
        }
    )
)


def test_erc20_transfer_view_needs_the_registry():
    tx = ethereum.erc20_transfer(
        chain_id=1, nonce=1, token=TOKEN, to=RECIPIENT, amount="2.5", decimals=6, fees=FEES
    )
    payload = ethereum.encode_unsigned(tx)
    _refused("asset", ethereum_target, payload, metadata())
    target = ethereum_target(payload, metadata(), registry=MAINNET_TOKENS)
    assert (target.request.asset.id, target.request.asset.decimals) == ("TKN", 6)
    assert target.chain_asset is not None
    assert target.chain_asset.lower() == TOKEN
    assert target.request.amount == 2_500_000
    assert target.request.destination.lower() == RECIPIENT
    assert target.message == ethereum.signing_hash(tx)


def test_contract_call_view_carries_the_selector():
    fn = function("approve(address,uint256)")
    tx = ethereum.contract_call(
        chain_id=1, nonce=2, contract=TOKEN, fn=fn, arguments=[RECIPIENT, 5], fees=FEES
    )
    target = ethereum_target(ethereum.encode_unsigned(tx), metadata())
    assert target.request.operation.value == "contract_call"
    assert target.request.contract_call.selector == fn.selector
    assert target.request.destination.lower() == TOKEN


@pytest.mark.parametrize(
    ("payload", "check"),
    [
        (b"\x02\xc0", "payload"),
        (b"not rlp at all", "payload"),
    ],
)
def test_ethereum_garbage_is_refused(payload, check):
    _refused(check, ethereum_target, payload, metadata())


def test_unknown_chain_id_is_refused():
    tx = ethereum.native_transfer(chain_id=1, nonce=0, to=RECIPIENT, amount="1", fees=FEES)
    unknown = ethereum.FeeMarketTransaction(**{**_fields(tx), "chain_id": 987654321})
    refusal = _refused("network", ethereum_target, ethereum.encode_unsigned(unknown), metadata())
    assert "987654321" in refusal.reason


def _fields(tx):
    import dataclasses

    return {f.name: getattr(tx, f.name) for f in dataclasses.fields(tx)}


def _message(instructions, payer=KEY):
    return solana.serialize_message(
        solana.compile_legacy_message(solana.Pubkey(payer), instructions, bytes(32))
    )


def test_solana_token_transfer_view():
    ours, mint = solana.Pubkey(KEY), solana.Pubkey(hashlib.sha256(b"mint").digest())
    source = solana.Pubkey(hashlib.sha256(b"src ata").digest())
    dest = solana.Pubkey(hashlib.sha256(b"dst ata").digest())
    message = _message([token.transfer_checked(source, mint, dest, ours, 1_500_000, 6)])
    _refused("asset", solana_target, message, metadata(), KEY)
    tokens = parse_registry(
        registry(
            {
                "name": "solana",
                "chain": "solana",
                "assets": [{"id": "MINT", "mint": str(mint), "decimals": 6}],
            }
        )
    )
    target = solana_target(message, metadata(), KEY, tokens)
    assert target.request.asset.id == "MINT"
    assert target.chain_asset == str(mint)
    assert target.request.asset.decimals == 6
    assert target.request.amount == 1_500_000
    assert target.request.destination == str(dest)
    assert target.message == message


def test_solana_refusals():
    ours = solana.Pubkey(KEY)
    other = solana.Pubkey(hashlib.sha256(b"other signer").digest())
    to = solana.Pubkey(hashlib.sha256(b"to").digest())
    two = _message([system.transfer(ours, to, 1), system.transfer(ours, to, 2)])
    _refused("payload", solana_target, two, metadata(), KEY)
    # Our key pays the fee, but the transfer spends another signer's funds.
    theirs = _message([system.transfer(other, to, 1)])
    _refused("payload", solana_target, theirs, metadata(), KEY)
    _refused("payload", solana_target, b"\x01" * 10, metadata(), KEY)


def test_bitcoin_refusals_and_view():
    internal = bytes.fromhex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
    ours = bitcoin.output_key(internal).script_pubkey
    payee = bitcoin.p2tr_script(hashlib.sha256(b"payee").digest())
    other = bitcoin.p2tr_script(hashlib.sha256(b"other").digest())
    outpoint = bitcoin.OutPoint(hashlib.sha256(b"funding").digest(), 0)

    def psbt(outputs, spent=ours):
        p = bitcoin.create_psbt([outpoint], outputs)
        return bitcoin.set_witness_utxo(p, 0, bitcoin.TxOut(100_000, spent)).serialize()

    meta = {**metadata(), "network": "regtest"}
    regtest = parse_registry(registry(REGTEST_NETWORK))
    good = psbt([bitcoin.TxOut(40_000, payee), bitcoin.TxOut(59_000, ours)])
    target = bitcoin_target(good, meta, internal, 0, registry=regtest)
    assert target.request.amount == 40_000
    assert target.request.destination.startswith("bcrt1p")
    assert target.taproot_merkle_root == b""
    mars = {**meta, "network": "mars"}
    _refused("network", bitcoin_target, good, mars, internal, 0, registry=regtest)
    _refused("network", bitcoin_target, good, meta, internal, 0)
    _refused("malformed", bitcoin_target, good, meta, internal, 3, registry=regtest)
    mixed = psbt([bitcoin.TxOut(40_000, payee)], other)
    _refused("payload", bitcoin_target, mixed, meta, internal, 0, registry=regtest)
    two = psbt([bitcoin.TxOut(40_000, payee), bitcoin.TxOut(50_000, other)])
    _refused("payload", bitcoin_target, two, meta, internal, 0, registry=regtest)
    _refused("payload", bitcoin_target, b"psbt\xff", meta, internal, 0, registry=regtest)


def test_raw_and_request_shape_refusals():
    _refused("payload", raw_target, b"\x00" * 31, metadata())
    base = {"chain": "raw", "payload": "00" * 32, "metadata": metadata()}
    assert signing_target(base, None).message == bytes(32)
    _refused("malformed", signing_target, {**base, "metadata": []}, None)
    _refused("malformed", signing_target, {**base, "metadata": {"source": {"vault": "v"}}}, None)
    _refused("malformed", signing_target, {**base, "payload": 5}, None)
    _refused("digest", signing_target, {**base, "digest": "11" * 32}, None)
    _refused("key", signing_target, {**base, "chain": "solana"}, None)
    _refused("malformed", signing_target, {**base, "chain": "bitcoin"}, KEY)
    _refused("key", signing_target, {**base, "chain": "bitcoin", "input_index": 0}, None)


def test_no_policy_installed_refuses_everything():
    chain = BundleChain(WORKSPACE, parse_admin_set(ADMIN_SET))
    request = raw_target(bytes(32), metadata()).request
    refusal = _refused(
        "policy",
        check_policy,
        chain,
        request,
        now=int(time.time()),
        approvals=[],
        history=(),
    )
    assert "no signed policy" in refusal.reason
