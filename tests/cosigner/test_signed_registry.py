"""Asset identity, decimals and network names come from the signed registry
(DESIGN.md invariant 12, docs/policy.md "Asset registry", docs/cosigner.md).

Each test feeds a co-signer's checks what a compromised coordinator would send (fake
ERC-20 decimals, a Solana or Bitcoin network name of its choosing, a token nobody
registered) and sees the refusal with its check and a reason naming the fault.
"""

from __future__ import annotations

import hashlib
import time

import pytest

from shardvault.chains import bitcoin, ethereum, solana
from shardvault.chains.solana import system, token
from shardvault.cosigner.checks import check_policy, signing_target
from shardvault.cosigner.errors import RequestRefused
from shardvault.policy import BundleChain, parse_admin_set, parse_registry
from tests.cosigner.support import (
    ADMIN_SET,
    ETH,
    POLICY,
    WORKSPACE,
    hardhat_network,
    metadata,
    needs_treasury,
    signed_bundle,
)

HARDHAT = 31337
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
OTHER_TOKEN = "0x3333333333333333333333333333333333333333"
RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
FEES = ethereum.FeeParameters(30 * 10**9, 10**9, 100_000)
SOL_KEY = hashlib.sha256(b"registry test solana key").digest()
MINT = solana.Pubkey(hashlib.sha256(b"registry test mint").digest())
TAPROOT_KEY = bytes.fromhex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")

TOKEN_POLICY = {
    **POLICY,
    "rules": [
        needs_treasury("usdc-large", {"asset": ["USDC"], "amount": {"over": "1000"}}),
        {"name": "transfers", "when": {"operation": ["transfer"]}, "action": "allow"},
    ],
}

REGISTRY = {
    "format": "shardvault.asset-registry/v1",
    "networks": [
        hardhat_network(ETH, {"id": "USDC", "contract": TOKEN, "decimals": 6}),
        {
            "name": "solana-devnet",
            "chain": "solana",
            "assets": [
                {"id": "SOL", "native": True, "decimals": 9},
                {"id": "DUSD", "mint": str(MINT), "decimals": 6},
            ],
        },
        {
            "name": "regtest",
            "chain": "bitcoin",
            "assets": [{"id": "BTC", "native": True, "decimals": 8}],
        },
    ],
}


@pytest.fixture(scope="module")
def chain():
    chain = BundleChain(WORKSPACE, parse_admin_set(ADMIN_SET))
    chain.accept(signed_bundle(policy=TOKEN_POLICY, assets=REGISTRY))
    return chain


def _refused(check: str, call, *args, **kwargs) -> RequestRefused:
    with pytest.raises(RequestRefused) as info:
        call(*args, **kwargs)
    assert info.value.check == check, info.value
    return info.value


def _erc20(amount="5000", decimals=6, token_contract=TOKEN, chain_id=HARDHAT):
    tx = ethereum.erc20_transfer(
        chain_id=chain_id,
        nonce=0,
        token=token_contract,
        to=RECIPIENT,
        amount=amount,
        decimals=decimals,
        fees=FEES,
    )
    return {"chain": "ethereum", "payload": ethereum.encode_unsigned(tx).hex()}


def _target(chain, body, meta=None, key=None):
    """What ``chain``'s head (and its registry, if it carries one) makes of ``body``."""
    return signing_target(
        {**body, "metadata": meta if meta is not None else metadata()},
        key,
        registry=chain.head.assets,
    )


def test_coordinator_decimals_are_refused():
    """5 000 USDC (6 decimals) told to be an 18-decimal token is 5e-9 units: under any
    approval threshold in whole units. The coordinator may not say decimals at all."""
    body = {**_erc20(), "metadata": {**metadata(), "token_decimals": 18}}
    refusal = _refused("malformed", signing_target, body, None)
    assert "token_decimals" in refusal.reason


def test_token_decimals_come_from_the_registry(chain):
    target = _target(chain, _erc20())
    assert target.request.asset.id == "USDC"
    assert target.request.asset.decimals == 6
    assert target.request.amount == 5_000 * 10**6
    refusal = _refused(
        "policy",
        check_policy,
        chain,
        target.request,
        now=int(time.time()),
        approvals=[],
        history=(),
    )
    assert refusal.rule == "usdc-large"


def test_a_token_the_registry_does_not_name_is_refused(chain):
    refusal = _refused("asset", _target, chain, _erc20(token_contract=OTHER_TOKEN))
    assert "unknown token" in refusal.reason
    assert OTHER_TOKEN.lower() in refusal.reason.lower()


def test_without_a_registry_no_token_is_understood():
    bare = BundleChain(WORKSPACE, parse_admin_set(ADMIN_SET))
    bare.accept(signed_bundle(policy={**POLICY, "rules": [TOKEN_POLICY["rules"][1]]}))
    refusal = _refused("asset", _target, bare, _erc20())
    assert "unknown token" in refusal.reason
    assert "no signed asset registry" in refusal.reason


def test_an_evm_chain_the_registry_does_not_list_is_refused(chain):
    """Sepolia is a known chain id, but the signed registry lists only hardhat."""
    tx = ethereum.native_transfer(chain_id=11155111, nonce=0, to=RECIPIENT, amount="1", fees=FEES)
    body = {"chain": "ethereum", "payload": ethereum.encode_unsigned(tx).hex()}
    refusal = _refused("network", _target, chain, body)
    assert "11155111" in refusal.reason


def _solana_body(instruction):
    ours = solana.Pubkey(SOL_KEY)
    message = solana.compile_legacy_message(ours, [instruction], bytes(32))
    return {"chain": "solana", "payload": solana.serialize_message(message).hex()}


def _sol_transfer():
    ours = solana.Pubkey(SOL_KEY)
    to = solana.Pubkey(hashlib.sha256(b"to").digest())
    return _solana_body(system.transfer(ours, to, 2 * 10**9))


def test_a_solana_network_name_comes_from_the_registry(chain):
    target = _target(chain, _sol_transfer(), key=SOL_KEY)
    assert target.request.network == "solana-devnet"
    assert target.request.asset.id == "SOL"


def test_a_coordinator_solana_network_name_is_refused(chain):
    """The coordinator says mainnet (``solana``) where the admins registered devnet."""
    refusal = _refused(
        "network", _target, chain, _sol_transfer(), {**metadata(), "network": "solana"}, SOL_KEY
    )
    assert "solana-devnet" in refusal.reason


def test_without_a_registry_a_solana_network_name_is_not_taken():
    bare = BundleChain(WORKSPACE, parse_admin_set(ADMIN_SET))
    bare.accept(signed_bundle())
    meta = {**metadata(), "network": "solana-devnet"}
    refusal = _refused("network", _target, bare, _sol_transfer(), meta, SOL_KEY)
    assert "solana-devnet" in refusal.reason


def test_spl_tokens_are_named_and_scaled_by_the_registry(chain):
    ours = solana.Pubkey(SOL_KEY)
    source = solana.Pubkey(hashlib.sha256(b"src ata").digest())
    dest = solana.Pubkey(hashlib.sha256(b"dst ata").digest())
    good = _solana_body(token.transfer_checked(source, MINT, dest, ours, 1_500_000, 6))
    target = _target(chain, good, key=SOL_KEY)
    assert (target.request.asset.id, target.request.asset.decimals) == ("DUSD", 6)
    # The instruction's decimals disagree with the registry's: refused before the chain
    # would refuse it.
    wrong = _solana_body(token.transfer_checked(source, MINT, dest, ours, 1_500_000, 9))
    refusal = _refused("asset", _target, chain, wrong, None, SOL_KEY)
    assert "decimals" in refusal.reason
    stranger = solana.Pubkey(hashlib.sha256(b"unregistered mint").digest())
    unknown = _solana_body(token.transfer_checked(source, stranger, dest, ours, 1, 6))
    refusal = _refused("asset", _target, chain, unknown, None, SOL_KEY)
    assert str(stranger) in refusal.reason


def _taproot_psbt():
    ours = bitcoin.output_key(TAPROOT_KEY).script_pubkey
    payee = bitcoin.p2tr_script(hashlib.sha256(b"payee").digest())
    outpoint = bitcoin.OutPoint(hashlib.sha256(b"funding").digest(), 0)
    psbt = bitcoin.create_psbt(
        [outpoint], [bitcoin.TxOut(40_000, payee), bitcoin.TxOut(59_000, ours)]
    )
    psbt = bitcoin.set_witness_utxo(psbt, 0, bitcoin.TxOut(100_000, ours))
    return {"chain": "bitcoin", "payload": psbt.serialize().hex(), "input_index": 0}


def test_a_bitcoin_network_comes_from_the_registry(chain):
    target = _target(chain, _taproot_psbt(), key=TAPROOT_KEY)
    assert target.request.network == "regtest"
    assert target.request.destination.startswith("bcrt1p")


def test_a_coordinator_bitcoin_network_name_is_refused(chain):
    """A mainnet name for a regtest registry (or any other) is the coordinator's word."""
    for claimed in ("bitcoin", "testnet", "mars"):
        meta = {**metadata(), "network": claimed}
        refusal = _refused("network", _target, chain, _taproot_psbt(), meta, TAPROOT_KEY)
        assert "regtest" in refusal.reason


def test_without_a_registry_bitcoin_is_mainnet_and_another_name_is_refused():
    bare = BundleChain(WORKSPACE, parse_admin_set(ADMIN_SET))
    bare.accept(signed_bundle())
    target = _target(bare, _taproot_psbt(), key=TAPROOT_KEY)
    assert target.request.network == "bitcoin"
    assert target.request.destination.startswith("bc1p")
    meta = {**metadata(), "network": "regtest"}
    refusal = _refused("network", _target, bare, _taproot_psbt(), meta, TAPROOT_KEY)
    assert "regtest" in refusal.reason


def test_a_native_asset_the_registry_does_not_list_is_refused():
    """A registry that lists only a token on hardhat leaves its ETH unpriced and
    unnamed: a native transfer is refused rather than guessed at."""
    tokens_only = {
        **REGISTRY,
        "networks": [{**REGISTRY["networks"][0], "assets": [REGISTRY["networks"][0]["assets"][1]]}],
    }
    bare = BundleChain(WORKSPACE, parse_admin_set(ADMIN_SET))
    bare.accept(
        signed_bundle(policy={**POLICY, "rules": [TOKEN_POLICY["rules"][1]]}, assets=tokens_only)
    )
    tx = ethereum.native_transfer(chain_id=HARDHAT, nonce=0, to=RECIPIENT, amount="1", fees=FEES)
    body = {"chain": "ethereum", "payload": ethereum.encode_unsigned(tx).hex()}
    refusal = _refused("asset", _target, bare, body)
    assert "native" in refusal.reason


def test_the_intent_still_names_the_token_contract(chain):
    """Approvers see (and sign) the contract; the policy sees the registry's id."""
    ids = {"transaction_id": "tx-1", "workspace_id": "ws-1"}
    key = bytes.fromhex("02" + "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
    target = signing_target(
        {**_erc20(), "metadata": {**metadata(), **ids}},
        None,
        ecdsa_key=key,
        registry=parse_registry(REGISTRY),
    )
    assert target.intent is not None
    assert target.intent.asset == ethereum.parse_address(TOKEN).checksummed
    assert target.request.asset.id == "USDC"
