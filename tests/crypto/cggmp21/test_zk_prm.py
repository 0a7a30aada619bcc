"""Πprm, the ring-Pedersen parameter proof (CGGMP21 Figure 17): completeness, binding,
tampering, and parameters with ``s ∉ ⟨t⟩`` (CVE-2020-12118)."""

import dataclasses

import pytest

from shardvault.crypto.errors import EncodingError, VerificationError
from shardvault.crypto.paillier import PaillierSecretKey
from shardvault.crypto.ring_pedersen import RingPedersenParams, RingPedersenSecret
from shardvault.crypto.ring_pedersen import generate as generate_ring_pedersen
from shardvault.crypto.rng import system_random
from shardvault.crypto.zk import prm
from tests.crypto.cggmp21.conftest import make_seeded_rng

SID = bytes(range(1, 33))


@pytest.fixture(scope="module")
def ring(
    paillier_keys_2048: list[PaillierSecretKey],
) -> tuple[RingPedersenParams, RingPedersenSecret]:
    key = paillier_keys_2048[2]
    return generate_ring_pedersen(key.p, key.q, make_seeded_rng("prm"))


@pytest.fixture(scope="module")
def proof(ring: tuple[RingPedersenParams, RingPedersenSecret]) -> prm.PrmProof:
    params, secret = ring
    return prm.prove(params, secret, session_id=SID, prover=2, rng=system_random)


def test_honest_proof_verifies(
    ring: tuple[RingPedersenParams, RingPedersenSecret], proof: prm.PrmProof
) -> None:
    prm.verify(proof, ring[0], session_id=SID, prover=2)
    assert prm.PrmProof.from_bytes(proof.to_bytes()) == proof


@pytest.mark.parametrize(
    ("session", "prover", "context"),
    [(bytes(32), 2, b""), (SID, 1, b""), (SID, 2, b"x")],
    ids=["other-session", "other-prover", "other-context"],
)
def test_binding(
    ring: tuple[RingPedersenParams, RingPedersenSecret],
    proof: prm.PrmProof,
    session: bytes,
    prover: int,
    context: bytes,
) -> None:
    with pytest.raises(VerificationError):
        prm.verify(proof, ring[0], session_id=session, prover=prover, context=context)


@pytest.mark.parametrize("field", ["commitments", "responses"])
@pytest.mark.parametrize("index", [0, 77, prm.REPETITIONS - 1])
def test_tampered_proof_fails(
    ring: tuple[RingPedersenParams, RingPedersenSecret],
    proof: prm.PrmProof,
    field: str,
    index: int,
) -> None:
    values = list(getattr(proof, field))
    values[index] += 1
    with pytest.raises(VerificationError):
        prm.verify(
            dataclasses.replace(proof, **{field: tuple(values)}), ring[0], session_id=SID, prover=2
        )


def test_wrong_length_and_range(
    ring: tuple[RingPedersenParams, RingPedersenSecret], proof: prm.PrmProof
) -> None:
    n = ring[0].n
    for tampered in (
        dataclasses.replace(proof, commitments=proof.commitments[:-1]),
        dataclasses.replace(proof, responses=(n, *proof.responses[1:])),
        dataclasses.replace(proof, commitments=(0, *proof.commitments[1:])),
    ):
        with pytest.raises(VerificationError):
            prm.verify(tampered, ring[0], session_id=SID, prover=2)


def test_s_outside_subgroup_of_t_fails(
    ring: tuple[RingPedersenParams, RingPedersenSecret],
) -> None:
    """Parameters where s is not a power of t: -s is a non-residue, so s' = N - s is not in
    ⟨t⟩ ⊂ QR_N; a prover claiming the old λ cannot answer the e_i = 1 challenges."""
    params, secret = ring
    bad = RingPedersenParams(params.n, params.n - params.s, params.t)
    proof = prm.prove(bad, secret, session_id=SID, prover=2, rng=system_random)
    with pytest.raises(VerificationError, match="Πprm"):
        prm.verify(proof, bad, session_id=SID, prover=2)


def test_invalid_parameters_rejected_before_proof(
    ring: tuple[RingPedersenParams, RingPedersenSecret], proof: prm.PrmProof
) -> None:
    params, _ = ring
    with pytest.raises(VerificationError, match="base s"):
        prm.verify(proof, RingPedersenParams(params.n, 1, params.t), session_id=SID, prover=2)


def test_garbage_encoding_rejected(proof: prm.PrmProof) -> None:
    for bad in (b"", proof.to_bytes()[:-1], b"\xa1\x61x\x00"):
        with pytest.raises(EncodingError):
            prm.PrmProof.from_bytes(bad)


def test_prover_without_primes_matches(
    ring: tuple[RingPedersenParams, RingPedersenSecret],
) -> None:
    """The prover's plain path (no primes, no CRT) makes proofs that verify too."""
    params, secret = ring
    plain = RingPedersenSecret(secret.lambda_, secret.phi)
    proof = prm.prove(params, plain, session_id=SID, prover=2, rng=system_random)
    prm.verify(proof, params, session_id=SID, prover=2)
    assert str(secret.p) not in repr(secret)
