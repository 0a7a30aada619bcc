"""Πfac, the no-small-factor proof (CGGMP21 Figure 28): completeness, binding to the
verifier's ring-Pedersen parameters, tampering, range checks, and a modulus with a small
factor (Alpha-Rays / BitForge)."""

import dataclasses
from typing import Any

import gmpy2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardvault.crypto._sampling import random_below
from shardvault.crypto.errors import EncodingError, VerificationError
from shardvault.crypto.paillier import PaillierSecretKey
from shardvault.crypto.ring_pedersen import RingPedersenParams
from shardvault.crypto.ring_pedersen import generate as generate_ring_pedersen
from shardvault.crypto.rng import system_random
from shardvault.crypto.zk import fac
from tests.crypto.cggmp21.conftest import make_seeded_rng

SID = bytes(range(2, 34))


@pytest.fixture(scope="module")
def prover_key(paillier_keys_2048: list[PaillierSecretKey]) -> PaillierSecretKey:
    return paillier_keys_2048[3]


@pytest.fixture(scope="module")
def setup(paillier_keys_2048: list[PaillierSecretKey]) -> RingPedersenParams:
    key = paillier_keys_2048[4]
    return generate_ring_pedersen(key.p, key.q, make_seeded_rng("fac-verifier"))[0]


@pytest.fixture(scope="module")
def proof(prover_key: PaillierSecretKey, setup: RingPedersenParams) -> fac.FacProof:
    return fac.prove(prover_key, setup, session_id=SID, prover=5, rng=system_random)


def test_honest_proof_verifies(
    prover_key: PaillierSecretKey, setup: RingPedersenParams, proof: fac.FacProof
) -> None:
    fac.verify(proof, prover_key.n, setup, session_id=SID, prover=5)
    assert fac.FacProof.from_bytes(proof.to_bytes()) == proof


def test_honest_proof_at_3072_bits(paillier_keys_3072: list[PaillierSecretKey]) -> None:
    key, verifier = paillier_keys_3072[0], paillier_keys_3072[1]
    params = generate_ring_pedersen(verifier.p, verifier.q, system_random)[0]
    proof = fac.prove(key, params, session_id=SID, prover=1, rng=system_random)
    fac.verify(proof, key.n, params, session_id=SID, prover=1)


@pytest.mark.parametrize(
    ("session", "prover", "context"),
    [(bytes(32), 5, b""), (SID, 6, b""), (SID, 5, b"x")],
    ids=["other-session", "other-prover", "other-context"],
)
def test_binding(
    prover_key: PaillierSecretKey,
    setup: RingPedersenParams,
    proof: fac.FacProof,
    session: bytes,
    prover: int,
    context: bytes,
) -> None:
    with pytest.raises(VerificationError):
        fac.verify(proof, prover_key.n, setup, session_id=session, prover=prover, context=context)


def test_proof_against_other_parameters_fails(
    prover_key: PaillierSecretKey, proof: fac.FacProof, paillier_keys_2048: list[PaillierSecretKey]
) -> None:
    """Πfac is made for one verifier's (N̂, s, t); another verifier rejects it."""
    other = paillier_keys_2048[5]
    params = generate_ring_pedersen(other.p, other.q, system_random)[0]
    with pytest.raises(VerificationError):
        fac.verify(proof, prover_key.n, params, session_id=SID, prover=5)


@pytest.mark.parametrize("field", ["P", "Q", "A", "B", "T", "sigma", "z1", "z2", "w1", "w2", "v"])
def test_tampered_proof_fails(
    prover_key: PaillierSecretKey, setup: RingPedersenParams, proof: fac.FacProof, field: str
) -> None:
    tampered = dataclasses.replace(proof, **{field: getattr(proof, field) + 1})
    with pytest.raises(VerificationError):
        fac.verify(tampered, prover_key.n, setup, session_id=SID, prover=5)


@pytest.mark.parametrize(
    ("field", "match"),
    [
        ("z1", "z1 or z2"),
        ("z2", "z1 or z2"),
        ("sigma", "sigma"),
        ("w1", "w1 or w2"),
        ("v", "v is out"),
        ("P", "not in Z"),
    ],
)
def test_out_of_range_values_fail(
    prover_key: PaillierSecretKey,
    setup: RingPedersenParams,
    proof: fac.FacProof,
    field: str,
    match: str,
) -> None:
    huge = {"P": setup.n, "T": 0}.get(field, (prover_key.n * setup.n) << 2000)
    tampered = dataclasses.replace(proof, **{field: huge})
    with pytest.raises(VerificationError, match=match):
        fac.verify(tampered, prover_key.n, setup, session_id=SID, prover=5)


def test_small_factor_modulus_fails(setup: RingPedersenParams) -> None:
    """N0 = p·q with a 300-bit p and a 1748-bit q (a 2048-bit, Blum modulus): the prover's
    algorithm cannot keep z2 = β + e·q inside ±√N0·2^(ℓ+ε), so the proof is rejected."""
    rng = make_seeded_rng("small-factor")

    def blum_prime(bits: int) -> int:
        while True:
            c = gmpy2.next_prime(random_below(1 << bits, rng) | (3 << (bits - 2)))
            if c % 4 == 3 and c.bit_length() == bits:
                return int(c)

    p, q = blum_prime(300), blum_prime(1748)
    assert (p * q).bit_length() == 2048
    bad_key = PaillierSecretKey(p, q)  # the raw constructor checks nothing: test-only
    proof = fac.prove(bad_key, setup, session_id=SID, prover=7, rng=system_random)
    with pytest.raises(VerificationError, match="z1 or z2"):
        fac.verify(proof, p * q, setup, session_id=SID, prover=7)


def test_garbage_encoding_rejected(proof: fac.FacProof) -> None:
    for bad in (b"", proof.to_bytes()[:-1], b"\xa0"):
        with pytest.raises(EncodingError):
            fac.FacProof.from_bytes(bad)


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_any_mutated_byte_is_rejected(
    prover_key: PaillierSecretKey, setup: RingPedersenParams, proof: fac.FacProof, data: Any
) -> None:
    """Flipping any bit of the encoded proof gives an encoding error or a failed proof."""
    encoded = bytearray(proof.to_bytes())
    index = data.draw(st.integers(0, len(encoded) - 1))
    encoded[index] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises((EncodingError, VerificationError)):
        fac.verify(
            fac.FacProof.from_bytes(bytes(encoded)), prover_key.n, setup, session_id=SID, prover=5
        )
