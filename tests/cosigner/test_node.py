"""Co-signer nodes in one process, linked through an in-memory relay.

What a co-signer checks itself (DESIGN.md invariant 3): the payload's digest, the signed
policy it holds, the approvers' signatures. Signatures are verified with PyNaCl
(Ed25519, RFC 8032), solders (the Solana SDK's transaction verification) and coincurve
(BIP340); Ethereum digests are compared with eth-account's.
"""

from __future__ import annotations

import base64
import hashlib
import os

import coincurve
import pytest
from eth_account import Account
from eth_account._utils.legacy_transactions import serializable_unsigned_transaction_from_dict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import VerifyKey
from solders.message import Message as SoldersMessage
from solders.pubkey import Pubkey as SoldersPubkey
from solders.signature import Signature as SoldersSignature

from shardvault.chains import bitcoin, ethereum
from shardvault.cosigner.checks import ethereum_target
from shardvault.cosigner.errors import RequestRefused
from shardvault.cosigner.link import InMemoryLink, Item
from shardvault.cosigner.node import CosignerNode
from shardvault.cosigner.relay_core import RelayCore
from shardvault.cosigner.state import open_node, read_public_identity
from shardvault.crypto.channel import Directory, peek_header, verify_evidence
from shardvault.custody.secret import SecretBytes
from tests.cosigner.initiator_support import forward_solana
from tests.cosigner.support import (
    DESTINATION,
    LAMPORTS_PER_SOL,
    OTHER_DESTINATION,
    PASSPHRASE,
    TEST_ONLY_PRIMES,
    VAULT,
    approval,
    dkg_request,
    make_nodes,
    metadata,
    sign_request,
    signed_bundle,
    solana_digest,
    solana_transfer,
)


class Cluster:
    """Three nodes and a relay; the test plays the coordinator."""

    def __init__(self, root):
        dirs = make_nodes(root)
        directory = Directory.of({p: read_public_identity(d)[1] for p, d in dirs.items()})
        self.core = RelayCore(directory)
        self.nodes = {}
        for party, data_dir in dirs.items():
            with SecretBytes(PASSPHRASE.encode()) as passphrase:
                state = open_node(data_dir, passphrase)
            # ECDSA key generation takes the TEST-ONLY published primes (no search).
            self.nodes[party] = CosignerNode(
                state, InMemoryLink(self.core, party), test_only_primes=TEST_ONLY_PRIMES
            )

    def pump(self):
        for _ in range(50):
            if not any(node.step(0.0) for node in self.nodes.values()):
                return
        raise AssertionError("nodes did not go quiet")

    def run(self, body, parties):
        self.core.submit(body, parties)
        self.pump()
        return self.core.results(body["request_id"])

    def close(self):
        for node in self.nodes.values():
            node.state.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    results = c.run(
        {"kind": "policy", "request_id": "p1", "bundles": [signed_bundle().to_json()]}, [1, 2, 3]
    )
    assert all(r["status"] == "ok" for r in results.values()), results
    yield c
    c.close()


@pytest.fixture(scope="module")
def sol_key(cluster):
    results = cluster.run(dkg_request(), [1, 2, 3])
    assert {r["status"] for r in results.values()} == {"ok"}, results
    keys = {r["public_key"] for r in results.values()}
    assert len(keys) == 1
    return bytes.fromhex(keys.pop())


def _refusals(results):
    return {(r["status"], r.get("check"), r.get("rule")) for r in results.values()}


def _session_envelopes(core, body):
    from shardvault.crypto.channel import peek_header

    sid = bytes.fromhex(body["session_id"])
    return [e for e in core.transcript if bytes(peek_header(e).session_id) == sid]


def test_small_transfer_is_signed_and_verifies(cluster, sol_key):
    message = solana_transfer(sol_key, DESTINATION, LAMPORTS_PER_SOL // 2)
    body = sign_request(message, (1, 3), digest=solana_digest(message))
    results = cluster.run(body, [1, 3])
    assert {r["status"] for r in results.values()} == {"ok"}, results
    assert {r["rule"] for r in results.values()} == {"small-sol"}
    signature = bytes.fromhex(results[1]["signature"])
    VerifyKey(sol_key).verify(message, signature)
    solders_message = SoldersMessage.from_bytes(message)
    assert SoldersSignature(signature).verify(SoldersPubkey(sol_key), bytes(solders_message))


def test_forbidden_transfer_is_refused_by_every_cosigner_naming_the_rule(cluster, sol_key):
    message = solana_transfer(sol_key, DESTINATION, 6 * LAMPORTS_PER_SOL)
    body = sign_request(message, (1, 2, 3))
    results = cluster.run(body, [1, 2, 3])
    assert _refusals(results) == {("refused", "policy", "block-large-sol")}
    assert _session_envelopes(cluster.core, body) == []


def test_approval_releases_and_a_changed_payload_gets_nothing(cluster, sol_key):
    message = solana_transfer(sol_key, DESTINATION, 2 * LAMPORTS_PER_SOL)
    no_approval = cluster.run(sign_request(message, (1, 2)), [1, 2])
    assert _refusals(no_approval) == {("refused", "policy", "sol-needs-approval")}
    good = approval(solana_digest(message))
    # Approvals count for a request alice signed herself (she may not approve it).
    body = forward_solana(sign_request(message, (1, 2), approvals=[good]), DESTINATION, 2 * 10**9)
    approved = cluster.run(body, [1, 2])
    assert {r["status"] for r in approved.values()} == {"ok"}
    VerifyKey(sol_key).verify(message, bytes.fromhex(approved[2]["signature"]))
    # A compromised coordinator reuses the approval for a different amount or recipient.
    for changed in (
        solana_transfer(sol_key, DESTINATION, 3 * LAMPORTS_PER_SOL),
        solana_transfer(sol_key, OTHER_DESTINATION, 2 * LAMPORTS_PER_SOL),
    ):
        body = sign_request(changed, (1, 2), approvals=[good])
        results = cluster.run(body, [1, 2])
        assert _refusals(results) == {("refused", "policy", "sol-needs-approval")}
        assert _session_envelopes(cluster.core, body) == []


def test_claimed_digest_that_is_not_the_payloads_is_refused(cluster, sol_key):
    shown = solana_transfer(sol_key, DESTINATION, LAMPORTS_PER_SOL // 10)
    sent = solana_transfer(sol_key, OTHER_DESTINATION, LAMPORTS_PER_SOL // 10)
    body = sign_request(sent, (1, 2), digest=solana_digest(shown))
    results = cluster.run(body, [1, 2])
    assert _refusals(results) == {("refused", "digest", None)}


def test_raw_digest_falls_to_default_deny(cluster, sol_key):
    body = sign_request(bytes(32), (1, 2), chain="raw")
    results = cluster.run(body, [1, 2])
    assert _refusals(results) == {("refused", "policy", None)}


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ({"metadata": {**metadata(), "destination": "x"}}, "malformed"),
        ({"payload": "zz"}, "malformed"),
        ({"payload": "00" * 40}, "payload"),
        ({"chain": "dogecoin"}, "malformed"),
        ({"key_id": "no-such-key"}, "key"),
        ({"approvals": "carol"}, "malformed"),
        ({"metadata": {**metadata(), "created_at": 2**40}}, "malformed"),
    ],
)
def test_bad_requests_are_refused_with_the_check(cluster, sol_key, change, check):
    message = solana_transfer(sol_key, DESTINATION, 1000)
    body = sign_request(message, (1, 2), **change)
    results = cluster.run(body, [1, 2])
    assert {(r["status"], r["check"]) for r in results.values()} == {("refused", check)}


def test_message_not_signed_by_the_vault_key_is_refused(cluster, sol_key):
    message = solana_transfer(OTHER_DESTINATION, DESTINATION, 1000)
    results = cluster.run(sign_request(message, (1, 2)), [1, 2])
    assert _refusals(results) == {("refused", "payload", None)}


def test_replayed_envelope_is_refused(cluster, sol_key):
    message = solana_transfer(sol_key, DESTINATION, 1000)
    body = sign_request(message, (2, 3))
    assert {r["status"] for r in cluster.run(body, [2, 3]).values()} == {"ok"}
    from shardvault.crypto.channel import peek_header

    old = _session_envelopes(cluster.core, body)[0]
    receiver = 5 - peek_header(old).sender  # the other signer of (2, 3)
    before = len(cluster.core.events)
    cluster.core.inject(receiver, old)
    cluster.pump()
    refused = [e for e in cluster.core.events[before:] if e.get("event") == "envelope_refused"]
    assert [(e["party"], e["error"]) for e in refused] == [(receiver, "ReplayError")]


def test_bundle_signed_below_quorum_or_by_strangers_is_refused(cluster):
    head = cluster.nodes[1].state.chain.head
    for signers in (("admin-1",), ("admin-1", "mallory")):
        bundle = signed_bundle(signers, _next_policy(), head)
        results = cluster.run(
            {"kind": "policy", "request_id": f"p-{signers}", "bundles": [bundle.to_json()]},
            [1, 2, 3],
        )
        assert {(r["status"], r["check"]) for r in results.values()} == {("refused", "policy")}


def _next_policy():
    from tests.cosigner.support import POLICY

    return {**POLICY, "version": 2}


def test_existing_key_is_not_generated_again(cluster, sol_key):
    results = cluster.run(dkg_request(), [1, 2, 3])
    assert {(r["status"], r["check"]) for r in results.values()} == {("refused", "key")}


def test_share_store_holds_only_ciphertext(cluster, sol_key):
    for node in cluster.nodes.values():
        address = node.state.share_address("treasury", "sol-1")
        _, blob = node.state.custody.load_blob(address)
        with node.state.custody.load_share(address) as opened:
            plaintext = opened.share.reveal()
        assert plaintext not in blob
        assert plaintext[-40:] not in blob


def test_taproot_psbt_input_is_signed_after_checks(cluster):
    results = cluster.run(dkg_request(scheme="schnorr-bip340", key_id="btc-1"), [1, 2, 3])
    assert {r["status"] for r in results.values()} == {"ok"}, results
    internal = bytes.fromhex(results[1]["public_key"])
    ours = bitcoin.output_key(internal).script_pubkey
    destination = bitcoin.p2tr_script(hashlib.sha256(b"payee").digest()[:32])
    outpoint = bitcoin.OutPoint(hashlib.sha256(b"funding").digest(), 0)
    psbt = bitcoin.create_psbt(
        [outpoint],
        [bitcoin.TxOut(40_000, destination), bitcoin.TxOut(59_000, ours)],
    )
    psbt = bitcoin.set_witness_utxo(psbt, 0, bitcoin.TxOut(100_000, ours))
    body = sign_request(
        psbt.serialize(),
        (2, 3),
        chain="bitcoin",
        key_id="btc-1",
        input_index=0,
    )
    signed = cluster.run(body, [2, 3])
    # 40 000 sat is not SOL: the only rule that matches a BTC transfer is small-sol. The
    # bundle carries no asset registry, so the PSBT is read as a mainnet payment.
    assert {r["status"] for r in signed.values()} == {"ok"}, signed
    sighash = bitcoin.input_sighash(psbt, 0)
    output_key = bitcoin.output_key(internal).x_only
    assert coincurve.PublicKeyXOnly(output_key).verify(
        bytes.fromhex(signed[2]["signature"]), sighash
    )


def test_ethereum_digest_matches_eth_account():
    tx = {
        "type": 2,
        "chainId": 1,
        "nonce": 7,
        "maxPriorityFeePerGas": 10**9,
        "maxFeePerGas": 3 * 10**9,
        "gas": 21000,
        "to": "0x2222222222222222222222222222222222222222",
        "value": 10**18,
        "data": b"",
        "accessList": [],
    }
    unsigned = serializable_unsigned_transaction_from_dict(tx)
    built = ethereum.native_transfer(
        chain_id=1,
        nonce=7,
        to=tx["to"],
        amount="1",
        fees=ethereum.FeeParameters(3 * 10**9, 10**9, 21000),
    )
    target = ethereum_target(ethereum.encode_unsigned(built), metadata())
    assert target.message == bytes(unsigned.hash())
    assert target.request.destination.lower() == tx["to"]
    assert target.request.amount == 10**18
    assert target.request.network == "ethereum"
    signed = Account.create().sign_transaction(tx)
    with pytest.raises(RequestRefused):
        ethereum_target(bytes(signed.raw_transaction), metadata())


def test_coordinator_abort_ends_the_session_and_refuses_its_messages(cluster):
    body = dkg_request(key_id="aborted")
    cluster.core.submit(body, [1, 2, 3])
    for node in cluster.nodes.values():
        node.step(0.0)  # every party sends its round-1 broadcast, nobody reads yet
    abort = {"kind": "abort", "request_id": "abort-1", "session_id": body["session_id"]}
    for party in cluster.nodes:
        cluster.core.submit(abort, [party])
    before = len(cluster.core.events)
    cluster.pump()
    results = cluster.core.results("abort-1")
    assert {(r["status"], r.get("aborted")) for r in results.values()} == {
        ("ok", body["request_id"])
    }
    # The round-1 broadcasts queued before the abort are refused, never processed.
    refused = [e for e in cluster.core.events[before:] if e.get("event") == "envelope_refused"]
    assert refused
    assert {e["error"] for e in refused} == {"ReplayError"}
    assert cluster.core.results(body["request_id"]) == {}


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = st.sampled_from(
    [
        "kind",
        "request_id",
        "session_id",
        "aux_session_id",
        "vault",
        "key_id",
        "signers",
        "parties",
        "chain",
        "payload",
        "digest",
        "metadata",
        "approvals",
        "prices",
        "price_reports",
        "scheme",
        "min_signers",
        "presignature",
        "bundles",
        "input_index",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["dkg", "sign", "presign", "policy", "abort", "other"]),
    fields=st.dictionaries(_FIELDS, _JSON, max_size=8),
    plausible=st.fixed_dictionaries(
        {},
        optional={
            "session_id": st.binary(min_size=32, max_size=32).map(bytes.hex),
            "aux_session_id": st.binary(min_size=32, max_size=32).map(bytes.hex),
            "signers": st.sampled_from([[1, 2], [1, 2, 3], [2, 3]]),
            "parties": st.sampled_from([[1, 2], [1, 2, 3]]),
            "vault": st.sampled_from(["treasury", "other"]),
            "key_id": st.sampled_from(["sol-1", "btc-1", "none"]),
            "chain": st.sampled_from(["solana", "bitcoin", "ethereum", "raw"]),
            # Not ecdsa-secp256k1: without the test-only primes it would search safe primes.
            "scheme": st.sampled_from(["eddsa-ed25519", "schnorr-bip340"]),
            "metadata": st.just(metadata()),
            "payload": st.binary(max_size=64).map(bytes.hex),
        },
    ),
)
def test_fuzz_requests_get_a_result_never_an_exception(cluster, kind, fields, plausible):
    body = {**fields, **plausible, "kind": kind, "request_id": "fuzz"}
    node = cluster.nodes[1]
    head = node.state.chain.head
    out = node.handle([Item(request=body)])
    statuses = [r["status"] for r in out.results]
    assert statuses in (["refused"], ["failed"], []) or (kind == "policy" and statuses == ["ok"])
    assert node.state.chain.head is head  # nothing unsigned ever changes the policy
    assert all(r.get("reason") != "internal error" for r in out.results), out.results
    assert not out.envelopes or kind in ("dkg", "sign", "presign")
    for key in list(node._active):
        node._end(key, "fuzz test clean-up")


class _MaliciousLink(InMemoryLink):
    """Party 3 turned malicious: in its key-generation round-2 broadcast it replaces the
    share encrypted to party 1 with bytes that do not decrypt, and signs the result with
    its own identity."""

    def __init__(self, core, identity, directory, victim):
        super().__init__(core, identity.party)
        self._identity = identity
        self._directory = directory
        self._victim = victim
        self.forged = []

    def send(self, envelopes, results=(), events=()):
        import dataclasses

        from shardvault.crypto.channel import seal
        from shardvault.crypto.protocols.common import decode_wire
        from shardvault.crypto.protocols.frost import DkgRound2Message

        out = []
        for envelope in envelopes:
            header = peek_header(envelope)
            if header.protocol == "frost/dkg" and header.round == 2:
                fields = decode_wire(
                    envelope, ("format", "header", "nonce", "payload", "signature")
                )
                inner = DkgRound2Message.from_bytes(fields["payload"])
                index = [p for p in (1, 2, 3) if p != header.sender].index(self._victim)
                ciphertexts = list(inner.share_ciphertexts)
                ciphertexts[index] = bytes(len(ciphertexts[index]))
                forged = dataclasses.replace(inner, share_ciphertexts=tuple(ciphertexts))
                envelope = seal(forged.to_bytes(), header, self._identity, None, os.urandom)
                self.forged.append(envelope)
            out.append(envelope)
        super().send(out, results, events)


def test_malicious_party_is_named_with_signed_evidence(cluster):
    node3 = cluster.nodes[3]
    honest_link = node3.link
    malicious = _MaliciousLink(cluster.core, node3.state.identity, node3.state.directory, victim=1)
    node3.link = malicious
    try:
        body = dkg_request(key_id="victim")
        results = cluster.run(body, [1, 2, 3])
    finally:
        node3.link = honest_link
    assert malicious.forged
    # Party 1 complains; party 2, whose share was good, judges the complaint alike.
    for party in (1, 2):
        assert results[party]["status"] == "failed", results[party]
        assert results[party]["culprits"] == [3]
    evidence = [base64.b64decode(e) for e in results[1]["evidence"]]
    assert malicious.forged[0] in evidence
    # Anyone holding the directory can check that party 3 signed what it is blamed for.
    assert verify_evidence(malicious.forged[0], node3.state.directory).sender == 3


class _RewritingLink(InMemoryLink):
    """A relay that hands this co-signer another body for one request (a relay may)."""

    def __init__(self, core, party, request_id, body):
        super().__init__(core, party)
        self._request_id = request_id
        self._body = body

    def poll(self, wait):
        return [
            Item(request=self._body)
            if item.request is not None and item.request.get("request_id") == self._request_id
            else item
            for item in super().poll(wait)
        ]


def test_signers_given_different_transfers_fail_naming_nobody(cluster, sol_key):
    """The relay gives co-signer 3 another (also allowed) transfer than co-signer 1: each
    signs what it checked, sees the other's share for another digest, and fails with
    check digest and no culprit, where both used to name the other, honest co-signer."""
    first = solana_transfer(sol_key, DESTINATION, LAMPORTS_PER_SOL // 2, b"digest mismatch")
    second = solana_transfer(sol_key, DESTINATION, LAMPORTS_PER_SOL // 3, b"digest mismatch")
    body = sign_request(first, (1, 3), digest=solana_digest(first))
    other = {**body, "payload": second.hex(), "digest": solana_digest(second).hex()}
    node3 = cluster.nodes[3]
    honest_link = node3.link
    node3.link = _RewritingLink(cluster.core, 3, body["request_id"], other)
    try:
        results = cluster.run(body, [1, 3])
    finally:
        node3.link = honest_link
    assert {p: (r["status"], r.get("check"), r["culprits"]) for p, r in results.items()} == {
        1: ("failed", "digest", []),
        3: ("failed", "digest", []),
    }


def test_a_bad_share_to_one_party_leaves_no_party_with_a_stored_key(cluster):
    """Party 3 sends party 1 alone a bad key-generation share: party 1 complains, party 2
    (which got a good share) judges the complaint and names party 3 too, and neither
    stores a key package."""
    node3 = cluster.nodes[3]
    honest_link = node3.link
    malicious = _MaliciousLink(cluster.core, node3.state.identity, node3.state.directory, victim=1)
    node3.link = malicious
    try:
        body = dkg_request(key_id="unconfirmed")
        results = cluster.run(body, [1, 2, 3])
    finally:
        node3.link = honest_link
    for party in (1, 2):
        assert results[party]["status"] == "failed", results[party]
        assert results[party]["culprits"] == [3]
    for party in (1, 2):
        node = cluster.nodes[party]
        address = node.state.share_address(VAULT, "unconfirmed")
        assert not node.state.custody.store.latest_revision(address), party
    # The coordinator ends the session everywhere; party 2 still stores nothing.
    cluster.run({"kind": "abort", "request_id": "abort-unconfirmed",
                 "session_id": body["session_id"]}, [1, 2, 3])  # fmt: skip
    address = cluster.nodes[2].state.share_address(VAULT, "unconfirmed")
    assert not cluster.nodes[2].state.custody.store.latest_revision(address)


@pytest.mark.parametrize(
    "signers", [[{}], [1, "2"], [True, 2], [1, 1], [0, 1], "12", [70000, 1], [[1]]]
)
def test_bad_party_lists_are_refused(cluster, signers):
    body = sign_request(b"\x00" * 32, (1, 2), chain="raw")
    body["signers"] = signers
    out = cluster.nodes[1].handle([Item(request=body)])
    assert [(r["status"], r["check"]) for r in out.results] == [("refused", "malformed")]


@pytest.mark.parametrize(
    ("min_signers", "parties"),
    [(1, [1, 2, 3]), (1, [1, 2]), (0, [1, 2, 3]), (4, [1, 2, 3])],
    ids=["1-of-3", "1-of-2", "0-of-3", "4-of-3"],
)
@pytest.mark.parametrize("scheme", ["eddsa-ed25519", "ecdsa-secp256k1"])
def test_dkg_with_a_threshold_out_of_range_is_refused(cluster, min_signers, parties, scheme):
    """min_signers = 1 would make every share the whole key: refused as malformed, naming
    the field, before any round starts (for ECDSA, before any safe-prime search)."""
    body = {
        **dkg_request(parties=parties, scheme=scheme, key_id="one-of-n"),
        "min_signers": min_signers,
    }
    node = cluster.nodes[1]
    try:
        out = node.handle([Item(request=body)])
    finally:
        for key in list(node._active):  # a session started by mistake must not linger
            node._end(key, "test clean-up")
    assert [(r["status"], r.get("check")) for r in out.results] == [("refused", "malformed")]
    assert "min_signers" in out.results[0]["reason"]
    assert not out.envelopes
