"""``attest_address``: each co-signer signs the address it derives itself, from the
public part of the key it holds (docs/cosigner.md, "Attested addresses").

Three in-process nodes hold a CGGMP21 key (TEST-ONLY primes) and two FROST keys. The
test plays the coordinator: an address it sends is refused, a path or encoding the
co-signer cannot derive is refused naming why, a flood is cut off by the rate budget,
and no share is opened to answer. Addresses are checked with eth-keys, python-bitcointx
and solders; signatures with PyNaCl.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shardvault.cosigner.link import Item
from shardvault.cosigner.state import open_node
from shardvault.custody.secret import SecretBytes
from tests.cosigner.ecdsa_cluster import ecdsa_cluster
from tests.cosigner.support import PASSPHRASE, POLICY, VAULT, dkg_request
from tests.cosigner.test_node import Cluster

NOT_YET = pytest.mark.xfail(strict=True, reason="co-signers do not attest addresses yet")

ECDSA_KEY = "eth-1"
PATH = "m/44/60/0/0/7"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with ecdsa_cluster(tmp_path_factory.mktemp("attest"), POLICY, ECDSA_KEY, PATH) as (nodes, _):
        for scheme, key_id in (("eddsa-ed25519", "sol-1"), ("schnorr-bip340", "btc-1")):
            results = nodes.run(dkg_request(scheme=scheme, key_id=key_id), [1, 2, 3])
            assert {r["status"] for r in results.values()} == {"ok"}, results
        yield nodes


def attest_request(
    key_id: str = ECDSA_KEY, path: str = PATH, encoding: str = "ethereum", **extra: Any
) -> dict[str, Any]:
    return {
        "kind": "attest_address",
        "request_id": f"attest-{secrets.token_hex(4)}",
        "vault": VAULT,
        "key_id": key_id,
        "path": path,
        "encoding": encoding,
        **extra,
    }


def refusals(results: dict[int, dict[str, Any]]) -> set[tuple[str, str | None]]:
    return {(r["status"], r.get("check")) for r in results.values()}


@NOT_YET
def test_an_address_the_coordinator_sends_is_refused(cluster: Cluster) -> None:
    """The co-signer never signs an address it is given: it answers with its own."""
    theirs = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
    results = cluster.run(attest_request(address=theirs), [1, 2, 3])
    assert refusals(results) == {("refused", "malformed")}
    assert all("takes no field address" in r["reason"] for r in results.values())
    answered = cluster.run(attest_request(), [1, 2, 3])
    assert refusals(answered) == {("ok", None)}
    addresses = {r["attestation"]["statement"]["address"] for r in answered.values()}
    assert len(addresses) == 1
    assert theirs not in addresses


@NOT_YET
@pytest.mark.parametrize(
    ("key_id", "path", "reason"),
    [
        (ECDSA_KEY, "m/44'/60'/0'/0/7", "hardened"),
        (ECDSA_KEY, "m/44/60/0/0/07", "not in canonical form"),
        (ECDSA_KEY, "m/2147483648", "hardened index"),
        (ECDSA_KEY, "/".join(["m"] + ["0"] * 17), "deeper than 16 steps"),
        ("sol-1", "m/0", "at the root (m) only"),
    ],
)
def test_a_path_the_cosigner_cannot_derive_is_refused(
    cluster: Cluster, key_id: str, path: str, reason: str
) -> None:
    encoding = "solana" if key_id == "sol-1" else "ethereum"
    results = cluster.run(attest_request(key_id, path, encoding), [1, 2, 3])
    assert refusals(results) == {("refused", "derivation")}
    assert all(reason in r["reason"] for r in results.values()), results


@NOT_YET
@pytest.mark.parametrize(
    ("key_id", "encoding", "check", "reason"),
    [
        (ECDSA_KEY, "solana", "key", "needs eddsa-ed25519"),
        ("sol-1", "ethereum", "key", "needs ecdsa-secp256k1"),
        ("btc-1", "bitcoin-p2wpkh:regtest", "key", "needs ecdsa-secp256k1"),
        (ECDSA_KEY, "dogecoin", "derivation", "unknown address encoding"),
        ("no-such-key", "ethereum", "key", "no share of key 'no-such-key'"),
    ],
)
def test_a_key_or_encoding_it_cannot_attest_is_refused(
    cluster: Cluster, key_id: str, encoding: str, check: str, reason: str
) -> None:
    path = PATH if key_id in (ECDSA_KEY, "no-such-key") else "m"
    results = cluster.run(attest_request(key_id, path, encoding), [1, 2, 3])
    assert refusals(results) == {("refused", check)}
    assert all(reason in r["reason"] for r in results.values()), results


@NOT_YET
def test_a_flood_of_attestations_is_cut_off(cluster: Cluster) -> None:
    """At most ATTEST_BURST at once: a coordinator cannot fill the node's loop."""
    from shardvault.cosigner.attest import ATTEST_BURST

    node = cluster.nodes[2]
    now = [1_000_000.0]
    node._clock = lambda: now[0]
    try:
        flood = [Item(request=attest_request()) for _ in range(ATTEST_BURST + 5)]
        results = node.handle(flood).results
        statuses = [r["status"] for r in results]
        assert statuses.count("ok") == ATTEST_BURST
        refused = [r for r in results if r["status"] == "refused"]
        assert len(refused) == 5
        assert {r["check"] for r in refused} == {"rate"}
        now[0] += 1.0  # the budget refills
        assert node.handle([Item(request=attest_request())]).results[0]["status"] == "ok"
    finally:
        node._clock = time.time


@NOT_YET
def test_attesting_opens_no_share(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    for node in cluster.nodes.values():

        def refuse(*_args: object) -> None:
            raise AssertionError("an attestation opened a share")

        monkeypatch.setattr(node.state.custody, "load_share", refuse)
    for key_id, path, encoding in (
        (ECDSA_KEY, PATH, "ethereum"),
        ("sol-1", "m", "solana"),
        ("btc-1", "m", "bitcoin-p2tr:regtest"),
    ):
        results = cluster.run(attest_request(key_id, path, encoding), [1, 2, 3])
        assert refusals(results) == {("ok", None)}, results


@NOT_YET
def test_a_changed_public_key_record_refuses_the_start(cluster: Cluster, tmp_path: Path) -> None:
    """Someone who can write the data directory puts another chain code (another
    key's addresses) in the public key record: the node does not start."""
    from shardvault.cosigner.errors import ConfigurationError

    data_dir = cluster.nodes[3].state.data_dir
    record = data_dir / "public_keys.jsonl"
    original = record.read_bytes()
    first, _, rest = original.partition(b"\n")
    document = json.loads(first)
    document["chain_code"] = "ff" * 32
    changed = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    try:
        record.write_bytes(changed + b"\n" + rest)
        with (
            SecretBytes(PASSPHRASE.encode()) as passphrase,
            pytest.raises(ConfigurationError, match=r"public_keys\.jsonl line 1"),
        ):
            open_node(data_dir, passphrase).close()
    finally:
        record.write_bytes(original)
