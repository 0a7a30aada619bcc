"""Πmul* (CGGMP21 Appendix C.6, Figure 31): completeness, and every verifier check refuses
bad input (tampered fields, another statement or context, an out-of-range response)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from shardvault.crypto._sampling import random_unit_mod
from shardvault.crypto.errors import EncodingError, VerificationError
from shardvault.crypto.group import SECP256K1
from shardvault.crypto.zk import mul_star
from shardvault.crypto.zk.context import ELL, EPSILON, CrtExp
from tests.crypto.cggmp21.zk_helpers import RNG, Setup, make_setup, other_context

G = SECP256K1


def _statement(x: int) -> tuple[Setup, int, int, Any, int]:
    s = make_setup()
    C, _ = s.prover.encrypt(123456789, RNG)
    pk = s.prover.public
    rho = random_unit_mod(pk.n, RNG)
    D = pk.add(pk.scalar_mul(C, x), s.prover.nonce_power(rho))
    return s, C, D, G.base_multiply(G.scalar(x)), rho


def _proof(x: int = 0xC0FFEE) -> tuple[Setup, int, int, Any, mul_star.MulStarProof]:
    s, C, D, X, rho = _statement(x)
    return s, C, D, X, mul_star.prove(s.context, G, s.prover, s.setup, C, D, X, x, rho, RNG)


def _verify(s: Setup, C: int, D: int, X: Any, proof: mul_star.MulStarProof, **kw: Any) -> None:
    mul_star.verify(
        kw.get("context", s.context), G, s.prover.public, s.setup, C, D, X, proof, kw.get("crt")
    )


def test_valid_proof_verifies_with_and_without_crt() -> None:
    s, C, D, X, proof = _proof()
    _verify(s, C, D, X, proof)
    _verify(s, C, D, X, proof, crt=CrtExp(s.verifier.p, s.verifier.q))
    assert mul_star.MulStarProof.from_wire(G, proof.to_wire()) == proof


def test_a_key_share_sized_witness_verifies() -> None:
    # Presigning proves x = w_i, any scalar below q.
    s, C, D, X, proof = _proof(G.order - 1)
    _verify(s, C, D, X, proof)


@pytest.mark.parametrize("field", ["A", "E", "S", "z1", "z2", "w"])
def test_any_changed_field_is_refused(field: str) -> None:
    s, C, D, X, proof = _proof()
    with pytest.raises(VerificationError):
        _verify(s, C, D, X, replace(proof, **{field: getattr(proof, field) + 1}))


def test_changed_point_is_refused() -> None:
    s, C, D, X, proof = _proof()
    with pytest.raises(VerificationError):
        _verify(s, C, D, X, replace(proof, Bx=proof.Bx + G.generator()))


@pytest.mark.parametrize(
    "change", [{"session_id": b"other"}, {"prover": 2}, {"curve": "ed25519"}, {"binding": b"b"}]
)
def test_another_context_is_refused(change: dict[str, Any]) -> None:
    s, C, D, X, proof = _proof()
    with pytest.raises(VerificationError):
        _verify(s, C, D, X, proof, context=other_context(s.context, **change))


def test_another_statement_is_refused() -> None:
    s, C, D, X, proof = _proof()
    pk = s.prover.public
    other, _ = pk.encrypt(5, RNG)
    with pytest.raises(VerificationError):
        _verify(s, other, D, X, proof)
    with pytest.raises(VerificationError):
        _verify(s, C, pk.add(D, other), X, proof)
    with pytest.raises(VerificationError):
        _verify(s, C, D, X + G.generator(), proof)


def test_a_false_statement_does_not_verify() -> None:
    # D does not hide x times C's plaintext: a prover using the x behind X fails.
    s, C, _, X, rho = _statement(41)
    pk = s.prover.public
    D = pk.add(pk.scalar_mul(C, 42), s.prover.nonce_power(rho))
    proof = mul_star.prove(s.context, G, s.prover, s.setup, C, D, X, 41, rho, RNG)
    with pytest.raises(VerificationError):
        _verify(s, C, D, X, proof)


def test_out_of_range_witness_is_refused_by_the_range_check() -> None:
    # Every equation holds, only z1 ∉ ±2^(ℓ+ε) gives the too-large witness away.
    x = 1 << (ELL + EPSILON + 8)
    s, C, D, X, proof = _proof(x)
    with pytest.raises(VerificationError, match="z1"):
        _verify(s, C, D, X, proof)


@pytest.mark.parametrize("field", ["A", "w", "E", "S"])
def test_out_of_group_values_are_refused(field: str) -> None:
    s, C, D, X, proof = _proof()
    with pytest.raises(VerificationError):
        _verify(s, C, D, X, replace(proof, **{field: 0}))
    with pytest.raises(VerificationError):
        _verify(s, 0, D, X, proof)


@pytest.mark.parametrize(
    "value",
    [None, {"Bx": b"\x02" + bytes(32)}, {"Bx": 1}, {**dict.fromkeys("AES", 1), "Bx": b"x"}],
)
def test_malformed_wire_is_an_encoding_error(value: Any) -> None:
    with pytest.raises(EncodingError):
        mul_star.MulStarProof.from_wire(G, value)


def test_non_integer_field_is_an_encoding_error() -> None:
    _, _, _, _, proof = _proof()
    with pytest.raises(EncodingError):
        mul_star.MulStarProof.from_wire(G, {**proof.to_wire(), "z1": b"1"})
