"""Failover: a co-signer that stops answering mid-session does not stop signing.

The backend picks a quorum among the co-signers that answer; one that goes silent in a
session (paused, cut off) is detected once it has not been in touch for ``stall_after``
seconds, the session is aborted at every party and taken out of the queues, and another
quorum signs with a fresh session (and for ECDSA a fresh presignature): no presignature
is used twice and the silent co-signer, back later, starts nothing.
(tests/cli/test_remote_cosigners.py does the same with processes on their own network
namespaces, over TLS.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import coincurve
import pytest
from eth_hash.auto import keccak
from nacl.signing import VerifyKey

from shardvault.chains import ethereum
from shardvault.crypto.bip32 import ExtendedPublicKey
from shardvault.crypto.group import SECP256K1
from shardvault.service.cosigner_backend import CosignerBackend, QuorumUnavailable
from shardvault.service.signing import SignRequest
from tests.cosigner.support import (
    DESTINATION,
    LAMPORTS_PER_SOL,
    WORKSPACE,
    metadata,
    signed_bundle,
    solana_transfer,
)
from tests.service.cosigner_support import Nodes, solana_request
from tests.waiting import eventually

PATH = "m/44/60/0/0/1"
RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    cluster = Nodes(tmp_path)
    yield cluster
    cluster.close()


@pytest.fixture
def backend(nodes: Nodes) -> Iterator[CosignerBackend]:
    bundle = signed_bundle().to_json()
    signer = CosignerBackend(
        lambda _ws: nodes.relay, lambda _ws: [bundle], stall_after=0.5, sign_timeout=30.0
    )
    yield signer
    signer.close()


def _keygen(backend: CosignerBackend, scheme: str):  # type: ignore[no-untyped-def]
    return backend.keygen(
        workspace_id=WORKSPACE,
        vault_id="treasury",
        scheme=scheme,  # type: ignore[arg-type]
        min_signers=2,
        max_signers=3,
    )


def _solana(key, message: bytes, parties: tuple[int, ...] = ()) -> SignRequest:  # type: ignore[no-untyped-def]
    return solana_request(key, message, parties=parties)


def _history(nodes: Nodes) -> dict[int, int]:
    """How many signatures each co-signer recorded (its record of signed transactions)."""
    return {p: len(n.state.record.entries) for p, n in nodes.nodes.items()}


def test_a_silent_cosigner_mid_session_is_replaced_by_another_quorum(
    nodes: Nodes, backend: CosignerBackend
) -> None:
    key = _keygen(backend, "eddsa-ed25519")
    message = solana_transfer(key.public_key, DESTINATION, LAMPORTS_PER_SOL // 4)
    before = _history(nodes)
    # Co-signer 1 goes silent (as if paused) just before the request: it was in touch a
    # moment ago, so the first quorum is (1, 2).
    nodes.stop(1)
    started = time.monotonic()
    signature = backend.sign(_solana(key, message, (1, 2, 3)))
    VerifyKey(key.public_key).verify(message, signature)
    assert time.monotonic() - started < 10
    after = _history(nodes)
    # Party 2 joined the aborted session (whose records round never ended: nothing
    # recorded) and then the one that signed; it recorded one signature, as did party 3;
    # party 1 signed nothing.
    assert after == {1: before[1], 2: before[2] + 1, 3: before[3] + 1}
    assert eventually(lambda: not nodes.nodes[2]._active and not nodes.nodes[3]._active)
    # Back, co-signer 1 finds the request gone (only the abort of its session).
    back = time.time()
    nodes.start(1)
    assert eventually(lambda: (nodes.relay.last_contact(1) or 0) > back + 0.2)
    assert not nodes.nodes[1]._active
    assert _history(nodes)[1] == before[1]


def test_failover_signs_ecdsa_with_a_fresh_presignature_never_a_used_one(nodes: Nodes) -> None:
    bundle = signed_bundle().to_json()
    backend = CosignerBackend(
        lambda _ws: nodes.relay,
        lambda _ws: [bundle],
        # A co-signer computing its presigning round has no poll waiting; under CPU
        # contention one round can take longer than the FROST tests' 0.5 s.
        stall_after=2.0,
        presignature_pool=1,
        idle_before_presign=60.0,
    )
    key = _keygen(backend, "ecdsa-secp256k1")
    # One presignature ready for the quorum (1, 2).
    assert backend.fill_pool(WORKSPACE, "treasury", key.backend_key_id, PATH, 2, (1, 2, 3)) == 1
    (label,) = [label for labels in backend._pools.values() for label in labels]
    assert ("treasury", key.backend_key_id, label) in nodes.nodes[2]._presignatures
    nodes.stop(1)
    fees = ethereum.FeeParameters(30 * 10**9, 10**9, 21_000)
    tx = ethereum.native_transfer(chain_id=31337, nonce=0, to=RECIPIENT, amount="1", fees=fees)
    signature = backend.sign(
        SignRequest(
            workspace_id=WORKSPACE,
            vault_id="treasury",
            backend_key_id=key.backend_key_id,
            scheme="ecdsa-secp256k1",
            path=PATH,
            payload_kind="ethereum_transaction",
            payload=ethereum.encode_unsigned(tx),
            session="t",
            metadata=metadata(),
            min_signers=2,
            parties=(1, 2, 3),
        )
    )
    digest = bytes(keccak(ethereum.encode_unsigned(tx)))
    recovered = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
    root = ExtendedPublicKey(SECP256K1.decode_point(key.public_key), key.chain_code)
    assert recovered.format(compressed=True) == root.derive(PATH).public_key.to_bytes()
    # In the aborted session co-signer 2 waited for the silent co-signer 1's records,
    # so it never spent the pooled presignature (no share of it left); the pool will
    # never hand its label out again all the same.
    assert ("treasury", key.backend_key_id, label) in nodes.nodes[2]._presignatures
    assert all(label not in labels for labels in backend._pools.values())
    backend.close()


def test_too_few_answering_cosigners_is_a_clear_refusal(
    nodes: Nodes, backend: CosignerBackend
) -> None:
    key = _keygen(backend, "eddsa-ed25519")
    nodes.stop(1)
    nodes.stop(3)
    time.sleep(0.7)
    message = solana_transfer(key.public_key, DESTINATION, LAMPORTS_PER_SOL // 4)
    with pytest.raises(QuorumUnavailable) as refused:
        backend.sign(_solana(key, message))
    assert "co-signers [1, 3] are not answering" in str(refused.value)
