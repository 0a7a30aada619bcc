"""The co-signer signing backend against three co-signer nodes (threads, in-memory link).

The nodes are the real :class:`~shardvault.cosigner.node.CosignerNode` with their own
share stores; only the HTTP hop is left out (tests/cli/test_server_pipeline.py runs the
same backend with co-signer processes). Signatures are checked with PyNaCl (Ed25519) and
coincurve's public-key recovery (secp256k1); each refusal names the co-signer and its
check, and leaves no session open on any node.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import coincurve
import pytest
from eth_hash.auto import keccak
from nacl.signing import VerifyKey

from shardvault.chains import ethereum
from shardvault.cosigner.relay_core import RelayCore
from shardvault.crypto.bip32 import ExtendedPublicKey
from shardvault.crypto.group import SECP256K1
from shardvault.service.cosigner_backend import CosignerBackend, CosignerRefused
from shardvault.service.errors import Conflict
from shardvault.service.signing import KEYGEN_ROUNDS, GeneratedKey, NoActivePolicy, SignRequest
from tests.cosigner.support import (
    DESTINATION,
    LAMPORTS_PER_SOL,
    POLICY,
    WORKSPACE,
    metadata,
    signed_bundle,
    solana_transfer,
)
from tests.service.cosigner_support import Nodes
from tests.service.cosigner_support import solana_request as _solana_request
from tests.waiting import eventually

PATH = "m/44/60/0/0/3"
RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    cluster = Nodes(tmp_path_factory.mktemp("backend-nodes"))
    yield cluster
    cluster.close()


def _backend(nodes: Nodes, policy=POLICY, **kwargs) -> CosignerBackend:  # type: ignore[no-untyped-def]
    bundle = signed_bundle(policy=policy).to_json()
    return CosignerBackend(lambda _ws: nodes.relay, lambda _ws: [bundle], **kwargs)


@pytest.fixture(scope="module")
def backend(nodes: Nodes) -> Iterator[CosignerBackend]:
    signer = _backend(nodes, presignature_pool=2, idle_before_presign=0.0)
    yield signer
    signer.close()


@pytest.fixture(scope="module")
def ecdsa_key(backend: CosignerBackend) -> object:
    return backend.keygen(
        workspace_id=WORKSPACE,
        vault_id="treasury",
        scheme="ecdsa-secp256k1",
        min_signers=2,
        max_signers=3,
        initiator="alice",
    )


def _ed25519_key(signer: CosignerBackend) -> GeneratedKey:
    """A 2-of-3 FROST key of the test workspace's treasury vault."""
    return signer.keygen(
        workspace_id=WORKSPACE,
        vault_id="treasury",
        scheme="eddsa-ed25519",
        min_signers=2,
        max_signers=3,
    )


def test_policy_is_pushed_and_frost_signature_verifies(nodes: Nodes, backend: CosignerBackend):
    key = _ed25519_key(backend)
    # The co-signers started without a policy; the backend pushed the signed bundle.
    assert {n.state.chain.head.version for n in nodes.nodes.values()} == {1}  # type: ignore[union-attr]
    assert key.cosigners == ("party-1", "party-2", "party-3")
    message = solana_transfer(key.public_key, DESTINATION, LAMPORTS_PER_SOL // 2)
    signature = backend.sign(_solana_request(key, message))
    VerifyKey(key.public_key).verify(message, signature)
    # (The background presignature filler of earlier tests may still be at work.)
    assert eventually(nodes.idle)


def test_refusal_names_cosigners_check_and_rule(nodes: Nodes, backend: CosignerBackend):
    key = _ed25519_key(backend)
    # Two SOL need carol's approval; none is given.
    message = solana_transfer(key.public_key, DESTINATION, 2 * LAMPORTS_PER_SOL)
    with pytest.raises(CosignerRefused) as refused:
        backend.sign(_solana_request(key, message))
    text = str(refused.value)
    # The backend stops at the first refusal (the session cannot succeed); whichever
    # co-signer answered first is named with its check and the deciding rule.
    assert "refused check=policy rule=sol-needs-approval" in text
    assert text.startswith("signing refused: co-signer")
    assert eventually(nodes.idle)


def _eth_request(key, tx, **overrides) -> SignRequest:  # type: ignore[no-untyped-def]
    fields = {
        "workspace_id": WORKSPACE,
        "vault_id": "treasury",
        "backend_key_id": key.backend_key_id,
        "scheme": "ecdsa-secp256k1",
        "path": PATH,
        "payload_kind": "ethereum_transaction",
        "payload": ethereum.encode_unsigned(tx),
        "session": "test",
        "metadata": metadata(),
        "min_signers": 2,
    }
    fields.update(overrides)
    return SignRequest(**fields)  # type: ignore[arg-type]


def _transfer(nonce: int) -> object:
    fees = ethereum.FeeParameters(30 * 10**9, 10**9, 21_000)
    return ethereum.native_transfer(
        chain_id=31337, nonce=nonce, to=RECIPIENT, amount="1", fees=fees
    )


def _derived_point(key) -> bytes:  # type: ignore[no-untyped-def]
    root = ExtendedPublicKey(SECP256K1.decode_point(key.public_key), key.chain_code)
    return root.derive(PATH).public_key.to_bytes()


def _recovered(signature: bytes, digest: bytes) -> bytes:
    return coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None).format(
        compressed=True
    )


def test_ecdsa_signatures_come_from_the_pool(nodes: Nodes, backend: CosignerBackend, ecdsa_key):
    key = ecdsa_key
    assert key.test_only  # made from the published TEST-ONLY primes, and marked so
    # (Another test may have filled part of the pool already.)
    backend.fill_pool(WORKSPACE, "treasury", key.backend_key_id, PATH, 2)
    assert backend.pooled(WORKSPACE, "treasury", key.backend_key_id, PATH) == 2
    assert backend.fill_pool(WORKSPACE, "treasury", key.backend_key_id, PATH, 2) == 0
    labels = [
        label
        for pool_key, pooled in backend._pools.items()
        if (pool_key.key_id, pool_key.path) == (key.backend_key_id, PATH)
        for label in pooled
    ]
    assert len(labels) == 2
    # The pool holds labels only; each signing co-signer holds the presignature itself.
    for party in (1, 2):
        assert all(
            ("treasury", key.backend_key_id, x) in nodes.nodes[party]._presignatures for x in labels
        )
    assert not any(k[2] in labels for k in nodes.nodes[3]._presignatures)
    tx = _transfer(0)
    signature = backend.sign(_eth_request(key, tx))
    assert len(signature) == 65
    digest = bytes(keccak(ethereum.encode_unsigned(tx)))
    assert _recovered(signature, digest) == _derived_point(key)
    # The oldest presignature was used and deleted by both co-signers; the pool refills.
    for party in (1, 2):
        assert ("treasury", key.backend_key_id, labels[0]) not in nodes.nodes[party]._presignatures
    assert eventually(lambda: backend.pooled(WORKSPACE, "treasury", key.backend_key_id, PATH) == 2)


def test_a_key_from_a_prepared_aux_set_signs_and_a_lost_set_falls_back(nodes: Nodes):
    signer = _backend(nodes, aux_sets=1, aux_idle=0.0)
    parties = [1, 2, 3]
    try:
        signer.aux_sets.want(WORKSPACE, parties)
        assert eventually(lambda: signer.aux_sets.ready(WORKSPACE, parties) == 1, timeout=120)
        (label,) = signer.aux_sets._labels[next(iter(signer.aux_sets._labels))]
        assert all(label in node.aux_pool.held(parties) for node in nodes.nodes.values())
        # The filler stops at its target: no second set while one is ready.
        assert signer.aux_sets.status(WORKSPACE)["sets"] == {"1.2.3": {"ready": 1, "making": 0}}
        key = signer.keygen(
            workspace_id=WORKSPACE,
            vault_id="treasury",
            scheme="ecdsa-secp256k1",
            min_signers=2,
            max_signers=3,
        )
        # Every co-signer took the set (gone from its custody) for this key.
        assert all(label not in node.aux_pool.held(parties) for node in nodes.nodes.values())
        tx = _transfer(9)
        signature = signer.sign(_eth_request(key, tx))
        digest = bytes(keccak(ethereum.encode_unsigned(tx)))
        assert _recovered(signature, digest) == _derived_point(key)
        # A set the co-signers no longer hold: the key makes its own aux info instead.
        assert eventually(lambda: signer.aux_sets.ready(WORKSPACE, parties) == 1, timeout=120)
        with signer.aux_sets._lock:
            for labels in signer.aux_sets._labels.values():
                labels[:] = ["ab" * 16]
        again = signer.keygen(
            workspace_id=WORKSPACE,
            vault_id="treasury",
            scheme="ecdsa-secp256k1",
            min_signers=2,
            max_signers=3,
        )
        assert again.public_key != key.public_key
        assert eventually(nodes.idle)
    finally:
        signer.close()


def test_concurrent_fills_never_overfill_the_pool(backend: CosignerBackend, ecdsa_key):
    """An explicit fill racing the background filler (or another fill) stops at the
    pool's size: presignatures being made count as stock."""
    path = "m/44/60/0/0/9"
    fills = [
        threading.Thread(
            target=backend.fill_pool,
            args=(WORKSPACE, "treasury", ecdsa_key.backend_key_id, path, 2),
        )
        for _ in range(3)
    ]
    for thread in fills:
        thread.start()
    for thread in fills:
        thread.join(60)
    assert backend.pooled(WORKSPACE, "treasury", ecdsa_key.backend_key_id, path) == 2


def test_lost_presignatures_are_replaced(nodes: Nodes, backend: CosignerBackend, ecdsa_key):
    key = ecdsa_key
    backend.fill_pool(WORKSPACE, "treasury", key.backend_key_id, PATH, 2)
    # Co-signer 1 restarted: every presignature it held is gone.
    nodes.nodes[1]._presignatures.clear()
    tx = _transfer(1)
    signature = backend.sign(_eth_request(key, tx))
    digest = bytes(keccak(ethereum.encode_unsigned(tx)))
    assert _recovered(signature, digest) == _derived_point(key)


def test_sign_many_queues_every_round_before_waiting(
    nodes: Nodes, backend: CosignerBackend, ecdsa_key
):
    """A burst: the pooled rounds go to the co-signers together; a request beyond the
    pool presigns on its own afterwards; a refused request fails alone, named."""
    key = ecdsa_key
    backend.fill_pool(WORKSPACE, "treasury", key.backend_key_id, PATH, 2)
    assert backend.pooled(WORKSPACE, "treasury", key.backend_key_id, PATH) == 2
    txs = [_transfer(10 + i) for i in range(4)]
    bad = {**metadata(), "source": {"vault": "another-vault"}}
    requests = [
        _eth_request(key, txs[0]),
        _eth_request(key, txs[1], metadata=bad),
        _eth_request(key, txs[2]),
        _eth_request(key, txs[3]),
    ]
    answers = backend.sign_many(requests)
    assert len(answers) == 4
    refused = answers[1]
    assert isinstance(refused, CosignerRefused)
    assert "check=malformed" in str(refused)
    for index in (0, 2, 3):
        signature = answers[index]
        assert isinstance(signature, bytes), signature
        digest = bytes(keccak(ethereum.encode_unsigned(txs[index])))
        assert _recovered(signature, digest) == _derived_point(key)
    assert eventually(nodes.idle)


def test_sign_many_replaces_presignatures_a_restart_lost(
    nodes: Nodes, backend: CosignerBackend, ecdsa_key
):
    key = ecdsa_key
    backend.fill_pool(WORKSPACE, "treasury", key.backend_key_id, PATH, 2)
    nodes.nodes[2]._presignatures.clear()
    txs = [_transfer(20 + i) for i in range(2)]
    answers = backend.sign_many([_eth_request(key, tx) for tx in txs])
    for tx, signature in zip(txs, answers, strict=True):
        assert isinstance(signature, bytes), signature
        digest = bytes(keccak(ethereum.encode_unsigned(tx)))
        assert _recovered(signature, digest) == _derived_point(key)
    assert eventually(nodes.idle)


def test_changed_payload_digest_claim_is_refused(nodes: Nodes, backend: CosignerBackend, ecdsa_key):
    """A coordinator that claims another source vault than the key's gets no signature."""
    meta = {**metadata(), "source": {"vault": "another-vault"}}
    with pytest.raises(CosignerRefused) as refused:
        backend.sign(_eth_request(ecdsa_key, _transfer(2), metadata=meta))
    assert "check=malformed" in str(refused.value)
    assert eventually(nodes.idle)


def test_missing_cosigner_fails_keygen_and_aborts(tmp_path: Path):
    cluster = Nodes(tmp_path)
    try:
        cluster.stop(3)
        signer = _backend(cluster, keygen_timeout=2.0, sign_timeout=5.0)
        # The policy reaches parties 1 and 2 only; the probe of party 3 gets no answer.
        with pytest.raises(CosignerRefused) as refused:
            _ed25519_key(signer)
        assert "co-signer 3: no answer" in str(refused.value)
        cluster.start(3)
        signer = _backend(cluster, keygen_timeout=2.0)
        signer.keygen(  # all three answer: the policy is pushed everywhere
            workspace_id=WORKSPACE,
            vault_id="treasury",
            scheme="eddsa-ed25519",
            min_signers=2,
            max_signers=3,
        )
        cluster.stop(3)
        with pytest.raises(CosignerRefused) as refused:
            _ed25519_key(signer)
        assert "key generation failed" in str(refused.value)
        assert "co-signer 3: no answer" in str(refused.value)
        # Parties 1 and 2 were told to abort: nothing waits for party 3.
        assert eventually(lambda: not cluster.nodes[1]._active and not cluster.nodes[2]._active)
    finally:
        cluster.close()


def test_keygen_without_a_policy_rule_allowing_it_is_refused(tmp_path: Path):
    cluster = Nodes(tmp_path)
    try:
        no_keygen = {**POLICY, "rules": [r for r in POLICY["rules"] if r["name"] != "keygen"]}  # type: ignore[attr-defined]
        signer = _backend(cluster, policy=no_keygen)
        with pytest.raises(CosignerRefused) as refused:
            signer.keygen(
                workspace_id=WORKSPACE,
                vault_id="treasury",
                scheme="schnorr-bip340",
                min_signers=2,
                max_signers=3,
            )
        assert "refused check=policy" in str(refused.value)
        assert eventually(cluster.idle)
    finally:
        cluster.close()


def test_wrong_party_count_is_refused_before_any_request(nodes: Nodes, backend: CosignerBackend):
    with pytest.raises(Exception, match="3 co-signers"):
        backend.keygen(
            workspace_id=WORKSPACE,
            vault_id="treasury",
            scheme="eddsa-ed25519",
            min_signers=2,
            max_signers=5,
        )


def test_no_active_policy_is_refused(nodes: Nodes):
    # A key generation before the first policy is a missing step (409 at the API),
    # refused before any co-signer is asked (or, embedded, created).
    asked: list[str] = []

    def relay(workspace: str) -> RelayCore:
        asked.append(workspace)
        return nodes.relay

    signer = CosignerBackend(relay, lambda _ws: [])
    with pytest.raises(NoActivePolicy, match="shardvault policy apply") as refused:
        _ed25519_key(signer)
    assert isinstance(refused.value, Conflict)
    assert asked == []


def test_source_hash_is_not_leaked_in_errors(nodes: Nodes, backend: CosignerBackend):
    """Errors name co-signers and checks, never a payload or key material."""
    payload = hashlib.sha256(b"not a transaction").digest() * 4
    key = _ed25519_key(backend)
    with pytest.raises(CosignerRefused) as refused:
        backend.sign(_solana_request(key, payload))
    assert payload.hex() not in str(refused.value)
    assert "check=payload" in str(refused.value)


def test_bundles_are_read_only_when_the_active_version_changed(nodes: Nodes):
    """With a version lookup, a signature costs one cheap read; the bundles are read
    (and pushed) only for a version the co-signers have not been given."""
    reads: list[str] = []
    bundle = signed_bundle().to_json()

    def chain(workspace: str) -> list[dict[str, object]]:
        reads.append(workspace)
        return [bundle]

    signer = CosignerBackend(lambda _ws: nodes.relay, chain, policy_version=lambda _ws: 1)
    for _ in range(2):
        _ed25519_key(signer)
    assert reads == [WORKSPACE]  # the first call pushed version 1; the second only asked
    assert {n.state.chain.head.version for n in nodes.nodes.values()} == {1}  # type: ignore[union-attr]


def test_a_batch_of_signatures_asks_for_the_active_version_once(nodes: Nodes):
    """sign_many checks the workspace's policy once for all its signatures, not once
    per signature (each check is a database read on the server)."""
    asked: list[str] = []

    def version(workspace: str) -> int:
        asked.append(workspace)
        return 1

    bundle = signed_bundle().to_json()
    signer = CosignerBackend(lambda _ws: nodes.relay, lambda _ws: [bundle], policy_version=version)
    try:
        key = _ed25519_key(signer)
        asked.clear()
        messages = [
            solana_transfer(key.public_key, DESTINATION, LAMPORTS_PER_SOL // (10 + i))
            for i in range(3)
        ]
        answers = signer.sign_many([_solana_request(key, m) for m in messages])
        for message, signature in zip(messages, answers, strict=True):
            assert isinstance(signature, bytes), signature
            VerifyKey(key.public_key).verify(message, signature)
        assert asked == [WORKSPACE]
    finally:
        signer.close()
    assert eventually(nodes.idle)


@pytest.mark.parametrize(("scheme", "rounds"), [("ecdsa-secp256k1", 8), ("eddsa-ed25519", 3)])
def test_keygen_reports_its_rounds_and_results_as_progress(
    nodes: Nodes, backend: CosignerBackend, scheme, rounds
):
    """A step per round each co-signer sent (as the relay routed it) and per result:
    the count the protocols really make, so a progress bar ends exactly full."""
    reports: list[tuple[int, int]] = []
    key = backend.keygen(
        workspace_id=WORKSPACE,
        vault_id="progress",
        scheme=scheme,
        min_signers=2,
        max_signers=3,
        progress=lambda done, total: reports.append((done, total)),
    )
    total = 3 * (rounds + 1)
    assert KEYGEN_ROUNDS[scheme] == rounds
    assert reports[-1] == (total, total)
    assert all(t == total for _, t in reports)
    assert [d for d, _ in reports] == sorted({d for d, _ in reports})  # each step once, rising
    if scheme == "ecdsa-secp256k1":  # long enough (a second or more) to be seen midway
        assert any(0 < d < total for d, _ in reports)
    # The relay forgot the key generation's sessions once their results were read.
    assert nodes.relay.rounds_routed(f"dkg-{key.backend_key_id}") == 0
    assert f"dkg-{key.backend_key_id}" not in nodes.relay._request_sessions
