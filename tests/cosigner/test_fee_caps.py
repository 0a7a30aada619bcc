"""Co-signers cap an Ethereum transaction's fees under the signed policy (DESIGN.md
invariant 12, docs/policy.md "Fee caps").

The intent approvers sign leaves fees out, so without a cap a compromised coordinator
could spend a wallet's balance on gas inside an approved transfer. The nodes here are
in-process co-signers holding an ECDSA key made with the TEST-ONLY Paillier primes
(tests/fixtures/test_only_paillier.json); signatures are checked with eth-account.
"""

from __future__ import annotations

import pytest

from shardvault.chains import ethereum
from tests.cosigner.ecdsa_cluster import ecdsa_cluster, presign
from tests.cosigner.support import POLICY, sign_request

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


@pytest.mark.xfail(
    strict=True,
    reason="co-signers do not cap fees yet: an absurd fee inside an allowed transfer is signed",
)
def test_absurd_fee_is_refused_by_every_cosigner(eth_cluster):
    """21000 gas at 10,000 gwei (0.21 ETH of fee) under a 0.0021 ETH cap."""
    presign(eth_cluster, "eth-1", ETH_PATH, "absurd")
    tx = _transfer(10_000 * GWEI, 2 * GWEI)
    results = _sign(eth_cluster, tx, "absurd")
    assert {(r["status"], r.get("check")) for r in results.values()} == {("refused", "fee")}, (
        results
    )
