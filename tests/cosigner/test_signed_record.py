"""One approval, one transfer at each co-signer (DESIGN.md invariant 11).

A coordinator that resends an approved transfer's signing request with a fresh chain
nonce must not get it signed again: the intent digest the approvals cover leaves the
nonce out, so only the co-signer's own record of what it signed can refuse it
(docs/cosigner.md "The record of signed transactions").
"""

from __future__ import annotations

import secrets

import pytest

from shardvault.chains import ethereum
from shardvault.cosigner import sign_checks
from shardvault.cosigner.errors import ConfigurationError
from shardvault.cosigner.record_exchange import RECORDS_PROTOCOL
from shardvault.cosigner.signed_record import RECORD_FILE, SignedRecord
from shardvault.cosigner.state import open_node
from shardvault.crypto.channel import peek_header
from shardvault.crypto.protocols.cggmp21.messages import SIGN_PROTOCOL
from shardvault.custody.secret import SecretBytes
from shardvault.service.transactions import intent_digest
from tests.cosigner.ecdsa_cluster import ecdsa_cluster, presign
from tests.cosigner.initiator_support import ALICE, create_body, forward, signed_request
from tests.cosigner.support import PASSPHRASE, POLICY, VAULT, approval, sign_request

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
        {"name": "raw", "when": {"operation": ["raw_digest_signing"]}, "action": "allow"},
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


def _initiated(cluster, body, transaction_id):
    """``body`` as transfer ``transaction_id``, carrying alice's signed request for it
    (one per transfer, as the service stores it)."""
    requests = cluster.__dict__.setdefault("requests", {})
    if transaction_id not in requests:
        create = create_body(RECIPIENT, "1", wallet_id="w-eth", source_index=9)
        requests[transaction_id] = signed_request(ALICE, create)
    body["metadata"].update({"transaction_id": transaction_id, "workspace_id": WORKSPACE_ID})
    return forward(body, requests[transaction_id])


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
    return cluster.run(_initiated(cluster, body, transaction_id), list(SIGNERS))


def test_an_approved_transfer_resent_with_another_nonce_is_refused(eth_cluster):
    first = _sign(eth_cluster, "tx-replay-nonce", _transfer(nonce=3))
    assert {r["status"] for r in first.values()} == {"ok"}, first
    again = _sign(eth_cluster, "tx-replay-nonce", _transfer(nonce=4))
    assert {(r["status"], r.get("check")) for r in again.values()} == {("refused", "replay")}


def test_a_replacement_of_the_same_nonce_is_signed(eth_cluster):
    """A fee bump keeps the nonce: only one of the two can be mined, so it is signed."""
    first = _sign(eth_cluster, "tx-fee-bump", _transfer(nonce=5))
    assert {r["status"] for r in first.values()} == {"ok"}, first
    bumped = ethereum.FeeParameters(60 * 10**9, 3 * 10**9, 21_000)
    again = _sign(eth_cluster, "tx-fee-bump", _transfer(nonce=5, fees=bumped))
    assert {r["status"] for r in again.values()} == {"ok"}, again
    # The replay key is the nonce: another transfer id may not reuse the first payload
    # under another sender, but the same bytes again are the same transaction.
    assert {r["digest"] for r in again.values()} == {r["digest"] for r in first.values()}


def _record(cluster, party):
    return SignedRecord.open(
        cluster.nodes[party].state.data_dir, cluster.nodes[party].state.identity.public, party
    )


def test_the_entry_is_on_disk_before_the_share_leaves(eth_cluster):
    """Party 1 sends its records and waits; party 3 takes the request and party 1's
    records in one step: its signature share is out, no result yet, and its record
    already holds the entry, fsynced."""
    eth_cluster.presignatures += 1
    label = f"p{eth_cluster.presignatures}"
    presign(eth_cluster, KEY_ID, ETH_PATH, label, SIGNERS)
    body = sign_request(
        ethereum.encode_unsigned(_transfer(nonce=6)),
        SIGNERS,
        chain="ethereum",
        key_id=KEY_ID,
        presignature=label,
        path=ETH_PATH,
        approvals=[_approval(eth_cluster, "tx-before-result")],
    )
    eth_cluster.core.submit(_initiated(eth_cluster, body, "tx-before-result"), list(SIGNERS))
    first = eth_cluster.nodes[1].step(0.0)
    assert [peek_header(e).protocol for e in first.envelopes] == [RECORDS_PROTOCOL]
    out = eth_cluster.nodes[3].step(0.0)
    assert [peek_header(e).protocol for e in out.envelopes] == [RECORDS_PROTOCOL, SIGN_PROTOCOL]
    assert not out.results
    entry = _record(eth_cluster, 3).entries[-1]
    assert (entry.workspace_id, entry.transaction_id) == (WORKSPACE_ID, "tx-before-result")
    assert entry.replay_key == f"ethereum:31337:{eth_cluster.eth_source}:6"
    assert entry.payload_digest == ethereum.signing_hash(_transfer(nonce=6)).hex()
    eth_cluster.pump()
    assert {r["status"] for r in eth_cluster.core.results(body["request_id"]).values()} == {"ok"}


def test_a_reopened_node_still_refuses(eth_cluster):
    """The record is what the node reads at start: a restart forgets nothing."""
    first = _sign(eth_cluster, "tx-restart", _transfer(nonce=7))
    assert {r["status"] for r in first.values()} == {"ok"}, first
    for party in SIGNERS:
        node = eth_cluster.nodes[party]
        data_dir = node.state.data_dir
        node.state.close()
        with SecretBytes(PASSPHRASE.encode()) as passphrase:
            node.state = open_node(data_dir, passphrase)
    again = _sign(eth_cluster, "tx-restart", _transfer(nonce=8))
    assert {(r["status"], r.get("check")) for r in again.values()} == {("refused", "replay")}


def test_the_same_raw_digest_is_signed_once(eth_cluster):
    """Without a replay key, the same digest again is refused."""
    digest = bytes(range(32))
    eth_cluster.presignatures += 1
    label = f"p{eth_cluster.presignatures}"
    presign(eth_cluster, KEY_ID, ETH_PATH, label, SIGNERS)
    body = sign_request(
        digest, SIGNERS, chain="raw", key_id=KEY_ID, presignature=label, path=ETH_PATH
    )
    results = eth_cluster.run(body, list(SIGNERS))
    assert {r["status"] for r in results.values()} == {"ok"}, results
    eth_cluster.presignatures += 1
    label = f"p{eth_cluster.presignatures}"
    presign(eth_cluster, KEY_ID, ETH_PATH, label, SIGNERS)
    again = sign_request(
        digest, SIGNERS, chain="raw", key_id=KEY_ID, presignature=label, path=ETH_PATH
    )
    results = eth_cluster.run(again, list(SIGNERS))
    assert {(r["status"], r.get("check")) for r in results.values()} == {("refused", "replay")}


def test_an_edited_record_refuses_to_start(tmp_path, eth_cluster):
    source = eth_cluster.nodes[1].state
    record = SignedRecord.open(tmp_path, source.identity.public, 1)
    for nonce in (3, 4, 5):
        record.append(
            source.identity,
            ids=(WORKSPACE_ID, f"tx-{nonce}"),
            intent_digest=bytes(32),
            replay_key=f"ethereum:31337:{eth_cluster.eth_source}:{nonce}",
            signer_key=bytes(33),
            payload_digest=bytes([nonce]) * 32,
            now=1_700_000_000,
        )
    lines = (tmp_path / RECORD_FILE).read_bytes().splitlines()
    identity = source.identity.public

    def reopen(content):
        path = tmp_path / RECORD_FILE
        path.unlink(missing_ok=True)
        path.write_bytes(content)
        path.chmod(0o600)
        return SignedRecord.open(tmp_path, identity, 1)

    assert len(reopen(b"\n".join(lines) + b"\n").entries) == len(lines)
    edited = lines[0].replace(b":3", b":9")
    assert edited != lines[0]
    for content, named in (
        (b"\n".join([edited, *lines[1:]]), "signature does not verify"),
        (b"\n".join(lines[1:]), "does not follow"),
        (b"\n".join([lines[1], lines[0], *lines[2:]]), "does not follow"),
        (b"\n".join([*lines, b"{"]), "not JSON"),
    ):
        with pytest.raises(ConfigurationError, match=named):
            reopen(content)
    (tmp_path / RECORD_FILE).chmod(0o644)
    with pytest.raises(ConfigurationError, match="mode 0644"):
        SignedRecord.open(tmp_path, identity, 1)


def test_a_data_directory_without_a_record_opens_empty(tmp_path, eth_cluster):
    record = SignedRecord.open(tmp_path, eth_cluster.nodes[1].state.identity.public, 1)
    assert record.entries == []


def test_a_presignature_past_the_bound_is_refused_and_nothing_is_made(
    eth_cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A presignature signs nothing, so no policy check guards its making: each
    co-signer bounds how many it holds and makes (``sign_checks.MAX_PRESIGNATURES``), so
    a coordinator cannot keep it presigning without end."""
    held = {p: set(eth_cluster.nodes[p]._presignatures) for p in SIGNERS}
    monkeypatch.setattr(sign_checks, "MAX_PRESIGNATURES", max(len(h) for h in held.values()) + 1)
    eth_cluster.presignatures += 1
    allowed = f"p{eth_cluster.presignatures}"
    presign(eth_cluster, KEY_ID, ETH_PATH, allowed, SIGNERS)
    body = {
        "kind": "presign",
        "request_id": "presign-past-the-bound",
        "session_id": secrets.token_hex(32),
        "vault": VAULT,
        "key_id": KEY_ID,
        "signers": list(SIGNERS),
        "presignature": "past-the-bound",
        "path": ETH_PATH,
    }
    results = eth_cluster.run(body, list(SIGNERS))
    assert {r["status"] for r in results.values()} == {"refused"}, results
    assert {r["check"] for r in results.values()} == {"limit"}
    for party in SIGNERS:
        labels = {label for (_, _, label) in eth_cluster.nodes[party]._presignatures}
        assert "past-the-bound" not in labels
        assert allowed in labels
