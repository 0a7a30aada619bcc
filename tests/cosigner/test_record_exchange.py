"""Records shared within a quorum (docs/cosigner.md, "Records shared within a quorum").

Three in-process co-signers hold a FROST key and a policy with a velocity limit. Honest
sessions show that the quorum's records are merged before the policy is evaluated and
kept across restarts; forged records offers, sent by the test in a peer's name and signed
with that peer's identity (what a malicious co-signer can send), show that each check
names exactly that peer, with its signed envelope as evidence, and no honest party.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets

import pytest

from shardvault.cosigner.errors import ConfigurationError
from shardvault.cosigner.peer_records import Offer, PeerRecords, RecordConflict, RecordGap
from shardvault.cosigner.record_exchange import (
    RECORDS_PROTOCOL,
    RECORDS_VERSION,
    RecordsMessage,
    make_offer,
)
from shardvault.cosigner.signed_record import RECORD_DOMAIN, canonical, line_hash
from shardvault.cosigner.state import open_node
from shardvault.crypto.channel import peek_header, seal, verify_evidence
from shardvault.crypto.protocols.common import Header, PartyId, session_id
from shardvault.crypto.rng import system_random
from shardvault.custody.secret import SecretBytes
from tests.cosigner.support import (
    LAMPORTS_PER_SOL,
    PASSPHRASE,
    dkg_request,
    sign_request,
    signed_bundle,
    solana_transfer,
)
from tests.cosigner.support import POLICY as BASE
from tests.cosigner.test_node import Cluster

POLICY = {
    **BASE,
    "rules": [
        {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
        {
            "name": "daily-limit",
            "when": {
                "asset": ["SOL"],
                "velocity": [
                    {"window": "24h", "per": "destination", "measure": "amount", "over": "2"}
                ],
            },
            "action": "block",
        },
        {"name": "transfers", "when": {"operation": ["transfer"]}, "action": "allow"},
    ],
}


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    results = c.run(
        {"kind": "policy", "request_id": "p", "bundles": [signed_bundle(policy=POLICY).to_json()]},
        [1, 2, 3],
    )
    assert {r["status"] for r in results.values()} == {"ok"}, results
    results = c.run(dkg_request(), [1, 2, 3])
    assert {r["status"] for r in results.values()} == {"ok"}, results
    c.key = bytes.fromhex(results[1]["public_key"])
    yield c
    c.close()


def _destination() -> bytes:
    return secrets.token_bytes(32)


def _sign(cluster, lamports: int, signers, destination: bytes):
    body = sign_request(solana_transfer(cluster.key, destination, lamports), signers)
    return cluster.run(body, list(signers))


def _statuses(results):
    return {(r["status"], r.get("check"), r.get("rule")) for r in results.values()}


def test_a_velocity_limit_holds_across_rotating_quorums(cluster):
    """0.8 SOL three times to one destination, through {1,2}, {1,3}, {2,3}, against a
    2 SOL limit: each co-signer signed only two, but the third quorum merges them."""
    destination = _destination()
    amount = 8 * LAMPORTS_PER_SOL // 10
    # One lamport apart: three transactions (one message three times is one transaction).
    ok = {("ok", None, "transfers")}
    assert _statuses(_sign(cluster, amount, (1, 2), destination)) == ok
    assert _statuses(_sign(cluster, amount + 1, (1, 3), destination)) == ok
    third = _sign(cluster, amount + 2, (2, 3), destination)
    assert _statuses(third) == {("refused", "policy", "daily-limit")}, third


def test_copies_survive_a_restart_and_only_new_lines_travel(cluster):
    destination = _destination()
    assert _statuses(_sign(cluster, LAMPORTS_PER_SOL // 10, (1, 2), destination)) == {
        ("ok", None, "transfers")
    }
    node3 = cluster.nodes[3]
    assert node3.state.peers.held(1) == (0, bytes(32))
    assert _statuses(_sign(cluster, LAMPORTS_PER_SOL // 10, (1, 3), destination)) == {
        ("ok", None, "transfers")
    }
    record1 = cluster.nodes[1].state.record
    # Party 3 holds party 1's record (its entry of the first transfer included, made
    # before this session: the second entry is written after the records round).
    assert node3.state.peers.held(1) == (1, record1.hash_at(1))
    data_dir = node3.state.data_dir
    node3.state.close()
    with SecretBytes(PASSPHRASE.encode()) as passphrase:
        node3.state = open_node(data_dir, passphrase)
    assert node3.state.peers.held(1) == (1, record1.hash_at(1))
    # Party 3's signing message told party 1 that 3 merged its offer (1 line): party 1's
    # next offer to 3 starts after it.
    offer = make_offer(record1, cluster.nodes[1].state.peers, 1, [3])
    assert (offer.start, offer.length) == (1, 2)
    assert len(offer.lines) == 1


# --- A malicious peer's records offer ---------------------------------------------------


def _forged_session(cluster, signers=(1, 2), forger=2, lamports=LAMPORTS_PER_SOL // 10):
    """Queue a signing request for ``signers``; the honest ones take it and send their
    records; the forger's node is not stepped (the test speaks for it)."""
    body = sign_request(solana_transfer(cluster.key, _destination(), lamports), signers)
    cluster.core.submit(body, list(signers))
    for party in signers:
        if party != forger:
            cluster.nodes[party].step(0.0)
    return body


def _send_offer(cluster, body, forger, offer_bytes: bytes) -> None:
    identity = cluster.nodes[forger].state.identity
    sid = session_id(bytes.fromhex(body["session_id"]))
    header = Header(RECORDS_PROTOCOL, RECORDS_VERSION, sid, 1, PartyId(forger), None)
    message = RecordsMessage(header, offer_bytes)
    envelope = seal(message.to_bytes(), header, identity, None, system_random)
    assert cluster.core.send(forger, [envelope]) == 1


def _outcome(cluster, body, honest=(1,)):
    for _ in range(5):
        for party in honest:
            cluster.nodes[party].step(0.0)
    return {p: r for p, r in cluster.core.results(body["request_id"]).items() if p in honest}


def _offer_json(offer: Offer) -> bytes:
    return json.dumps(offer.to_json(), sort_keys=True, separators=(",", ":")).encode()


def _real_offer(cluster, forger=2, to=(1,)) -> Offer:
    node = cluster.nodes[forger]
    return make_offer(node.state.record, node.state.peers, forger, list(to))


def _assert_blames(cluster, results, culprit, reason):
    (result,) = results.values()
    assert result["status"] == "failed", result
    assert result["culprits"] == [culprit], result
    assert reason in result["reason"], result
    directory = cluster.nodes[1].state.directory
    for evidence in result["evidence"]:
        header = verify_evidence(base64.b64decode(evidence), directory)
        assert header.sender == culprit
        assert header.protocol == RECORDS_PROTOCOL


def _two_entries_of_party_2(cluster):
    """Three sessions of {1, 2}: party 1 then holds party 2's first two lines (a
    session's own entry is written after its records round)."""
    destination = _destination()
    for _ in range(3):
        results = _sign(cluster, LAMPORTS_PER_SOL // 10, (1, 2), destination)
        assert {r["status"] for r in results.values()} == {"ok"}, results
    assert cluster.nodes[1].state.peers.held(2)[0] == 2


def test_a_malformed_offer_names_its_sender(cluster):
    body = _forged_session(cluster)
    _send_offer(cluster, body, 2, b"{not json")
    _assert_blames(cluster, _outcome(cluster, body), 2, "malformed records offer")


def test_an_offer_in_another_partys_name_names_its_sender(cluster):
    body = _forged_session(cluster)
    offer = _real_offer(cluster)
    forged = Offer(3, offer.length, offer.head, offer.start, offer.lines, offer.holds)
    _send_offer(cluster, body, 2, _offer_json(forged))
    _assert_blames(cluster, _outcome(cluster, body), 2, "offer of another party")


def test_a_rolled_back_record_names_its_owner(cluster):
    _two_entries_of_party_2(cluster)
    held, _ = cluster.nodes[1].state.peers.held(2)
    record = cluster.nodes[2].state.record
    body = _forged_session(cluster)
    shorter = Offer(2, held - 1, record.hash_at(held - 1), 0, tuple(record.lines[: held - 1]), {})
    _send_offer(cluster, body, 2, _offer_json(shorter))
    _assert_blames(cluster, _outcome(cluster, body), 2, "rolled back")


def _signed_line(cluster, party: int, previous: bytes, *, signer: int | None = None) -> bytes:
    """A record line of ``party``, chained after ``previous``, signed by ``signer``'s
    identity (``party``'s own by default)."""
    body = {
        "format": "shardvault.cosigner.signed/v2",
        "party": party,
        "workspace_id": None,
        "transaction_id": None,
        "intent_digest": None,
        "replay_key": None,
        "signer_key": "00" * 32,
        "payload_digest": secrets.token_hex(32),
        "request": None,
        "signed_at": 1,
        "previous": previous.hex(),
    }
    identity = cluster.nodes[signer or party].state.identity
    signature = identity.sign(RECORD_DOMAIN + canonical(body))
    return canonical({**body, "signature": signature.hex()})


def test_a_forked_record_names_its_owner(cluster):
    _two_entries_of_party_2(cluster)
    record = cluster.nodes[2].state.record
    body = _forged_session(cluster)
    other = _signed_line(cluster, 2, bytes(32))
    lines = (other, *record.lines[1:])
    forked = Offer(2, len(lines), line_hash(lines[-1]), 0, lines, {})
    _send_offer(cluster, body, 2, _offer_json(forked))
    _assert_blames(cluster, _outcome(cluster, body), 2, "forked")


def test_a_line_its_sender_did_not_sign_names_the_sender(cluster):
    body = _forged_session(cluster)
    record = cluster.nodes[2].state.record
    stranger = _signed_line(cluster, 2, record.head, signer=3)
    offer = Offer(2, len(record.lines) + 1, line_hash(stranger), 0, (*record.lines, stranger), {})
    _send_offer(cluster, body, 2, _offer_json(offer))
    _assert_blames(cluster, _outcome(cluster, body), 2, "signature does not verify")


def test_a_line_that_does_not_chain_names_the_sender(cluster):
    _two_entries_of_party_2(cluster)
    body = _forged_session(cluster)
    record = cluster.nodes[2].state.record
    loose = _signed_line(cluster, 2, hashlib.sha256(b"elsewhere").digest())
    lines = (*record.lines, loose)
    offer = Offer(2, len(lines), line_hash(loose), 0, lines, {})
    _send_offer(cluster, body, 2, _offer_json(offer))
    _assert_blames(cluster, _outcome(cluster, body), 2, "does not follow")


def test_a_head_that_is_not_the_lines_head_names_the_sender(cluster):
    _two_entries_of_party_2(cluster)
    body = _forged_session(cluster)
    record = cluster.nodes[2].state.record
    lying = Offer(2, len(record.lines), hashlib.sha256(b"x").digest(), 0, tuple(record.lines), {})
    _send_offer(cluster, body, 2, _offer_json(lying))
    _assert_blames(cluster, _outcome(cluster, body), 2, "states a head")


def test_a_gap_refuses_the_session_without_blame_and_the_next_one_catches_up(cluster):
    _two_entries_of_party_2(cluster)
    record = cluster.nodes[2].state.record
    body = _forged_session(cluster)
    beyond = len(record.lines) + 5
    gap = Offer(2, beyond, hashlib.sha256(b"y").digest(), beyond, (), {})
    _send_offer(cluster, body, 2, _offer_json(gap))
    results = _outcome(cluster, body)
    assert _statuses(results) == {("refused", "records", None)}, results
    assert "catches up" in results[1]["reason"]
    # Honest party 2 again: party 1 merges and signs.
    again = _sign(cluster, LAMPORTS_PER_SOL // 10, (1, 2), _destination())
    assert {r["status"] for r in again.values()} == {"ok"}, again


def test_a_peer_that_says_it_holds_a_forged_copy_of_ours_gets_everything_again(cluster):
    _two_entries_of_party_2(cluster)
    node1 = cluster.nodes[1]
    body = _forged_session(cluster)
    offer = _real_offer(cluster)
    holds = {1: (len(node1.state.record.lines), hashlib.sha256(b"z").digest())}
    _send_offer(
        cluster,
        body,
        2,
        _offer_json(Offer(2, offer.length, offer.head, offer.start, offer.lines, holds)),
    )
    _outcome(cluster, body)
    assert node1.state.peers.acknowledged(2) == 0


def test_peer_records_refuse_lines_of_an_edited_copy(cluster):
    _two_entries_of_party_2(cluster)
    path = cluster.nodes[1].state.data_dir / "records" / "2.jsonl"
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2
    path.write_bytes(b"\n".join(reversed(lines)) + b"\n")
    with pytest.raises(ConfigurationError, match="does not follow"):
        PeerRecords.open(cluster.nodes[1].state.data_dir)


def test_merge_errors_are_typed(tmp_path, cluster):
    _two_entries_of_party_2(cluster)
    peers = PeerRecords.open(tmp_path / "elsewhere")
    record = cluster.nodes[2].state.record
    identity = cluster.nodes[2].state.identity.public
    full = Offer(2, len(record.lines), record.head, 0, tuple(record.lines), {})
    assert peers.merge(full, identity) == len(record.lines)
    assert peers.merge(full, identity) == 0
    with pytest.raises(RecordConflict):
        peers.merge(Offer(2, 0, bytes(32), 0, (), {}), identity)
    with pytest.raises(RecordGap):
        peers.merge(
            Offer(2, len(record.lines) + 2, bytes(32), len(record.lines) + 1, (), {}), identity
        )


def test_offers_are_envelopes_of_the_session(cluster):
    body = _forged_session(cluster, forger=2)
    envelopes = [
        e
        for e in cluster.core.transcript
        if bytes(peek_header(e).session_id) == bytes.fromhex(body["session_id"])
    ]
    # The records offer, and FROST's first round (commitments), which reveals nothing.
    assert [peek_header(e).protocol for e in envelopes] == [RECORDS_PROTOCOL, "frost/sign"]
