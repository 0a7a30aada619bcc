"""Πdec (CGGMP21 Appendix C.6, Figure 30, in its point form): completeness, and every
verifier check refuses bad input (tampered fields, another statement or context, a
plaintext shifted by the modulus that only the range check catches)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from shardvault.crypto._sampling import random_signed, random_unit_mod
from shardvault.crypto.errors import EncodingError, MisuseError, VerificationError
from shardvault.crypto.group import SECP256K1, Point
from shardvault.crypto.zk import dec
from shardvault.crypto.zk.context import ELL, CrtExp, commit, paillier_enc
from tests.crypto.cggmp21.zk_helpers import RNG, Setup, make_setup, other_context

G = SECP256K1
BITS = 1600
"""About the bound presigning uses for ``χ`` ciphertexts (1608 bits for 3 signers)."""


def _proof(y: int = -(3**900)) -> tuple[Setup, int, Point, Point, dec.DecProof]:
    s = make_setup()
    C, _ = s.prover.encrypt(y, RNG)
    base = G.base_multiply(G.scalar(99))
    Y = base * G.scalar(y)
    return s, C, base, Y, dec.prove(s.context, G, s.prover, s.setup, C, base, Y, BITS, RNG)


def _verify(s: Setup, C: int, B: Point, Y: Point, proof: dec.DecProof, **kw: Any) -> None:
    dec.verify(
        kw.get("context", s.context),
        G,
        s.prover.public,
        s.setup,
        C,
        B,
        Y,
        kw.get("bits", BITS),
        proof,
        kw.get("crt"),
    )


def test_valid_proof_verifies_with_and_without_crt() -> None:
    s, C, B, Y, proof = _proof()
    _verify(s, C, B, Y, proof)
    _verify(s, C, B, Y, proof, crt=CrtExp(s.verifier.p, s.verifier.q))
    assert dec.DecProof.from_wire(G, proof.to_wire()) == proof


def test_small_and_positive_plaintexts_verify() -> None:
    for y in (1, G.order + 5, 2**BITS):
        s, C, B, Y, proof = _proof(y)
        _verify(s, C, B, Y, proof)


@pytest.mark.parametrize("field", ["S", "T", "A", "z1", "z2", "w"])
def test_any_changed_field_is_refused(field: str) -> None:
    s, C, B, Y, proof = _proof()
    with pytest.raises(VerificationError):
        _verify(s, C, B, Y, replace(proof, **{field: getattr(proof, field) + 1}))


def test_changed_point_is_refused() -> None:
    s, C, B, Y, proof = _proof()
    with pytest.raises(VerificationError):
        _verify(s, C, B, Y, replace(proof, Z=proof.Z + B))


@pytest.mark.parametrize(
    "change", [{"session_id": b"other"}, {"prover": 2}, {"curve": "ed25519"}, {"binding": b"b"}]
)
def test_another_context_is_refused(change: dict[str, Any]) -> None:
    s, C, B, Y, proof = _proof()
    with pytest.raises(VerificationError):
        _verify(s, C, B, Y, proof, context=other_context(s.context, **change))


def test_another_statement_or_bound_is_refused() -> None:
    s, C, B, Y, proof = _proof()
    other, _ = s.prover.public.encrypt(5, RNG)
    with pytest.raises(VerificationError):
        _verify(s, other, B, Y, proof)
    with pytest.raises(VerificationError):
        _verify(s, C, B, Y + B, proof)
    with pytest.raises(VerificationError):
        _verify(s, C, G.generator(), Y, proof)
    with pytest.raises(VerificationError):
        _verify(s, C, B, Y, proof, bits=BITS + 1)


def test_prover_refuses_a_false_or_out_of_bound_statement() -> None:
    s = make_setup()
    C, _ = s.prover.encrypt(10, RNG)
    with pytest.raises(MisuseError):
        dec.prove(
            s.context,
            G,
            s.prover,
            s.setup,
            C,
            G.generator(),
            G.base_multiply(G.scalar(11)),
            BITS,
            RNG,
        )
    big, _ = s.prover.encrypt(1 << (BITS + 1), RNG)
    Y = G.base_multiply(G.scalar(1 << (BITS + 1)))
    with pytest.raises(MisuseError):
        dec.prove(s.context, G, s.prover, s.setup, big, G.generator(), Y, BITS, RNG)
    with pytest.raises(MisuseError):
        dec.prove(s.context, G, s.prover, s.setup, C, G.generator(), Y, 2048, RNG)


def test_bound_that_does_not_fit_the_modulus_is_misuse() -> None:
    s, C, B, Y, proof = _proof()
    with pytest.raises(MisuseError):
        _verify(s, C, B, Y, proof, bits=dec.max_plaintext_bits(2048) + 1)


def _forge(s: Setup, C: int, B: Point, Y: Point, y: int, rho: int) -> dec.DecProof:
    """Figure 30's prover run on a chosen integer ``y`` with no checks (test only)."""
    n0, nn0, n_hat = s.prover.n, s.prover.public.n_squared, s.setup.n
    alpha = random_signed(BITS + dec.SLACK, RNG)
    mu = random_signed(ELL + n_hat.bit_length(), RNG)
    nu = random_signed(BITS + dec.SLACK + n_hat.bit_length(), RNG)
    r = random_unit_mod(n0, RNG)
    S = commit(n_hat, s.setup.s, s.setup.t, y, mu)
    T = commit(n_hat, s.setup.s, s.setup.t, alpha, nu)
    A = paillier_enc(n0, nn0, alpha, s.prover.nonce_power(r))
    Z = B * G.scalar(alpha)
    e = dec._challenge(s.context, G.order, s.prover.public, s.setup, BITS, C, B, Y, (S, T, A, Z))
    return dec.DecProof(S, T, A, Z, alpha + e * y, nu + e * mu, r * pow(rho, e, n0) % n0)


def test_forger_works_on_a_true_statement() -> None:
    s = make_setup()
    C, rho = s.prover.encrypt(77, RNG)
    B = G.generator()
    _verify(
        s,
        C,
        B,
        G.base_multiply(G.scalar(77)),
        _forge(s, C, B, G.base_multiply(G.scalar(77)), 77, rho),
    )


def test_plaintext_shifted_by_the_modulus_is_refused_by_the_range_check() -> None:
    # C encrypts 77, and equally 77 + N0 (as (1+N0)^N0 = 1 mod N0²): without the range check
    # the prover could claim the point (77 + N0)·B. Every equation holds; only z1 is too big.
    s = make_setup()
    C, rho = s.prover.encrypt(77, RNG)
    B = G.generator()
    shifted = 77 + s.prover.n
    Y = G.base_multiply(G.scalar(shifted))
    with pytest.raises(VerificationError, match="z1"):
        _verify(s, C, B, Y, _forge(s, C, B, Y, shifted, rho))


@pytest.mark.parametrize("field", ["A", "w", "S", "T"])
def test_out_of_group_values_are_refused(field: str) -> None:
    s, C, B, Y, proof = _proof()
    with pytest.raises(VerificationError):
        _verify(s, C, B, Y, replace(proof, **{field: 0}))
    with pytest.raises(VerificationError):
        _verify(s, 0, B, Y, proof)


@pytest.mark.parametrize(
    "value", [None, {"Z": b"\x02" + bytes(32)}, {"Z": 1}, {**dict.fromkeys("STA", 1), "Z": b"x"}]
)
def test_malformed_wire_is_an_encoding_error(value: Any) -> None:
    with pytest.raises(EncodingError):
        dec.DecProof.from_wire(G, value)
