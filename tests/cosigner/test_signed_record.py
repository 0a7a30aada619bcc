"""One approval, one transfer at each co-signer (DESIGN.md invariant 11).

A coordinator that resends an approved transfer's signing request with a fresh chain
nonce must not get it signed again: the intent digest the approvals cover leaves the
nonce out, so only the co-signer's own record of what it signed can refuse it
(docs/cosigner.md "The record of signed transactions").
"""

from __future__ import annotations

import pytest

from shardvault.chains import ethereum
from shardvault.service.transactions import intent_digest
from tests.cosigner.ecdsa_cluster import ecdsa_cluster, presign
from tests.cosigner.support import POLICY, approval, sign_request

WORKSPACE_ID = "0b7e1c2a-3f4d-4e5f-8a9b-0c1d2e3f4a5b"
RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
ETH_PATH = "m/44/60/0/0/9"
KEY_ID = "eth-replay"
SIGNERS = (1, 3)
FEES = ethereum.FeeParameters(30 * 10**9, 10**9, 21_000)

REPLAY_POLICY = {
    **POLICY,
    "rules": [
        {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
        {
            "name": "eth-needs-approval",
            "when": {"operation": ["transfer"]},
            "action": "require_approvals",
            "approvals": {"groups": [{"group": "treasury", "count": 1}], "deadline": "1h"},
        },
    ],
}


@pytest.fixture(scope="module")
def eth_cluster(tmp_path_factory):
    """Nodes holding a policy where every transfer needs carol, and an ECDSA key made
    with the TEST-ONLY Paillier primes (tests/fixtures/test_only_paillier.json)."""
    root = tmp_path_factory.mktemp("signed-record-cluster")
    with ecdsa_cluster(root, REPLAY_POLICY, KEY_ID, ETH_PATH) as (cluster, public_key):
        cluster.eth_source = str(ethereum.address_from_public_key(public_key))
        cluster.presignatures = 0
        yield cluster


def _approval(cluster, transaction_id):
    """Carol's approval of a 1 ETH transfer's intent, given before any nonce or fee."""
    return approval(
        intent_digest(
            workspace_id=WORKSPACE_ID,
            transaction_id=transaction_id,
            network="hardhat",
            source=cluster.eth_source,
            destination=RECIPIENT,
            asset="ETH",
            amount_base_units=10**18,
        )
    )


def _transfer(nonce, fees=FEES):
    return ethereum.native_transfer(
        chain_id=31337, nonce=nonce, to=RECIPIENT, amount="1", fees=fees
    )


def _sign(cluster, transaction_id, tx):
    """Send one signing request of ``tx`` as transfer ``transaction_id`` with a fresh
    presignature; the results by party."""
    cluster.presignatures += 1
    label = f"p{cluster.presignatures}"
    presign(cluster, KEY_ID, ETH_PATH, label, SIGNERS)
    body = sign_request(
        ethereum.encode_unsigned(tx),
        SIGNERS,
        chain="ethereum",
        key_id=KEY_ID,
        presignature=label,
        path=ETH_PATH,
        approvals=[_approval(cluster, transaction_id)],
    )
    body["metadata"].update({"transaction_id": transaction_id, "workspace_id": WORKSPACE_ID})
    return cluster.run(body, list(SIGNERS))


def test_an_approved_transfer_resent_with_another_nonce_is_refused(eth_cluster):
    first = _sign(eth_cluster, "tx-replay-nonce", _transfer(nonce=3))
    assert {r["status"] for r in first.values()} == {"ok"}, first
    again = _sign(eth_cluster, "tx-replay-nonce", _transfer(nonce=4))
    assert {(r["status"], r.get("check")) for r in again.values()} == {("refused", "replay")}
