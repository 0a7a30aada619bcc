"""Πmod, the Paillier-Blum modulus proof (CGGMP21 Figure 16): completeness, binding to
session/prover/context, tampering, and soundness on moduli that are not Paillier-Blum."""

import dataclasses

import gmpy2
import pytest

from shardvault.crypto._sampling import random_below
from shardvault.crypto.errors import EncodingError, VerificationError
from shardvault.crypto.paillier import PaillierSecretKey
from shardvault.crypto.rng import system_random
from shardvault.crypto.zk import mod
from tests.crypto.cggmp21.conftest import make_seeded_rng

SID = bytes(range(32))


@pytest.fixture(scope="module")
def key(paillier_keys_2048: list[PaillierSecretKey]) -> PaillierSecretKey:
    return paillier_keys_2048[1]


@pytest.fixture(scope="module")
def proof(key: PaillierSecretKey) -> mod.ModProof:
    return mod.prove(key, session_id=SID, prover=3, rng=system_random, context=b"ctx")


def _prime(bits: int, residue: int, seed: str) -> int:
    rng = make_seeded_rng(seed)
    while True:
        candidate = gmpy2.next_prime(random_below(1 << bits, rng) | (3 << (bits - 2)))
        if candidate % 4 == residue and candidate.bit_length() == bits:
            return int(candidate)


def test_honest_proof_verifies(key: PaillierSecretKey, proof: mod.ModProof) -> None:
    mod.verify(proof, key.n, session_id=SID, prover=3, context=b"ctx")
    assert len(proof.x) == mod.REPETITIONS
    assert mod.ModProof.from_bytes(proof.to_bytes()) == proof


@pytest.mark.parametrize(
    ("session", "prover", "context"),
    [(bytes(32), 3, b"ctx"), (SID, 4, b"ctx"), (SID, 3, b"other context")],
    ids=["other-session", "other-prover", "other-context"],
)
def test_binding(
    key: PaillierSecretKey, proof: mod.ModProof, session: bytes, prover: int, context: bytes
) -> None:
    """A proof replayed into another session, for another prover or context, fails."""
    with pytest.raises(VerificationError):
        mod.verify(proof, key.n, session_id=session, prover=prover, context=context)


def test_proof_for_another_modulus_fails(
    proof: mod.ModProof, paillier_keys_2048: list[PaillierSecretKey]
) -> None:
    with pytest.raises(VerificationError):
        mod.verify(proof, paillier_keys_2048[2].n, session_id=SID, prover=3, context=b"ctx")


@pytest.mark.parametrize("field", ["w", "x", "a", "b", "z"])
@pytest.mark.parametrize("index", [0, mod.REPETITIONS - 1])
def test_tampered_proof_fails(
    key: PaillierSecretKey, proof: mod.ModProof, field: str, index: int
) -> None:
    if field == "w":
        # Multiplying by 4 keeps the Jacobi symbol, so only the equations can catch it.
        tampered = dataclasses.replace(proof, w=proof.w * 4 % key.n)
    else:
        values = list(getattr(proof, field))
        values[index] = (1 - values[index]) if field in ("a", "b") else values[index] + 1
        tampered = dataclasses.replace(proof, **{field: tuple(values)})
    with pytest.raises(VerificationError):
        mod.verify(tampered, key.n, session_id=SID, prover=3, context=b"ctx")


@pytest.mark.parametrize("bad", ["short", "a_not_bit", "x_zero", "z_too_big", "w_jacobi"])
def test_malformed_values_fail(key: PaillierSecretKey, proof: mod.ModProof, bad: str) -> None:
    n = key.n
    if bad == "short":
        tampered = dataclasses.replace(proof, x=proof.x[:-1])
    elif bad == "a_not_bit":
        tampered = dataclasses.replace(proof, a=(2, *proof.a[1:]))
    elif bad == "x_zero":
        tampered = dataclasses.replace(proof, x=(0, *proof.x[1:]))
    elif bad == "z_too_big":
        tampered = dataclasses.replace(proof, z=(proof.z[0] + n, *proof.z[1:]))
    else:
        tampered = dataclasses.replace(proof, w=proof.w * proof.w % n)
    with pytest.raises(VerificationError):
        mod.verify(tampered, n, session_id=SID, prover=3, context=b"ctx")


def test_non_blum_modulus_fails() -> None:
    """Soundness sanity: the prover's algorithm run on N = p*q with p ≡ 1 (mod 4) (not a
    Blum integer) yields a proof the verifier rejects."""
    p = _prime(1024, 1, "mod-non-blum-p")
    q = _prime(1024, 3, "mod-non-blum-q")
    bad_key = PaillierSecretKey(p, q)  # the raw constructor checks nothing: test-only
    proof = mod.prove(bad_key, session_id=SID, prover=1, rng=system_random)
    with pytest.raises(VerificationError, match=r"x_\d+\^4"):
        mod.verify(proof, p * q, session_id=SID, prover=1)


@pytest.mark.parametrize("n", ["prime", "even", "square"])
def test_trivial_moduli_fail(proof: mod.ModProof, n: str) -> None:
    p = _prime(1024, 3, "mod-trivial")
    value = {"prime": p, "even": 2 * p, "square": p * p}[n]
    with pytest.raises(VerificationError):
        mod.verify(proof, value, session_id=SID, prover=3, context=b"ctx")


def test_garbage_encoding_rejected(proof: mod.ModProof) -> None:
    data = proof.to_bytes()
    for bad in (b"", data[:-1], data + b"\x00", b"\xa0"):
        with pytest.raises(EncodingError):
            mod.ModProof.from_bytes(bad)
