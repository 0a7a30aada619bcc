"""Prepared auxiliary-info sets (``aux_prepare``, then a ``dkg`` naming ``aux_label``):
each set is used for one key at most, an unknown or used label is refused, the bound
refuses more, a party set without the co-signer is refused, and a set is sealed at rest.

The nodes make their Paillier keys from a test-only prime pool (the TEST-ONLY published
primes, taken in turn), so the keys of successive sets get different moduli."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from shardvault.cosigner.aux_pool import AuxPool, AuxPoolSettings
from shardvault.cosigner.errors import RequestRefused
from shardvault.cosigner.node_keys import NodeKeys
from shardvault.cosigner.prime_pool import PoolSettings, PrimePool
from shardvault.crypto.protocols.cggmp21.aux_info import AuxInfo
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from tests.cosigner.support import TEST_ONLY_PRIMES, VAULT, dkg_request, signed_bundle
from tests.cosigner.test_node import Cluster
from tests.service.pipeline_support import open_custody


class _PooledCluster(Cluster):
    """The cluster of tests/cosigner/test_node.py with a test-only prime pool per node."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        for node in self.nodes.values():
            node._prime_pool = PrimePool(
                node.state.custody,
                node.state.party,
                PoolSettings(size=8),
                test_only_primes=TEST_ONLY_PRIMES,
            )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_PooledCluster]:
    c = _PooledCluster(tmp_path_factory.mktemp("aux-cluster"))
    policy = {"kind": "policy", "request_id": "p1", "bundles": [signed_bundle().to_json()]}
    assert {r["status"] for r in c.run(policy, [1, 2, 3]).values()} == {"ok"}
    yield c
    c.close()


def _prepare(cluster: Cluster, label: str, parties: list[int]) -> dict[int, dict[str, object]]:
    body = {
        "kind": "aux_prepare",
        "request_id": f"aux-{label}",
        "aux_session_id": secrets.token_hex(32),
        "aux_label": label,
        "parties": parties,
    }
    return cluster.run(body, parties)  # type: ignore[no-any-return]


def _keygen(cluster: Cluster, key_id: str, label: str) -> dict[int, dict[str, object]]:
    body = dkg_request(scheme="ecdsa-secp256k1", key_id=key_id)
    body["aux_label"] = label
    return cluster.run(body, [1, 2, 3])  # type: ignore[no-any-return]


def _share(cluster: Cluster, party: int, key_id: str) -> KeyShare:
    key = cluster.nodes[party]._keys.load(VAULT, key_id)
    assert isinstance(key, KeyShare)
    return key


def test_each_prepared_set_makes_one_key_and_is_then_gone(cluster: _PooledCluster) -> None:
    first, second = secrets.token_hex(16), secrets.token_hex(16)
    for label in (first, second):
        results = _prepare(cluster, label, [1, 2, 3])
        assert {r["status"] for r in results.values()} == {"ok"}, results
        assert all(label in r["held"] for r in results.values())  # type: ignore[operator]
        assert all(r["test_only"] is True for r in results.values())
    held = {p: node.aux_pool.held([1, 2, 3]) for p, node in cluster.nodes.items()}
    assert all({first, second} <= set(labels) for labels in held.values())

    made = _keygen(cluster, "eth-a", first)
    assert {r["status"] for r in made.values()} == {"ok"}, made
    assert {r["paillier_primes"] for r in made.values()} == {"prepared"}
    assert all(r["test_only"] is True for r in made.values())
    # The label is gone from every co-signer: a second key cannot use it.
    assert all(first not in node.aux_pool.held([1, 2, 3]) for node in cluster.nodes.values())
    again = _keygen(cluster, "eth-b", first)
    assert {r["status"] for r in again.values()} == {"refused"}, again
    assert {r["check"] for r in again.values()} == {"aux"}
    assert not any(node._active for node in cluster.nodes.values())

    other = _keygen(cluster, "eth-c", second)
    assert {r["status"] for r in other.values()} == {"ok"}, other
    # Two keys, two sets: no party's Paillier modulus (nor any peer's view) repeats.
    for party in (1, 2, 3):
        a, c = _share(cluster, party, "eth-a"), _share(cluster, party, "eth-c")
        assert a.paillier_secret.public.n != c.paillier_secret.public.n
        assert {x.paillier.n for x in a.aux.values()}.isdisjoint(
            {x.paillier.n for x in c.aux.values()}
        )


def test_an_unknown_label_is_refused_and_changes_nothing(cluster: _PooledCluster) -> None:
    results = _keygen(cluster, "eth-unknown", secrets.token_hex(16))
    assert {r["status"] for r in results.values()} == {"refused"}
    assert {r["check"] for r in results.values()} == {"aux"}
    bad = _keygen(cluster, "eth-bad", "not-hex")
    assert {r["check"] for r in bad.values()} == {"malformed"}
    for node in cluster.nodes.values():
        assert not node._active
        assert not node.state.custody.store.latest_revision(
            node._keys.address("treasury", "eth-unknown")
        )


def test_a_party_set_without_the_cosigner_is_refused(cluster: _PooledCluster) -> None:
    label = secrets.token_hex(16)
    body = {
        "kind": "aux_prepare",
        "request_id": f"aux-{label}",
        "aux_session_id": secrets.token_hex(32),
        "aux_label": label,
        "parties": [1, 2],
    }
    results = cluster.run(body, [3])
    assert results[3]["status"] == "refused"
    assert "not in the party set" in str(results[3]["reason"])
    assert cluster.nodes[3].aux_pool.held([1, 2]) == []


def test_a_set_is_never_made_from_primes_searched_in_the_loop(cluster: _PooledCluster) -> None:
    # A node without a test-only fixture and with no pooled primes would search two
    # safe primes inside its loop: for background work it refuses instead.
    keys = NodeKeys(cluster.nodes[1].state, None, None)
    with pytest.raises(RequestRefused) as refused:
        keys.paillier_key_and_source(search=False)
    assert refused.value.check == "aux"


def test_the_bound_refuses_more_sets_per_party_set(tmp_path: Path) -> None:
    pool = AuxPool(open_custody(tmp_path / "custody"), 1, AuxPoolSettings(max_per_set=2))
    pool.reserve([1, 2, 3], "aa" * 8)
    pool.reserve([1, 2, 3], "bb" * 8)
    with pytest.raises(RequestRefused) as refused:
        pool.reserve([1, 2, 3], "cc" * 8)
    assert refused.value.check == "aux"
    # Another party set has its own bound; a released reservation frees its place.
    pool.reserve([1, 2], "dd" * 8)
    pool.release([1, 2, 3], "aa" * 8)
    pool.reserve([1, 2, 3], "cc" * 8)
    with pytest.raises(RequestRefused):
        pool.reserve([1, 2, 3], "cc" * 8)
    with pytest.raises(ValueError, match="0 to 64"):
        AuxPoolSettings(max_per_set=65)


def test_a_prepared_set_is_sealed_at_rest_and_taken_once(
    cluster: _PooledCluster, tmp_path: Path
) -> None:
    label = secrets.token_hex(16)
    assert {r["status"] for r in _prepare(cluster, label, [1, 2, 3]).values()} == {"ok"}
    made = _keygen(cluster, "eth-sealed", label)
    assert {r["status"] for r in made.values()} == {"ok"}
    share = _share(cluster, 1, "eth-sealed")
    aux = AuxInfo(share.party, share.paillier_secret, dict(share.aux))
    root = tmp_path / "custody"
    pool = AuxPool(open_custody(root), 1, test_only=True)
    other = secrets.token_hex(16)
    pool.reserve([1, 2, 3], other)
    pool.seal(other, aux)
    stored = b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())
    secret = share.paillier_secret
    for prime in (secret.p, secret.q):
        assert format(prime, "x").encode() not in stored
        assert prime.to_bytes((prime.bit_length() + 7) // 8, "big") not in stored
    # Reopened (a restart), the set is still there once, of its kind only.
    assert AuxPool(open_custody(root), 1, test_only=True).held([1, 2, 3]) == [other]
    assert AuxPool(open_custody(root), 1, test_only=False).held([1, 2, 3]) == []
    taken = AuxPool(open_custody(root), 1, test_only=True).take([1, 2, 3], other)
    assert taken.paillier_secret.public.n == secret.public.n
    with pytest.raises(RequestRefused):
        AuxPool(open_custody(root), 1, test_only=True).take([1, 2, 3], other)


def test_the_status_counts_sets_without_labels_and_the_cli_shows_it(tmp_path: Path) -> None:
    from shardvault.cli.cosigners import _aux

    pool = AuxPool(open_custody(tmp_path / "custody"), 1, AuxPoolSettings(max_per_set=3))
    pool.reserve([1, 2, 3], "ee" * 8)
    status = pool.status()
    assert status["ready"] == {}
    assert status["preparing"] == 1
    assert "ee" * 8 not in str(status)
    assert _aux(status) == "aux sets ready none (at most 3 per party set), 1 preparing"
    shown = _aux({"ready": {"1.2.3": 2}, "max_per_set": 4})
    assert shown == "aux sets ready 1.2.3: 2 (at most 4 per party set)"
    assert _aux(None) == "aux sets unknown"
