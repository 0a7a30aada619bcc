"""The co-signer's pool of safe primes: filled by a worker process at the configured size
and rate, sealed at rest, each prime used once (crash-safe), test-only primes kept apart,
and one Paillier modulus per ECDSA key."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from shardvault.cli.cosigner import group as cosigner_cli
from shardvault.cosigner.node_keys import NodeKeys
from shardvault.cosigner.prime_pool import (
    POOL_TAKEN,
    POOL_VAULT,
    POOL_WORKSPACE,
    PoolSettings,
    PrimePool,
)
from shardvault.crypto.primes import generate_safe_prime, is_safe_prime
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.custody.envelope import ShareAddress, ShareSlot
from shardvault.custody.secret import SecretBytes
from tests.cosigner.support import TEST_ONLY_PRIMES, VAULT, dkg_request, signed_bundle
from tests.cosigner.test_node import Cluster
from tests.service.pipeline_support import open_custody

SMALL = 128
"""Prime length for the pool's mechanics (a 1024-bit search takes about a second)."""


def _files(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_a_pool_fills_to_its_size_in_a_worker_and_seals_every_prime(tmp_path: Path) -> None:
    custody = open_custody(tmp_path / "custody")
    pool = PrimePool(custody, 1, PoolSettings(size=4, rate_per_min=6000, bits=SMALL))
    pool.start()
    try:
        assert pool.wait_for(lambda: pool.ready >= 4, 60)
        time.sleep(0.3)
        pool.seal_found()
        status = pool.status()
        assert (status["ready"], status["size"], status["made"]) == (4, 4, 4)
        assert status["test_only"] is False
        pair = pool.take_pair()
    finally:
        pool.close()
    assert pair is not None
    assert pair.p != pair.q
    assert all(is_safe_prime(x) and x.bit_length() == SMALL for x in (pair.p, pair.q))
    assert "redacted" in repr(pair)
    assert str(pair.p) not in repr(pair)
    assert pool.ready == 2
    assert pool.status()["taken"] == 2
    # Sealed at rest: no prime, taken or ready, appears in any file, in decimal or hex.
    stored = _files(tmp_path / "custody")
    for prime in (pair.p, pair.q):
        for text in (str(prime), format(prime, "x"), format(prime, "X")):
            assert text.encode() not in stored
    # The two left are still in custody, sealed, for the next key.
    reopened = PrimePool(custody, 1, PoolSettings(size=4, bits=SMALL))
    assert reopened.ready == 2


def test_the_fill_rate_spaces_the_searches(tmp_path: Path) -> None:
    custody = open_custody(tmp_path / "custody")
    # One search a minute at most: the first comes at once, the second not before.
    pool = PrimePool(custody, 1, PoolSettings(size=3, rate_per_min=1, bits=SMALL))
    pool.start()
    try:
        assert pool.wait_for(lambda: pool.ready >= 1, 60)
        time.sleep(1.0)
        pool.seal_found()
        assert pool.ready == 1
        assert pool.status()["searching"] == 0
    finally:
        pool.close()


def test_a_taken_prime_is_gone_before_use_and_a_crash_mid_take_never_reuses_it(
    tmp_path: Path,
) -> None:
    custody = open_custody(tmp_path / "custody")
    pool = PrimePool(custody, 2, PoolSettings(size=0, bits=SMALL))
    from shardvault.crypto.rng import system_random

    primes = [generate_safe_prime(SMALL, system_random) for _ in range(3)]
    for prime in primes:
        pool._found.append(prime)  # what a worker hands back
    assert pool.seal_found() == 3
    assert pool.ready == 3
    pair = pool.take_pair()
    assert pair is not None
    assert {pair.p, pair.q} < set(primes)
    for address in custody.store.addresses():
        if address.key_id in pool._ready:
            continue
        # A taken address holds only its sealed "taken" marker.
        assert custody.store.revisions(address) == [2]
        with custody.load_share(address) as opened:
            assert opened.share.reveal() == POOL_TAKEN
    # A crash after the marker but before the delete: the prime is never handed out again.
    (left,) = pool._ready
    address = ShareAddress(POOL_WORKSPACE, POOL_VAULT, left, "2")
    with SecretBytes(POOL_TAKEN) as marker:
        custody.store_share(ShareSlot(address, 1), marker, 1)
    assert custody.store.revisions(address) == [1, 2]
    reopened = PrimePool(custody, 2, PoolSettings(size=0, bits=SMALL))
    assert reopened.ready == 0
    assert custody.store.revisions(address) == [2]
    assert reopened.take_pair() is None


def test_test_only_primes_fill_a_pool_marked_test_only_and_no_other(tmp_path: Path) -> None:
    custody = open_custody(tmp_path / "custody")
    pool = PrimePool(custody, 1, PoolSettings(size=4), test_only_primes=TEST_ONLY_PRIMES)
    pool.start()  # no search: a test-only pool copies the fixture
    assert pool.seal_found() == 4
    assert pool.status()["test_only"] is True
    assert all(a.key_id.startswith("test-only-") for a in custody.store.addresses())
    # A node without the flag ignores them, and takes none.
    real = PrimePool(custody, 1, PoolSettings(size=0))
    assert real.ready == 0
    assert real.take_pair() is None
    pair = pool.take_pair()
    assert pair is not None
    assert pair.test_only


def test_pool_settings_are_checked() -> None:
    for bad in (
        {"size": -1},
        {"size": 10_001},
        {"rate_per_min": 0},
        {"workers": 0},
        {"bits": 32},
    ):
        with pytest.raises(ValueError, match="prime"):
            PoolSettings(**bad)  # type: ignore[arg-type]


def test_cosigner_run_documents_and_checks_the_pool_flags(tmp_path: Path) -> None:
    runner = CliRunner()
    shown = runner.invoke(cosigner_cli, ["run", "--help"], terminal_width=200)
    assert shown.exit_code == 0
    for flag in ("--prime-pool-size", "--prime-pool-rate", "--prime-pool-workers"):
        assert flag in shown.output
    refused = runner.invoke(
        cosigner_cli,
        [
            *("run", "--id", "1", "--data-dir", str(tmp_path)),
            *("--coordinator", "http://127.0.0.1:9", "--prime-pool-size", "-1"),
        ],
    )
    assert refused.exit_code == 2
    assert "prime-pool-size" in refused.output


def _paillier_n(cluster: Cluster, party: int, key_id: str) -> int:
    share = cluster.nodes[party]._keys.load(VAULT, key_id)
    assert isinstance(share, KeyShare)
    return share.paillier_secret.public.n


def test_each_ecdsa_key_takes_its_own_primes_from_the_pool(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        pools = {}
        for party, node in cluster.nodes.items():
            pools[party] = PrimePool(
                node.state.custody, party, PoolSettings(size=4), test_only_primes=TEST_ONLY_PRIMES
            )
            node._prime_pool = pools[party]
        results = cluster.run(
            {"kind": "policy", "request_id": "p1", "bundles": [signed_bundle().to_json()]},
            [1, 2, 3],
        )
        assert {r["status"] for r in results.values()} == {"ok"}
        keys = []
        for n in range(2):
            body = dkg_request(scheme="ecdsa-secp256k1", key_id=f"ecdsa-{n}")
            body["aux_session_id"] = secrets.token_hex(32)
            results = cluster.run(body, [1, 2, 3])
            assert {r["status"] for r in results.values()} == {"ok"}, results
            assert {r["paillier_primes"] for r in results.values()} == {"test-only-pool"}
            assert all(r["test_only"] is True for r in results.values())
            keys.append(body["key_id"])
        moduli = {(p, k): _paillier_n(cluster, p, k) for p in (1, 2, 3) for k in keys}
        # Never shared: not between two keys of one party, nor between parties.
        assert len(set(moduli.values())) == 6
        # Each key took two primes: the pool refilled to its size after each.
        assert all(pool.status()["taken"] == 4 for pool in pools.values())
    finally:
        cluster.close()


def test_without_a_pool_or_with_an_empty_one_the_node_searches(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        state = cluster.nodes[1].state
        keys = NodeKeys(state, TEST_ONLY_PRIMES, PrimePool(state.custody, 1, PoolSettings(size=0)))
        # A real pool never feeds a test-only node: it falls back to the fixture.
        assert keys.paillier_key_and_source()[1] == "test-only-fixture"
    finally:
        cluster.close()
