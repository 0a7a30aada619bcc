"""A co-signer that stored a bundle before its rules had to rest on signed inputs still
starts (docs/policy.md, "Signed inputs"): the bundle's chaining and signatures are
verified again at start, but not the load-time check, which it fails (a USD value limit
and no asset registry). Otherwise the co-signer could never start to take the bundle
that replaces it. What it holds then fails closed: the value limit finds no signed price
and blocks. Offered anew, the same bundle is refused by every co-signer.
"""

from __future__ import annotations

from shardvault.cosigner.config import write_private_json
from shardvault.cosigner.link import InMemoryLink
from shardvault.cosigner.node import CosignerNode
from shardvault.cosigner.state import open_node
from shardvault.custody.secret import SecretBytes
from tests.cosigner.support import (
    DESTINATION,
    LAMPORTS_PER_SOL,
    PASSPHRASE,
    POLICY,
    dkg_request,
    sign_request,
    signed_bundle,
    solana_transfer,
)
from tests.cosigner.test_node import Cluster

OLD_POLICY = {
    **POLICY,
    "rules": [
        {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
        {"name": "large-value", "when": {"value": {"over": "1000"}}, "action": "block"},
        {"name": "small", "when": {"operation": ["transfer"]}, "action": "allow"},
    ],
}
"""A policy an earlier release signed: a USD limit, and no registry to price it."""


def _old_bundle():
    """The bundle as the admins signed it then (no asset registry, no initiator keys)."""
    return signed_bundle(policy=OLD_POLICY, initiators=None)


def _restart(cluster: Cluster) -> None:
    """Close every node and open it again from its data directory."""
    for party, node in list(cluster.nodes.items()):
        data_dir = node.state.data_dir
        node.state.close()
        with SecretBytes(PASSPHRASE.encode()) as passphrase:
            state = open_node(data_dir, passphrase)
        cluster.nodes[party] = CosignerNode(state, InMemoryLink(cluster.core, party))


def test_a_stored_bundle_without_a_price_source_starts_and_fails_closed(tmp_path):
    old = _old_bundle()
    cluster = Cluster(tmp_path / "stored")
    try:
        # What an earlier release wrote when it accepted the bundle.
        for node in cluster.nodes.values():
            write_private_json(node.state.data_dir / "policy" / "bundles.json", [old.to_json()])
        _restart(cluster)
        for node in cluster.nodes.values():
            assert node.state.chain.head == old
        keys = cluster.run(dkg_request(), [1, 2, 3])
        assert {r["status"] for r in keys.values()} == {"ok"}, keys
        sol_key = bytes.fromhex(keys[1]["public_key"])
        message = solana_transfer(sol_key, DESTINATION, LAMPORTS_PER_SOL // 2)
        results = cluster.run(sign_request(message, (1, 2)), [1, 2])
        assert {(r["status"], r.get("check"), r.get("rule")) for r in results.values()} == {
            ("refused", "policy", "large-value")
        }, results
        assert all("no price for SOL in USD" in r["reason"] for r in results.values()), results
    finally:
        cluster.close()


def test_the_same_bundle_offered_anew_is_refused_by_every_cosigner(tmp_path):
    cluster = Cluster(tmp_path / "offered")
    try:
        body = {"kind": "policy", "request_id": "p-old", "bundles": [_old_bundle().to_json()]}
        results = cluster.run(body, [1, 2, 3])
        assert sorted(results) == [1, 2, 3]
        assert {(r["status"], r.get("check")) for r in results.values()} == {
            ("refused", "policy")
        }, results
        for r in results.values():
            assert "UnsignedInputError" in r["reason"]
            assert "rule 'large-value' limits value in USD" in r["reason"]
            assert "no asset registry" in r["reason"]
        for node in cluster.nodes.values():
            assert node.state.chain.head is None
    finally:
        cluster.close()
