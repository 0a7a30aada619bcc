"""Co-signers count a transfer's approvals over its intent digest (docs/cosigner.md).

Approvals here are made the way the service makes them: the digest comes from
``shardvault.service.transactions.intent_digest`` (the pipeline's code path), computed
before any nonce or fee exists. The co-signer recomputes it from the parsed payload, the
key it signs with and the transaction and workspace ids in the metadata. Ethereum source
addresses are checked against eth-account's derivation; Solana signatures are verified
with PyNaCl (Ed25519, RFC 8032).
"""

from __future__ import annotations

import hashlib
import time

import coincurve
import pytest
from eth_account import Account
from nacl.signing import VerifyKey

from shardvault.chains import ethereum, solana
from shardvault.chains.ethereum.abi import function
from shardvault.chains.solana import system
from shardvault.cosigner.checks import check_policy, signing_target
from shardvault.cosigner.errors import RequestRefused
from shardvault.policy import BundleChain, parse_admin_set
from shardvault.service.transactions import intent_digest
from tests.cosigner.ecdsa_cluster import ecdsa_cluster, presign
from tests.cosigner.initiator_support import (
    ALICE,
    create_body,
    forward,
    forward_solana,
    signed_request,
)
from tests.cosigner.support import (
    ADMIN_SET,
    CAROL,
    DESTINATION,
    ETH,
    LAMPORTS_PER_SOL,
    POLICY,
    WORKSPACE,
    approval,
    dkg_request,
    hardhat_network,
    metadata,
    registry,
    sign_request,
    signed_bundle,
)
from tests.cosigner.test_node import Cluster
from tests.policy._support import statement_json

WORKSPACE_ID = "0b7e1c2a-3f4d-4e5f-8a9b-0c1d2e3f4a5b"
TRANSACTION_ID = "6f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f"
VAULT_SECRET = hashlib.sha256(b"intent test vault key").digest()
VAULT_KEY = coincurve.PrivateKey(VAULT_SECRET).public_key.format(compressed=True)
SOURCE = Account.from_key(VAULT_SECRET).address
RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OTHER_RECIPIENT = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
HARDHAT = 31337
AMOUNT = 10**18

ETH_POLICY = {
    **POLICY,
    "rules": [
        {
            "name": "eth-needs-approval",
            "when": {"operation": ["transfer"]},
            "action": "require_approvals",
            "approvals": {"groups": [{"group": "treasury", "count": 1}], "deadline": "1h"},
        }
    ],
}


INTENT_REGISTRY = registry(
    hardhat_network(ETH, {"id": "TKN", "contract": TOKEN, "decimals": 18}),
    {
        "name": "sepolia",
        "chain": "ethereum",
        "chain_id": 11155111,
        "assets": [{"id": "SEP-ETH", "native": True, "decimals": 18}],
    },
)
"""Hardhat with ETH and a token, and Sepolia: the networks and assets the admins signed."""


@pytest.fixture(scope="module")
def policy_chain():
    chain = BundleChain(WORKSPACE, parse_admin_set(ADMIN_SET))
    chain.accept(signed_bundle(policy=ETH_POLICY, assets=INTENT_REGISTRY))
    return chain


def _pipeline_approval(signed_at=None, **overrides):
    """The approval an approver gives through the service, before nonce and fees."""
    fields = {
        "workspace_id": WORKSPACE_ID,
        "transaction_id": TRANSACTION_ID,
        "network": "hardhat",
        "source": SOURCE,
        "destination": RECIPIENT,
        "asset": "ETH",
        "amount_base_units": AMOUNT,
        **overrides,
    }
    return approval(intent_digest(**fields), signed_at=signed_at)


def _eth_transfer(*, nonce=0, fees=None, to=RECIPIENT, ether="1", chain_id=HARDHAT):
    fees = fees or ethereum.FeeParameters(30 * 10**9, 10**9, 21_000)
    return ethereum.native_transfer(chain_id=chain_id, nonce=nonce, to=to, amount=ether, fees=fees)


def _request(tx, **meta):
    intent_ids = {"transaction_id": TRANSACTION_ID, "workspace_id": WORKSPACE_ID}
    return {
        "chain": "ethereum",
        "payload": ethereum.encode_unsigned(tx).hex(),
        "metadata": {**metadata(), **intent_ids, **meta},
    }


def _check(chain, body, approvals, key=VAULT_KEY):
    target = signing_target(body, None, ecdsa_key=key, registry=chain.head.assets)
    evaluation = check_policy(
        chain,
        target.request,
        now=int(time.time()),
        approvals=approvals,
        history=(),
    )
    return target, evaluation


def test_pipeline_approval_counts_after_nonce_and_fees_are_set(policy_chain):
    """Approved with no nonce or fee chosen; the co-signer sees nonce 7 and new fees."""
    good = _pipeline_approval()
    tx = _eth_transfer(nonce=7, fees=ethereum.FeeParameters(55 * 10**9, 2 * 10**9, 30_000))
    body = {**_request(tx), "digest": ethereum.signing_hash(tx).hex()}
    target, evaluation = _check(policy_chain, body, [good])
    assert evaluation.rule == "eth-needs-approval"
    assert evaluation.approvals[0].approved_by == ("carol",)
    assert target.message == ethereum.signing_hash(tx)
    assert target.intent is not None
    assert target.intent.source == SOURCE
    assert target.request.digest.hex() == good["digest"]
    # The same approval covers a re-serialization with yet another nonce and fees.
    again = _eth_transfer(nonce=8, fees=ethereum.FeeParameters(90 * 10**9, 3 * 10**9, 21_000))
    assert _check(policy_chain, _request(again), [good])[1].rule == "eth-needs-approval"


def _erc20_transfer():
    return ethereum.erc20_transfer(
        chain_id=HARDHAT,
        nonce=0,
        token=TOKEN,
        to=RECIPIENT,
        amount="1",
        decimals=18,
        fees=ethereum.FeeParameters(30 * 10**9, 10**9, 100_000),
    )


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param(lambda: _request(_eth_transfer(to=OTHER_RECIPIENT)), id="recipient"),
        pytest.param(lambda: _request(_eth_transfer(ether="1.000000000000000001")), id="amount"),
        pytest.param(lambda: _request(_erc20_transfer()), id="asset"),
        pytest.param(lambda: _request(_eth_transfer(chain_id=11155111)), id="network"),
        pytest.param(
            lambda: _request(_eth_transfer(), transaction_id="another-transaction"),
            id="transaction",
        ),
        pytest.param(
            lambda: _request(_eth_transfer(), workspace_id="another-workspace"), id="workspace"
        ),
    ],
)
def test_change_after_approval_gets_no_signature(policy_chain, changed):
    with pytest.raises(RequestRefused) as caught:
        _check(policy_chain, changed(), [_pipeline_approval()])
    assert caught.value.check == "policy"
    assert caught.value.rule == "eth-needs-approval"
    assert "ApprovalForAnotherTransactionError" in caught.value.reason


def test_other_signing_key_is_another_source(policy_chain):
    other = coincurve.PrivateKey(hashlib.sha256(b"another key").digest()).public_key.format()
    with pytest.raises(RequestRefused) as caught:
        _check(policy_chain, _request(_eth_transfer()), [_pipeline_approval()], key=other)
    assert (caught.value.check, caught.value.rule) == ("policy", "eth-needs-approval")


def test_without_intent_metadata_the_pipeline_approval_does_not_count(policy_chain):
    body = _request(_eth_transfer())
    del body["metadata"]["transaction_id"], body["metadata"]["workspace_id"]
    with pytest.raises(RequestRefused) as caught:
        _check(policy_chain, body, [_pipeline_approval()])
    assert (caught.value.check, caught.value.rule) == ("policy", "eth-needs-approval")
    assert "ApprovalForAnotherTransactionError" in caught.value.reason
    # Without an intent, approvals over the signing digest count as before.
    legacy = approval(ethereum.signing_hash(_eth_transfer()))
    assert _check(policy_chain, body, [legacy])[1].rule == "eth-needs-approval"


def test_with_intent_metadata_a_signing_digest_approval_does_not_count(policy_chain):
    legacy = approval(ethereum.signing_hash(_eth_transfer()))
    with pytest.raises(RequestRefused) as caught:
        _check(policy_chain, _request(_eth_transfer()), [legacy])
    assert (caught.value.check, caught.value.rule) == ("policy", "eth-needs-approval")


@pytest.mark.parametrize(
    ("remove", "change", "named"),
    [
        ("transaction_id", {}, "metadata.transaction_id"),
        ("workspace_id", {}, "metadata.workspace_id"),
        (None, {"transaction_id": ""}, "metadata.transaction_id"),
        (None, {"transaction_id": 42}, "metadata.transaction_id"),
        (None, {"workspace_id": "x" * 65}, "metadata.workspace_id"),
        (None, {"workspace_id": "ws\n1"}, "metadata.workspace_id"),
    ],
)
def test_partial_or_malformed_intent_metadata_is_refused(policy_chain, remove, change, named):
    body = _request(_eth_transfer(), **change)
    if remove:
        del body["metadata"][remove]
    with pytest.raises(RequestRefused) as caught:
        _check(policy_chain, body, [_pipeline_approval()])
    assert caught.value.check == "malformed"
    assert named in caught.value.reason


def test_intent_metadata_on_a_payload_without_an_intent_is_refused(policy_chain):
    call = ethereum.contract_call(
        chain_id=HARDHAT,
        nonce=0,
        contract=TOKEN,
        fn=function("approve(address,uint256)"),
        arguments=[RECIPIENT, 5],
        fees=ethereum.FeeParameters(30 * 10**9, 10**9, 100_000),
    )
    raw = {
        "chain": "raw",
        "payload": bytes(32).hex(),
        "metadata": {**metadata(), "transaction_id": "t", "workspace_id": "w"},
    }
    for body, key in ((raw, None), (_request(call), VAULT_KEY), (_request(_eth_transfer()), None)):
        with pytest.raises(RequestRefused) as caught:
            _check(policy_chain, body, [], key=key)
        assert caught.value.check == "malformed"
        assert "not a transfer from the signing key" in caught.value.reason


# --- Approval lifetimes count from the statement's signed time (issue #18) ------------

HOUR = 3600


def test_an_approval_older_than_its_lifetime_is_refused_whatever_created_at_says(policy_chain):
    """Carol approved two hours ago, the rule gives approvals one hour, and the
    coordinator sends the transfer with a fresh ``created_at``."""
    stale = _pipeline_approval(signed_at=int(time.time()) - 2 * HOUR)
    with pytest.raises(RequestRefused) as caught:
        _check(policy_chain, _request(_eth_transfer()), [stale])
    assert (caught.value.check, caught.value.rule) == ("policy", "eth-needs-approval")
    assert "ApprovalExpiredError" in caught.value.reason
    assert "deadline" in caught.value.reason
    # Within its lifetime the same approval counts, with the same fresh created_at.
    alive = _pipeline_approval(signed_at=int(time.time()) - HOUR + 60)
    assert _check(policy_chain, _request(_eth_transfer()), [alive])[1].rule == "eth-needs-approval"


def test_an_approval_from_the_future_is_refused(policy_chain):
    """Dated an hour ahead, a statement would outlive its lifetime by that hour."""
    ahead = _pipeline_approval(signed_at=int(time.time()) + HOUR)
    with pytest.raises(RequestRefused) as caught:
        _check(policy_chain, _request(_eth_transfer()), [ahead])
    assert (caught.value.check, caught.value.rule) == ("policy", "eth-needs-approval")
    assert "ApprovalFromTheFutureError" in caught.value.reason


def test_a_v1_statement_without_a_signed_time_is_refused(policy_chain):
    """A v1 statement could have been given at any time: it is refused, not counted."""
    digest = bytes.fromhex(str(_pipeline_approval()["digest"]))
    v1 = statement_json(CAROL, "carol", digest, signed_at=None, version=1)
    with pytest.raises(RequestRefused) as caught:
        _check(policy_chain, _request(_eth_transfer()), [v1])
    assert caught.value.check == "malformed"
    assert "signed_at" in caught.value.reason
    assert "format v1" in caught.value.reason


# --- In-process co-signer nodes (FROST, Solana) -------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("intent-cluster"))
    results = c.run(
        {"kind": "policy", "request_id": "p1", "bundles": [signed_bundle().to_json()]}, [1, 2, 3]
    )
    assert all(r["status"] == "ok" for r in results.values()), results
    keys = {r.get("public_key") for r in c.run(dkg_request(), [1, 2, 3]).values()}
    assert len(keys) == 1, keys
    assert None not in keys, keys
    c.sol_key = bytes.fromhex(keys.pop())
    yield c
    c.close()


def _solana_transfer(key, lamports, blockhash_label):
    ours = solana.Pubkey(key)
    message = solana.compile_legacy_message(
        ours,
        [system.transfer(ours, solana.Pubkey(DESTINATION), lamports)],
        hashlib.sha256(blockhash_label).digest(),
    )
    return solana.serialize_message(message)


def _solana_intent(key, **overrides):
    fields = {
        "workspace_id": WORKSPACE_ID,
        "transaction_id": TRANSACTION_ID,
        "network": "solana",
        "source": str(solana.Pubkey(key)),
        "destination": str(solana.Pubkey(DESTINATION)),
        "asset": "SOL",
        "amount_base_units": 2 * LAMPORTS_PER_SOL,
        **overrides,
    }
    return intent_digest(**fields)


def _intent_request(message, approvals, **meta):
    body = sign_request(message, (1, 2), approvals=approvals)
    body["metadata"].update(
        {"transaction_id": TRANSACTION_ID, "workspace_id": WORKSPACE_ID, **meta}
    )
    return body


def test_nodes_sign_a_solana_transfer_approved_by_intent(cluster):
    key = cluster.sol_key
    digest = _solana_intent(key)
    good = approval(digest)
    # The blockhash is chosen after approval, as nonces and fees are on Ethereum.
    message = _solana_transfer(key, 2 * LAMPORTS_PER_SOL, b"blockhash chosen later")
    body = _intent_request(message, [good])
    results = cluster.run(forward_solana(body, DESTINATION, 2 * LAMPORTS_PER_SOL), [1, 2])
    assert {r["status"] for r in results.values()} == {"ok"}, results
    assert {r["digest"] for r in results.values()} == {digest.hex()}
    VerifyKey(key).verify(message, bytes.fromhex(results[1]["signature"]))


@pytest.mark.parametrize(
    ("lamports", "meta"),
    [
        (3 * LAMPORTS_PER_SOL, {}),
        (2 * LAMPORTS_PER_SOL, {"transaction_id": "another-transaction"}),
        (2 * LAMPORTS_PER_SOL, {"workspace_id": "another-workspace"}),
    ],
)
def test_nodes_refuse_a_solana_transfer_changed_after_approval(cluster, lamports, meta):
    key = cluster.sol_key
    good = approval(_solana_intent(key))
    message = _solana_transfer(key, lamports, b"blockhash")
    results = cluster.run(_intent_request(message, [good], **meta), [1, 2])
    assert {(r["status"], r["check"], r["rule"]) for r in results.values()} == {
        ("refused", "policy", "sol-needs-approval")
    }
    assert all("ApprovalForAnotherTransactionError" in r["reason"] for r in results.values())


def test_nodes_refuse_a_solana_network_the_coordinator_names(cluster):
    """The intent's network is the signed registry's (here none: ``solana``); a
    coordinator that names another is refused before any approval is counted."""
    key = cluster.sol_key
    good = approval(_solana_intent(key, network="solana-devnet"))
    message = _solana_transfer(key, 2 * LAMPORTS_PER_SOL, b"blockhash")
    results = cluster.run(_intent_request(message, [good], network="solana-devnet"), [1, 2])
    assert {(r["status"], r["check"]) for r in results.values()} == {("refused", "network")}
    assert all("solana-devnet" in r["reason"] for r in results.values())


def test_nodes_refuse_missing_intent_metadata(cluster):
    key = cluster.sol_key
    message = _solana_transfer(key, 2 * LAMPORTS_PER_SOL, b"blockhash")
    body = _intent_request(message, [approval(_solana_intent(key))])
    del body["metadata"]["workspace_id"]
    results = cluster.run(body, [1, 2])
    assert {(r["status"], r["check"]) for r in results.values()} == {("refused", "malformed")}


def test_nodes_refuse_an_approval_older_than_its_lifetime_with_a_fresh_created_at(cluster):
    key = cluster.sol_key
    stale = approval(_solana_intent(key), signed_at=int(time.time()) - 2 * HOUR)
    message = _solana_transfer(key, 2 * LAMPORTS_PER_SOL, b"blockhash, two hours later")
    body = _intent_request(message, [stale])
    assert body["metadata"]["created_at"] >= time.time() - 60  # fresh, as the server says
    results = cluster.run(body, [1, 2])
    assert {(r["status"], r["check"], r["rule"]) for r in results.values()} == {
        ("refused", "policy", "sol-needs-approval")
    }
    assert all("deadline" in r["reason"] for r in results.values()), results


def test_erc20_intent_names_the_token_contract(policy_chain):
    """The co-signer can check a token's contract, not a symbol: an ERC-20 intent's asset
    is the checksummed contract address, while the policy names the registry's id
    (docs/cosigner.md)."""
    by_contract = _pipeline_approval(asset=TOKEN)
    target, evaluation = _check(policy_chain, _request(_erc20_transfer()), [by_contract])
    assert evaluation.rule == "eth-needs-approval"
    assert target.intent is not None
    assert target.intent.asset == TOKEN
    assert target.request.asset.id == "TKN"
    with pytest.raises(RequestRefused) as caught:
        _check(policy_chain, _request(_erc20_transfer()), [_pipeline_approval(asset="USDC")])
    assert (caught.value.check, caught.value.rule) == ("policy", "eth-needs-approval")


# --- In-process co-signer nodes (CGGMP21, Ethereum at a BIP32 path) -----------------


ETH_PATH = "m/44/60/0/0/7"


@pytest.fixture(scope="module")
def eth_cluster(tmp_path_factory):
    """Nodes holding a policy where every transfer needs carol, and an ECDSA key made
    with the TEST-ONLY Paillier primes (tests/fixtures/test_only_paillier.json)."""
    keygen_rule = {
        "name": "keygen",
        "when": {"operation": ["key_generation"]},
        "action": "allow",
    }
    policy = {**ETH_POLICY, "rules": [keygen_rule, *ETH_POLICY["rules"]]}
    root = tmp_path_factory.mktemp("intent-eth-cluster")
    with ecdsa_cluster(root, policy, "eth-1", ETH_PATH) as (cluster, public_key):
        cluster.eth_source = str(ethereum.address_from_public_key(public_key))
        yield cluster


def _presign(cluster, label):
    presign(cluster, "eth-1", ETH_PATH, label)


def _eth_sign_request(tx, approvals, label, **meta):
    body = sign_request(
        ethereum.encode_unsigned(tx),
        (1, 3),
        chain="ethereum",
        key_id="eth-1",
        presignature=label,
        path=ETH_PATH,
        approvals=approvals,
    )
    body["metadata"].update(
        {"transaction_id": TRANSACTION_ID, "workspace_id": WORKSPACE_ID, **meta}
    )
    return body


def test_nodes_sign_an_eth_transfer_approved_before_nonce_and_fees(eth_cluster):
    """The source in the approved intent is the address of the key at ``path``; the
    signature recovers (eth-account) to that address."""
    good = _pipeline_approval(source=eth_cluster.eth_source)
    _presign(eth_cluster, "p1")
    tx = _eth_transfer(nonce=3, fees=ethereum.FeeParameters(41 * 10**9, 2 * 10**9, 21_000))
    alices = signed_request(ALICE, create_body(RECIPIENT, "1", wallet_id="w-eth", source_index=7))
    results = eth_cluster.run(forward(_eth_sign_request(tx, [good], "p1"), alices), [1, 3])
    assert {r["status"] for r in results.values()} == {"ok"}, results
    assert {r["digest"] for r in results.values()} == {good["digest"]}
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
    # The recipient changed after approval: refused before any session starts.
    changed = _eth_transfer(nonce=4, to=OTHER_RECIPIENT)
    results = eth_cluster.run(_eth_sign_request(changed, [good], "p1"), [1, 3])
    assert {(r["status"], r["check"], r["rule"]) for r in results.values()} == {
        ("refused", "policy", "eth-needs-approval")
    }
