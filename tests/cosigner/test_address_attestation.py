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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import VerifyKey

from shardvault.cosigner.attest import ATTEST_BURST
from shardvault.cosigner.errors import ConfigurationError
from shardvault.cosigner.link import Item
from shardvault.cosigner.node import CosignerNode
from shardvault.cosigner.state import open_node
from shardvault.custody.secret import SecretBytes
from tests.cosigner.attest_support import (
    attestation_request,
    independent_address,
    verify_statement_signature,
)
from tests.cosigner.ecdsa_cluster import ecdsa_cluster
from tests.cosigner.support import (
    DESTINATION,
    LAMPORTS_PER_SOL,
    PASSPHRASE,
    POLICY,
    VAULT,
    WORKSPACE,
    dkg_request,
    sign_request,
    solana_transfer,
)
from tests.cosigner.test_node import Cluster

ECDSA_KEY = "eth-1"
PATH = "m/44/60/0/0/7"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with ecdsa_cluster(tmp_path_factory.mktemp("attest"), POLICY, ECDSA_KEY, PATH) as (
        nodes,
        derived,
    ):
        nodes.derived_key = derived  # type: ignore[attr-defined]
        for scheme, key_id in (("eddsa-ed25519", "sol-1"), ("schnorr-bip340", "btc-1")):
            results = nodes.run(dkg_request(scheme=scheme, key_id=key_id), [1, 2, 3])
            assert {r["status"] for r in results.values()} == {"ok"}, results
        yield nodes


def attest_request(
    key_id: str = ECDSA_KEY, path: str = PATH, encoding: str = "ethereum", **extra: Any
) -> dict[str, Any]:
    return attestation_request(key_id, path, encoding, **extra)


def refusals(results: dict[int, dict[str, Any]]) -> set[tuple[str, str | None]]:
    return {(r["status"], r.get("check")) for r in results.values()}


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


def test_a_flood_of_attestations_is_cut_off(cluster: Cluster) -> None:
    """At most ATTEST_BURST at once: a coordinator cannot fill the node's loop."""
    node = cluster.nodes[2]
    # An hour on: the budget the earlier tests spent is full again.
    now = [time.time() + 3600.0]
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


def test_a_changed_public_key_record_refuses_the_start(cluster: Cluster, tmp_path: Path) -> None:
    """Someone who can write the data directory puts another chain code (another
    key's addresses) in the public key record: the node does not start."""
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


@pytest.mark.parametrize(
    ("key_id", "path", "encoding"),
    [
        (ECDSA_KEY, PATH, "ethereum"),
        (ECDSA_KEY, "m/44/0/3/0/1", "bitcoin-p2wpkh:regtest"),
        ("sol-1", "m", "solana"),
        ("btc-1", "m", "bitcoin-p2tr:regtest"),
    ],
)
def test_each_cosigner_signs_the_address_it_derives(
    cluster: Cluster, key_id: str, path: str, encoding: str
) -> None:
    results = cluster.run(attest_request(key_id, path, encoding), [1, 2, 3])
    assert refusals(results) == {("ok", None)}, results
    addresses = set()
    for party, result in results.items():
        attestation = result["attestation"]
        statement = attestation["statement"]
        identity = cluster.nodes[party].state.identity.public
        verify_statement_signature(attestation, identity.signing_key)
        assert attestation["fingerprint"] == identity.fingerprint()
        assert (statement["party"], statement["workspace"]) == (party, WORKSPACE)
        assert (statement["vault"], statement["key_id"], statement["path"]) == (VAULT, key_id, path)
        assert (statement["min_signers"], statement["max_signers"]) == (2, 3)
        public_key = bytes.fromhex(statement["public_key"])
        assert statement["address"] == independent_address(encoding, public_key)
        addresses.add(statement["address"])
    assert len(addresses) == 1
    if key_id == ECDSA_KEY and path == PATH:
        assert addresses == {independent_address("ethereum", cluster.derived_key)}


def test_an_attestation_is_answered_while_a_session_runs(cluster: Cluster) -> None:
    """The node's loop is one thread: the attestation is answered between the rounds
    of a signing session, which then completes."""
    sol_key = bytes.fromhex(
        cluster.run(attest_request("sol-1", "m", "solana"), [1])[1]["attestation"]["statement"][
            "public_key"
        ]
    )
    message = solana_transfer(sol_key, DESTINATION, LAMPORTS_PER_SOL // 10)
    signing = sign_request(message, (1, 2))
    cluster.core.submit(signing, [1, 2])
    cluster.nodes[1].step(0.0)  # party 1 opens the session and sends its commitments
    assert cluster.nodes[1]._active
    attesting = attest_request()
    cluster.core.submit(attesting, [1])
    cluster.nodes[1].step(0.0)
    assert cluster.core.results(attesting["request_id"])[1]["status"] == "ok"
    assert cluster.nodes[1]._active, "the session was still running"
    cluster.pump()
    signed = cluster.core.results(signing["request_id"])
    assert {r["status"] for r in signed.values()} == {"ok"}, signed
    VerifyKey(sol_key).verify(message, bytes.fromhex(signed[1]["signature"]))


def test_a_key_of_an_earlier_release_is_opened_once_to_record_its_public_part(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data directory without public key records (written before this release): the
    first attestation opens the share once and records the public part; the next ones
    open nothing."""
    node = cluster.nodes[1]
    data_dir = node.state.data_dir
    record = data_dir / "public_keys.jsonl"
    original = record.read_bytes()
    record.unlink()
    try:
        with SecretBytes(PASSPHRASE.encode()) as passphrase:
            state = open_node(data_dir, passphrase)
        assert state.public_keys.get(VAULT, ECDSA_KEY) is None
        opened = []
        load_share = state.custody.load_share

        def counting(address: Any) -> Any:
            opened.append(address.key_id)
            return load_share(address)

        monkeypatch.setattr(state.custody, "load_share", counting)
        fresh = CosignerNode(state, node.link)
        for _ in range(3):
            out = fresh.handle([Item(request=attest_request())])
            assert out.results[0]["status"] == "ok", out.results
        assert opened == [ECDSA_KEY]
        assert state.public_keys.get(VAULT, ECDSA_KEY) is not None
        state.close()
        with SecretBytes(PASSPHRASE.encode()) as passphrase:
            reopened = open_node(data_dir, passphrase)
        assert reopened.public_keys.get(VAULT, ECDSA_KEY) == state.public_keys.get(VAULT, ECDSA_KEY)
        reopened.close()
    finally:
        record.write_bytes(original)
