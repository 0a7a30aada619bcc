"""The co-signer directory signed by the admin quorum (docs/cosigner.md, "Pairing").

Co-signers that pinned no peer at ``init`` learn their peers only from a policy bundle
that the admin quorum signed. A server that swaps a co-signer's identity (at pairing, or
by playing a party itself) gets no session: the honest co-signers refuse the stranger,
and each refusal names its reason.
"""

from __future__ import annotations

import hashlib

import pytest
from nacl.signing import VerifyKey

from shardvault.cosigner.link import InMemoryLink
from shardvault.cosigner.node import CosignerNode
from shardvault.cosigner.relay_core import RelayCore
from shardvault.cosigner.state import init_node, open_node
from shardvault.crypto.channel import Directory, PartyIdentity
from shardvault.custody.backends.local import DEVELOPMENT_COST
from shardvault.custody.secret import SecretBytes
from shardvault.policy import (
    CosignerDirectory,
    MalformedBundleError,
    QuorumNotMetError,
    new_bundle,
    parse_address_book,
    parse_admin_set,
    parse_bundle,
    parse_initiator_keys,
    parse_policy,
)
from tests.cosigner.initiator_support import INITIATORS
from tests.cosigner.support import (
    ADMIN_SET,
    ADMINS,
    DESTINATION,
    LAMPORTS_PER_SOL,
    PASSPHRASE,
    POLICY,
    WORKSPACE,
    dkg_request,
    sign_request,
    solana_transfer,
)


def _bundle(directory: CosignerDirectory | None, signers=("admin-1", "admin-2"), predecessor=None):
    policy = dict(POLICY, version=1 if predecessor is None else predecessor.version + 1)
    bundle = new_bundle(
        WORKSPACE,
        parse_policy(policy),
        parse_address_book({"format": "shardvault.address-book/v1", "entries": []}),
        parse_admin_set(ADMIN_SET),
        predecessor,
        cosigners=directory,
        initiators=parse_initiator_keys(INITIATORS),
    )
    for name in signers:
        bundle = bundle.with_signature(name, ADMINS[name].sign(bundle.signing_message()).signature)
    return bundle


class Paired:
    """Three co-signers that pinned only themselves at ``init``; the relay (the server)
    knows whatever identities the test gives it."""

    def __init__(self, root, *, require_signed_directory=True):
        self.identities = {}
        self.dirs = {}
        for party in (1, 2, 3):
            data_dir = root / f"cosigner-{party}"
            with SecretBytes(PASSPHRASE.encode()) as passphrase:
                self.identities[party] = init_node(
                    data_dir, party, WORKSPACE, ADMIN_SET, passphrase, cost=DEVELOPMENT_COST
                )
            self.dirs[party] = data_dir
        self.require = require_signed_directory
        self.link_to(Directory.of(self.identities))

    def link_to(self, relay_directory, *, impostor=None):
        """Open the nodes against a relay that knows ``relay_directory``; ``impostor``
        (a party identity the server made) then plays its party instead of the real one."""
        self.core = RelayCore(relay_directory)
        self.nodes = {}
        for party, data_dir in self.dirs.items():
            if impostor is not None and party == impostor.party:
                continue
            with SecretBytes(PASSPHRASE.encode()) as passphrase:
                state = open_node(data_dir, passphrase)
            self.nodes[party] = CosignerNode(
                state,
                InMemoryLink(self.core, party),
                require_signed_directory=self.require,
            )
        if impostor is not None:
            with SecretBytes(PASSPHRASE.encode()) as passphrase:
                state = open_node(self.dirs[1], passphrase)
            # The server's own node: it holds party 1's policy chain (public data) but
            # its identity is one the server made for the impostor's party.
            state.party = impostor.party
            state.identity = impostor
            state.directory = relay_directory
            node = CosignerNode(state, InMemoryLink(self.core, impostor.party))
            # It runs its sessions with the directory the server likes.
            node._session_directory = lambda parties: relay_directory
            self.nodes[impostor.party] = node

    def pump(self):
        for _ in range(50):
            if not any(node.step(0.0) for node in self.nodes.values()):
                return
        raise AssertionError("nodes did not go quiet")

    def run(self, body, parties):
        self.core.submit(body, parties)
        self.pump()
        return self.core.results(body["request_id"])

    def push(self, bundle, parties=(1, 2, 3)):
        return self.run(
            {"kind": "policy", "request_id": f"p-{bundle.version}", "bundles": [bundle.to_json()]},
            list(parties),
        )

    def close(self):
        for node in self.nodes.values():
            node.state.close()


@pytest.fixture
def paired(tmp_path):
    cluster = Paired(tmp_path)
    yield cluster
    cluster.close()


def _statuses(results):
    return {p: (r["status"], r.get("check")) for p, r in results.items()}


def test_a_directory_document_round_trips_and_keeps_old_bundles_hashes(paired):
    directory = CosignerDirectory.of(paired.identities)
    with_directory = _bundle(directory)
    parsed = parse_bundle(with_directory.to_json())
    assert parsed.cosigners == directory
    assert parsed.hash() == with_directory.hash()
    without = _bundle(None)
    assert "cosigners" not in without.to_json()["payload"]
    assert parse_bundle(without.to_json()).cosigners is None
    assert without.hash() != with_directory.hash()
    assert set(directory.fingerprints()) == {1, 2, 3}


def test_a_directory_that_does_not_check_is_malformed(paired):
    document = _bundle(CosignerDirectory.of(paired.identities)).to_json()
    members = document["payload"]["cosigners"]["members"]
    members[1]["encryption_key"] = members[2]["encryption_key"]  # the binding fails now
    with pytest.raises(MalformedBundleError, match="identity refused"):
        parse_bundle(document)
    document = _bundle(CosignerDirectory.of(paired.identities)).to_json()
    document["payload"]["cosigners"]["members"][1]["party"] = 1
    with pytest.raises(MalformedBundleError, match="listed twice"):
        parse_bundle(document)
    with pytest.raises(MalformedBundleError, match="2 to"):
        CosignerDirectory.of({1: paired.identities[1]})


def test_without_a_signed_directory_a_production_cosigner_refuses_sessions(paired):
    assert {r["status"] for r in paired.push(_bundle(None)).values()} == {"ok"}
    results = paired.run(dkg_request(), [1, 2, 3])
    assert _statuses(results) == {p: ("refused", "directory") for p in (1, 2, 3)}
    assert "no co-signer directory" in results[1]["reason"]


def test_a_signed_directory_lets_paired_cosigners_generate_and_sign(paired):
    bundle = _bundle(CosignerDirectory.of(paired.identities))
    assert {r["status"] for r in paired.push(bundle).values()} == {"ok"}
    results = paired.run(dkg_request(), [1, 2, 3])
    assert {r["status"] for r in results.values()} == {"ok"}, results
    public_key = bytes.fromhex(results[1]["public_key"])
    message = solana_transfer(public_key, DESTINATION, LAMPORTS_PER_SOL // 2)
    signed = paired.run(sign_request(message, (1, 3)), [1, 3])
    assert {r["status"] for r in signed.values()} == {"ok"}, signed
    VerifyKey(public_key).verify(message, bytes.fromhex(signed[1]["signature"]))


def test_a_party_outside_the_signed_directory_is_refused_by_name(tmp_path):
    cluster = Paired(tmp_path)
    try:
        two = CosignerDirectory.of({1: cluster.identities[1], 2: cluster.identities[2]})
        cluster.push(_bundle(two))
        results = cluster.run(dkg_request(), [1, 2, 3])
        # 1 and 2 refuse the stranger by name; 3 is not in the directory itself.
        assert _statuses(results) == {p: ("refused", "directory") for p in (1, 2, 3)}
        assert "parties [3]" in results[1]["reason"]
        assert "parties [3]" in results[2]["reason"]
        assert "this co-signer is not in the directory" in results[3]["reason"]
    finally:
        cluster.close()


def test_a_server_that_swapped_an_identity_gets_no_session(tmp_path):
    """The server paired its own key under party 3 and plays party 3 itself. The admins
    signed the directory of the fingerprints the operators read on their own hosts, so
    the honest co-signers verify party 3's messages under the real identity: every
    message of the impostor is refused, naming why, and no key is generated."""
    cluster = Paired(tmp_path)
    try:
        cluster.push(_bundle(CosignerDirectory.of(cluster.identities)))
        impostor = PartyIdentity.generate(3, lambda n: hashlib.sha256(b"server").digest()[:n])
        swapped = Directory.of({**cluster.identities, 3: impostor.public})
        for node in cluster.nodes.values():
            node.state.close()
        cluster.link_to(swapped, impostor=impostor)
        body = dkg_request()
        cluster.core.submit(body, [1, 2, 3])
        cluster.pump()
        results = cluster.core.results(body["request_id"])
        assert all(r["status"] != "ok" for p, r in results.items() if p in (1, 2)), results
        refused = [e for e in cluster.core.events if e.get("event") == "envelope_refused"]
        assert {e["party"] for e in refused} == {1, 2}
        assert {e["error"] for e in refused} == {"BadEnvelopeSignatureError"}, refused
        assert all("sender 3 does not verify" in e["reason"] for e in refused)
        # The sessions end (timed out, naming the impostor's party), never with a key.
        for party in (1, 2):
            node = cluster.nodes[party]
            node._clock = lambda: 10**10
            out = node.step(0.0)
            failed = [r for r in out.results if r["request_id"] == body["request_id"]]
            assert failed
            assert failed[0]["status"] == "failed"
            assert "[3]" in failed[0]["reason"]
    finally:
        cluster.close()


def test_a_directory_the_server_signed_alone_is_refused(paired):
    forged = _bundle(CosignerDirectory.of(paired.identities), signers=("admin-1",))
    results = paired.push(forged)
    assert _statuses(results) == {p: ("refused", "policy") for p in (1, 2, 3)}
    assert all(QuorumNotMetError.__name__ in r["reason"] for r in results.values())
