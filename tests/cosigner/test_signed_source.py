"""The source a co-signer evaluates is the key and derivation path it signs with, never
the coordinator's word (DESIGN.md invariant 12; docs/policy.md "Signed inputs").

Three in-process co-signers hold one ECDSA key (TEST-ONLY Paillier primes) and a policy
that lets one address of the vault, ``m/44/60/0/0/1``, send without approval, and alice
send up to 1 ETH from any address.
"""

from __future__ import annotations

import pytest

from shardvault.chains import ethereum
from tests.cosigner.ecdsa_cluster import ecdsa_cluster, presign
from tests.cosigner.initiator_support import ALICE, create_body, forward, signed_request
from tests.cosigner.support import POLICY, WORKSPACE, sign_request

HARDHAT = 31337
RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
HOT = "m/44/60/0/0/1"
COLD = "m/44/60/0/0/7"
GWEI = 10**9

SOURCE_POLICY = {
    **POLICY,
    "rules": [
        {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
        {
            "name": "hot-address",
            "when": {"operation": ["transfer"], "source": {"wallets": [HOT]}},
            "action": "allow",
        },
        {
            "name": "alice-any-address",
            "when": {"initiator": {"users": ["alice"]}, "asset": ["ETH"], "amount": {"up_to": "1"}},
            "action": "allow",
        },
    ],
}


@pytest.fixture(scope="module")
def eth_cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("source-cluster")
    with ecdsa_cluster(root, SOURCE_POLICY, "eth-src", HOT) as (cluster, _):
        yield cluster


def _transfer(nonce: int) -> bytes:
    fees = ethereum.FeeParameters(20 * GWEI, GWEI, 21_000)
    tx = ethereum.native_transfer(
        chain_id=HARDHAT, nonce=nonce, to=RECIPIENT, amount="0.1", fees=fees
    )
    return ethereum.encode_unsigned(tx)


def _sign(cluster, payload, label, path, *, wallet=None, request=None, transaction=None):
    presign(cluster, "eth-src", path, label)
    body = sign_request(
        payload, (1, 3), chain="ethereum", key_id="eth-src", presignature=label, path=path
    )
    meta = body["metadata"]
    if wallet is not None:
        meta["source"] = {**meta["source"], "wallet": wallet}
    if request is not None:
        meta["workspace_id"], meta["transaction_id"] = WORKSPACE, transaction
        forward(body, request)
    return cluster.run(body, [1, 3])


def test_the_hot_address_sends_under_its_own_path(eth_cluster):
    results = _sign(eth_cluster, _transfer(0), "hot", HOT, wallet=HOT)
    assert {(r["status"], r["rule"]) for r in results.values()} == {("ok", "hot-address")}


def test_a_wallet_the_coordinator_names_for_another_path_is_refused(eth_cluster):
    """The coordinator spends from the cold address and says it is the hot wallet."""
    results = _sign(eth_cluster, _transfer(0), "cold", COLD, wallet=HOT)
    assert {(r["status"], r.get("check")) for r in results.values()} == {("refused", "source")}
    assert all(COLD in r["reason"] and HOT in r["reason"] for r in results.values()), results


def test_a_signed_request_for_one_address_signed_from_another_is_refused(eth_cluster):
    """Alice asked to pay from address 1 of her wallet; the coordinator derives address 7."""
    request = signed_request(
        ALICE, create_body(RECIPIENT, "0.1", wallet_id="w-eth", source_index=1)
    )
    results = _sign(
        eth_cluster, _transfer(1), "index", COLD, wallet=COLD, request=request, transaction="tx-i"
    )
    assert {(r["status"], r.get("check")) for r in results.values()} == {("refused", "initiator")}
    assert all("source_index" in r["reason"] for r in results.values()), results
