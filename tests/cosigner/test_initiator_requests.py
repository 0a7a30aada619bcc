"""Co-signers take the initiator from the initiator's own signed API request (DESIGN.md
invariant 12; docs/cosigner.md "The initiator's signed request").

The test plays a compromised coordinator against three in-process co-signers that hold
a bundle listing alice's and bob's API keys. Bob is a trusted settlement bot that may
send any amount; alice may send up to 1 SOL alone, and more with one treasury approval
(alice and carol are the treasury, and nobody approves their own request). Each attack
forwards what a real server would hold (alice's signed request for one transfer) and
lies about the rest.
"""

from __future__ import annotations

import pytest

from shardvault.chains import solana
from shardvault.policy.intent import TransferIntent, intent_digest
from tests.cosigner.initiator_support import (
    ALICE,
    INITIATORS,
    SERVER_KEY_FOR_ALICE,
    create_body,
    forward,
    signed_request,
)
from tests.cosigner.support import (
    CAROL,
    DESTINATION,
    LAMPORTS_PER_SOL,
    OTHER_DESTINATION,
    WORKSPACE,
    _key,
    approval,
    dkg_request,
    sign_request,
    signed_bundle,
    solana_transfer,
)
from tests.cosigner.test_node import Cluster

ALICE_APPROVAL_KEY = _key("approver-alice")

POLICY = {
    "format": "shardvault.policy/v1",
    "version": 1,
    "reference_currency": "USD",
    "approvers": {
        "carol": {"algorithm": "ed25519", "public_key": bytes(CAROL.verify_key).hex()},
        "alice": {"algorithm": "ed25519", "public_key": bytes(ALICE_APPROVAL_KEY.verify_key).hex()},
    },
    "groups": {"treasury": ["alice", "carol"]},
    "rules": [
        {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
        {
            "name": "bob-settles",
            "when": {"initiator": {"users": ["bob"]}, "asset": ["SOL"]},
            "action": "allow",
        },
        {
            "name": "alice-small",
            "when": {"initiator": {"users": ["alice"]}, "asset": ["SOL"], "amount": {"up_to": "1"}},
            "action": "allow",
        },
        {
            "name": "treasury-approves",
            "when": {"operation": ["transfer"]},
            "action": "require_approvals",
            "approvals": {"groups": [{"group": "treasury", "count": 1}], "deadline": "1h"},
        },
    ],
}

DEST = str(solana.Pubkey(DESTINATION))
OTHER = str(solana.Pubkey(OTHER_DESTINATION))
_UNSIGNED = object()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("initiators"))
    bundle = signed_bundle(policy=POLICY, initiators=INITIATORS)
    results = c.run(
        {"kind": "policy", "request_id": "p1", "bundles": [bundle.to_json()]}, [1, 2, 3]
    )
    assert all(r["status"] == "ok" for r in results.values()), results
    keys = {r["public_key"] for r in c.run(dkg_request(), [1, 2, 3]).values()}
    assert len(keys) == 1
    c.sol_key = bytes.fromhex(keys.pop())
    yield c
    c.close()


def _message(cluster, destination: bytes, lamports: int, tag: str) -> bytes:
    """A transfer from the vault key with a blockhash of its own (one per transaction)."""
    return solana_transfer(cluster.sol_key, destination, lamports, tag.encode())


def _sign(cluster, message, transaction_id, *, request, claimed="alice", approvals=()):
    """A sign request for ``transaction_id`` carrying the forwarded ``request`` (none when
    ``_UNSIGNED``), the coordinator claiming ``claimed`` as the initiator."""
    body = sign_request(message, (1, 2), approvals=list(approvals))
    meta = body["metadata"]
    meta["initiator"] = {"type": "user", "id": claimed}
    meta["workspace_id"], meta["transaction_id"] = WORKSPACE, transaction_id
    if request is not _UNSIGNED:
        forward(body, request, claimed)
    return cluster.run(body, [1, 2])


def _refused(results, check="initiator"):
    assert {(r["status"], r.get("check")) for r in results.values()} == {("refused", check)}, (
        results
    )
    return {r["reason"] for r in results.values()}


def _intent_approval(cluster, transaction_id, lamports, approver, key):
    intent = TransferIntent(
        workspace_id=WORKSPACE,
        transaction_id=transaction_id,
        network="solana",
        source=str(solana.Pubkey(cluster.sol_key)),
        destination=DEST,
        asset="SOL",
        amount=lamports,
    )
    return approval(intent_digest(intent), approver=approver, key=key)


def test_alices_own_request_is_signed_as_hers(cluster):
    request = signed_request(ALICE, create_body(DEST, "0.5"))
    message = _message(cluster, DESTINATION, LAMPORTS_PER_SOL // 2, "honest")
    results = _sign(cluster, message, "tx-honest", request=request)
    assert {(r["status"], r["rule"]) for r in results.values()} == {("ok", "alice-small")}, results


def test_a_forged_initiator_is_refused(cluster):
    """The coordinator holds alice's request for 3 SOL and says bob sent it."""
    request = signed_request(ALICE, create_body(DEST, "3"))
    message = _message(cluster, DESTINATION, 3 * LAMPORTS_PER_SOL, "forged")
    reasons = _refused(_sign(cluster, message, "tx-forged", request=request, claimed="bob"))
    assert all("'bob'" in r and "'alice'" in r for r in reasons), reasons


def test_an_initiator_claimed_without_a_signed_request_is_refused(cluster):
    message = _message(cluster, DESTINATION, 3 * LAMPORTS_PER_SOL, "unsigned")
    results = _sign(cluster, message, "tx-unsigned", request=_UNSIGNED, claimed="bob")
    reasons = _refused(results)
    assert all("bob-settles" in r for r in reasons), reasons


def test_one_signed_request_makes_one_transaction(cluster):
    request = signed_request(ALICE, create_body(DEST, "0.5"))
    first = _message(cluster, DESTINATION, LAMPORTS_PER_SOL // 2, "first")
    results = _sign(cluster, first, "tx-first", request=request)
    assert {r["status"] for r in results.values()} == {"ok"}, results
    # The same signed request again, as the request of another transaction.
    second = _message(cluster, DESTINATION, LAMPORTS_PER_SOL // 2, "second")
    reasons = _refused(_sign(cluster, second, "tx-second", request=request))
    assert all("tx-first" in r for r in reasons), reasons


@pytest.mark.parametrize(
    ("destination", "lamports", "fault"),
    [
        (OTHER_DESTINATION, LAMPORTS_PER_SOL // 2, "destination"),
        (DESTINATION, 9 * LAMPORTS_PER_SOL // 10, "amount"),
    ],
    ids=["destination", "amount"],
)
def test_a_body_that_disagrees_with_the_payload_is_refused(cluster, destination, lamports, fault):
    """Alice asked for 0.5 SOL to DEST; the payload pays another address or amount."""
    request = signed_request(ALICE, create_body(DEST, "0.5"))
    message = _message(cluster, destination, lamports, f"disagree-{fault}")
    reasons = _refused(_sign(cluster, message, f"tx-disagree-{fault}", request=request))
    assert all(fault in r for r in reasons), reasons


def test_a_request_signed_by_a_key_the_admins_did_not_list_is_refused(cluster):
    """The server added a key for alice in its own database and signs with it."""
    request = signed_request(SERVER_KEY_FOR_ALICE, create_body(DEST, "0.5"))
    message = _message(cluster, DESTINATION, LAMPORTS_PER_SOL // 2, "server-key")
    reasons = _refused(_sign(cluster, message, "tx-server-key", request=request))
    assert all("key-alice-2" in r for r in reasons), reasons


@pytest.mark.parametrize("forwarded", [True, False], ids=["forwarded", "none"])
def test_a_self_approval_through_a_forged_initiator_is_refused(cluster, forwarded):
    """Alice asks for 3 SOL and approves it herself; the coordinator says carol asked,
    forwarding alice's request or nothing."""
    request = signed_request(ALICE, create_body(DEST, "3"))
    message = _message(cluster, DESTINATION, 3 * LAMPORTS_PER_SOL, f"self-{forwarded}")
    transaction = f"tx-self-{forwarded}"
    own = _intent_approval(cluster, transaction, 3 * LAMPORTS_PER_SOL, "alice", ALICE_APPROVAL_KEY)
    results = _sign(
        cluster,
        message,
        transaction,
        request=request if forwarded else _UNSIGNED,
        claimed="carol",
        approvals=[own],
    )
    _refused(results)


def test_alice_approving_her_own_signed_request_does_not_count(cluster):
    request = signed_request(ALICE, create_body(DEST, "3"))
    message = _message(cluster, DESTINATION, 3 * LAMPORTS_PER_SOL, "self-honest")
    own = _intent_approval(cluster, "tx-self", 3 * LAMPORTS_PER_SOL, "alice", ALICE_APPROVAL_KEY)
    reasons = _refused(
        _sign(cluster, message, "tx-self", request=request, approvals=[own]), "policy"
    )
    assert all("SelfApprovalError" in r for r in reasons), reasons
    carols = _intent_approval(cluster, "tx-self", 3 * LAMPORTS_PER_SOL, "carol", CAROL)
    results = _sign(cluster, message, "tx-self", request=request, approvals=[own, carols])
    assert {(r["status"], r["rule"]) for r in results.values()} == {("ok", "treasury-approves")}


def test_a_key_generation_allowed_by_the_initiator_is_refused(tmp_path):
    """A key generation carries no signed request: a rule that lets a named initiator
    generate keys can only be met on the coordinator's word, so it is refused."""
    policy = {
        **POLICY,
        "rules": [
            {
                "name": "alice-makes-keys",
                "when": {"operation": ["key_generation"], "initiator": {"users": ["alice"]}},
                "action": "allow",
            }
        ],
    }
    c = Cluster(tmp_path)
    try:
        bundle = signed_bundle(policy=policy, initiators=INITIATORS)
        pushed = c.run({"kind": "policy", "request_id": "p", "bundles": [bundle.to_json()]}, [1])
        assert pushed[1]["status"] == "ok", pushed
        results = c.run(dkg_request(parties=(1, 2, 3)), [1])
        assert (results[1]["status"], results[1]["check"], results[1]["rule"]) == (
            "refused",
            "initiator",
            "alice-makes-keys",
        )
    finally:
        c.close()
