"""Co-signers cap an Ethereum transaction's fees under the signed policy (DESIGN.md
invariant 12, docs/policy.md "Fee caps").

The intent approvers sign leaves fees out, so without a cap a compromised coordinator
could spend a wallet's balance on gas inside an approved transfer. The nodes here are
in-process co-signers holding an ECDSA key made with the TEST-ONLY Paillier primes
(tests/fixtures/test_only_paillier.json); signatures are checked with eth-account.
"""

from __future__ import annotations

import pytest
from eth_account import Account

from shardvault.chains import ethereum
from shardvault.cosigner.checks import check_fee, signing_target
from shardvault.cosigner.errors import RequestRefused
from shardvault.policy import BundleChain, parse_admin_set
from tests.cosigner.ecdsa_cluster import ecdsa_cluster, presign
from tests.cosigner.support import (
    ADMIN_SET,
    POLICY,
    WORKSPACE,
    metadata,
    policy_chain,
    sign_request,
    signed_bundle,
)

HARDHAT = 31337
RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
ETH_PATH = "m/44/60/0/0/9"
GWEI = 10**9
MAX_FEE_WEI = 21_000 * 100 * GWEI
"""The cap on hardhat: a plain transfer at up to 100 gwei per gas."""
MAX_PRIORITY_FEE_WEI = 5 * GWEI

CAPPED_POLICY = {
    **POLICY,
    "rules": [
        {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
        {"name": "transfers", "when": {"operation": ["transfer"]}, "action": "allow"},
    ],
    "fee_caps": {
        "hardhat": {
            "max_fee_wei": str(MAX_FEE_WEI),
            "max_priority_fee_per_gas_wei": str(MAX_PRIORITY_FEE_WEI),
        }
    },
}


@pytest.fixture(scope="module")
def eth_cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("fee-cap-cluster")
    with ecdsa_cluster(root, CAPPED_POLICY, "eth-1", ETH_PATH) as (cluster, public_key):
        cluster.eth_source = str(ethereum.address_from_public_key(public_key))
        yield cluster


def _transfer(max_fee_per_gas, priority_fee_per_gas, gas_limit=21_000, nonce=0):
    fees = ethereum.FeeParameters(max_fee_per_gas, priority_fee_per_gas, gas_limit)
    return ethereum.native_transfer(
        chain_id=HARDHAT, nonce=nonce, to=RECIPIENT, amount="0.1", fees=fees
    )


def _sign(cluster, tx, label, signers=(1, 3)):
    body = sign_request(
        ethereum.encode_unsigned(tx),
        signers,
        chain="ethereum",
        key_id="eth-1",
        presignature=label,
        path=ETH_PATH,
    )
    return cluster.run(body, list(signers))


def test_absurd_fee_is_refused_by_every_cosigner(eth_cluster):
    """21000 gas at 10,000 gwei (0.21 ETH of fee) under a 0.0021 ETH cap."""
    presign(eth_cluster, "eth-1", ETH_PATH, "absurd")
    tx = _transfer(10_000 * GWEI, 2 * GWEI)
    results = _sign(eth_cluster, tx, "absurd")
    assert {(r["status"], r.get("check")) for r in results.values()} == {("refused", "fee")}, (
        results
    )
    worst = 21_000 * 10_000 * GWEI
    assert all(
        f"worst-case fee {worst} wei" in r["reason"] and f"max_fee_wei {MAX_FEE_WEI}" in r["reason"]
        for r in results.values()
    ), results


def test_transfer_under_the_cap_is_signed(eth_cluster):
    presign(eth_cluster, "eth-1", ETH_PATH, "under")
    tx = _transfer(100 * GWEI, MAX_PRIORITY_FEE_WEI)
    results = _sign(eth_cluster, tx, "under")
    assert {r["status"] for r in results.values()} == {"ok"}, results
    signature = bytes.fromhex(results[1]["signature"])
    raw = ethereum.encode_signed(
        ethereum.assemble(
            tx,
            int.from_bytes(signature[:32], "big"),
            int.from_bytes(signature[32:64], "big"),
            signature[64],
        )
    )
    assert Account.recover_transaction(raw) == eth_cluster.eth_source


def test_a_fee_bump_above_the_cap_is_refused_after_the_original_was_signed(eth_cluster):
    """A replacement of the same nonce (the record lets it through as a fee bump) is
    checked against the cap like the original: nothing exempts a bump."""
    presign(eth_cluster, "eth-1", ETH_PATH, "bump-original")
    original = _transfer(100 * GWEI, MAX_PRIORITY_FEE_WEI, nonce=7)
    results = _sign(eth_cluster, original, "bump-original")
    assert {r["status"] for r in results.values()} == {"ok"}, results
    presign(eth_cluster, "eth-1", ETH_PATH, "bump-above")
    bump = _transfer(200 * GWEI, MAX_PRIORITY_FEE_WEI, nonce=7)
    results = _sign(eth_cluster, bump, "bump-above")
    assert {(r["status"], r.get("check")) for r in results.values()} == {("refused", "fee")}
    assert all(f"max_fee_wei {MAX_FEE_WEI}" in r["reason"] for r in results.values()), results


def test_priority_fee_above_its_cap_is_refused_by_every_cosigner(eth_cluster):
    """Within the total cap, but the tip per gas is above its own cap."""
    tx = _transfer(50 * GWEI, MAX_PRIORITY_FEE_WEI + 1)
    results = _sign(eth_cluster, tx, "never-made", signers=(1, 2, 3))
    assert {(r["status"], r.get("check")) for r in results.values()} == {("refused", "fee")}
    assert all("max_priority_fee_per_gas_wei" in r["reason"] for r in results.values()), results


# --- The check itself, on parsed payloads ---------------------------------------------


@pytest.fixture(scope="module")
def capped_chain():
    return policy_chain(CAPPED_POLICY)


def _target(tx):
    body = {"chain": "ethereum", "payload": ethereum.encode_unsigned(tx).hex()}
    return signing_target({**body, "metadata": metadata()}, None)


def _legacy(gas_price, gas_limit=21_000, chain_id=HARDHAT, access_list=False):
    to = ethereum.parse_address(RECIPIENT)
    if access_list:
        return ethereum.AccessListTransaction(chain_id, 0, gas_price, gas_limit, to, 1)
    return ethereum.LegacyTransaction(chain_id, 0, gas_price, gas_limit, to, 1)


@pytest.mark.parametrize("access_list", [False, True], ids=["legacy", "access-list"])
def test_gas_price_transactions_are_capped_by_gas_limit_times_gas_price(capped_chain, access_list):
    at_cap = _legacy(100 * GWEI, access_list=access_list)
    check_fee(capped_chain, _target(at_cap))
    # A gas price far above any priority fee cap is fine: the tip of a legacy
    # transaction is not known, only its worst case is capped.
    over = _legacy(100 * GWEI + 1, access_list=access_list)
    with pytest.raises(RequestRefused) as caught:
        check_fee(capped_chain, _target(over))
    assert caught.value.check == "fee"
    worst = 21_000 * (100 * GWEI + 1)
    assert f"worst-case fee {worst} wei" in caught.value.reason
    assert f"max_fee_wei {MAX_FEE_WEI}" in caught.value.reason


def test_a_large_gas_limit_is_capped_too(capped_chain):
    tx = _transfer(GWEI, GWEI, gas_limit=30_000_000)
    with pytest.raises(RequestRefused) as caught:
        check_fee(capped_chain, _target(tx))
    assert caught.value.check == "fee"


def test_the_worst_case_fee_at_the_cap_passes(capped_chain):
    check_fee(capped_chain, _target(_transfer(100 * GWEI, MAX_PRIORITY_FEE_WEI)))


def test_a_network_without_a_cap_gets_no_fee_check(capped_chain):
    """Sepolia has no entry in the policy's fee_caps (docs/policy.md: set caps)."""
    fees = ethereum.FeeParameters(10_000 * GWEI, 10_000 * GWEI, 21_000)
    tx = ethereum.native_transfer(chain_id=11155111, nonce=0, to=RECIPIENT, amount="0.1", fees=fees)
    target = _target(tx)
    assert target.fee is not None
    assert target.fee.max_fee_wei == 21_000 * 10_000 * GWEI
    check_fee(capped_chain, target)


def test_a_policy_without_caps_gets_no_fee_check():
    chain = BundleChain(WORKSPACE, parse_admin_set(ADMIN_SET))
    chain.accept(signed_bundle(policy={k: v for k, v in CAPPED_POLICY.items() if k != "fee_caps"}))
    check_fee(chain, _target(_transfer(10_000 * GWEI, 10_000 * GWEI)))
