"""Πaff-g (CGGMP21 Figure 15): completeness, and every verifier check refuses bad input."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shardvault.crypto._sampling import random_signed
from shardvault.crypto.errors import EncodingError, VerificationError
from shardvault.crypto.group import SECP256K1
from shardvault.crypto.zk import aff_g
from shardvault.crypto.zk.context import CrtExp
from tests.crypto.cggmp21.zk_helpers import RNG, make_setup

G = SECP256K1


def _proof(y_bits: int = 1280):  # type: ignore[no-untyped-def]
    s = make_setup()
    verifier = s.verifier.public
    C, _ = verifier.encrypt(31337, RNG)
    x = 2**200 + 5
    y = random_signed(y_bits, RNG)
    masked, rho = verifier.encrypt(y, RNG)
    D = verifier.add(verifier.scalar_mul(C, x), masked)
    Y, rho_y = s.prover.encrypt(y, RNG)
    X = G.base_multiply(G.scalar(x))
    proof = aff_g.prove(
        s.context, G, verifier, s.prover, s.setup, C, D, Y, X, (x, y, rho, rho_y), RNG
    )
    return s, (C, D, Y, X), proof


def _verify(s, statement, proof, crt=None) -> None:  # type: ignore[no-untyped-def]
    C, D, Y, X = statement
    aff_g.verify(s.context, G, s.verifier.public, s.prover.public, s.setup, C, D, Y, X, proof, crt)


def test_valid_proof_verifies_and_decrypts() -> None:
    s, statement, proof = _proof()
    _verify(s, statement, proof)
    _verify(s, statement, proof, CrtExp(s.verifier.p, s.verifier.q))
    assert aff_g.AffGProof.from_wire(G, proof.to_wire()) == proof


@pytest.mark.parametrize(
    "field", ["A", "By", "E", "S", "F", "T", "z1", "z2", "z3", "z4", "w", "wy"]
)
def test_any_changed_field_is_refused(field: str) -> None:
    s, statement, proof = _proof()
    with pytest.raises(VerificationError):
        _verify(s, statement, replace(proof, **{field: getattr(proof, field) + 1}))


def test_changed_statement_is_refused() -> None:
    s, (C, D, Y, X), proof = _proof()
    for statement in ((C, D + 1, Y, X), (C, D, Y + 1, X), (C, D, Y, X + X), (C, 0, Y, X)):
        with pytest.raises(VerificationError):
            _verify(s, statement, proof)


def test_oversized_mask_fails_the_range_check() -> None:
    s, statement, proof = _proof(y_bits=1900)
    with pytest.raises(VerificationError):
        _verify(s, statement, proof)


def test_malformed_wire_is_an_encoding_error() -> None:
    with pytest.raises(EncodingError):
        aff_g.AffGProof.from_wire(G, {"A": 1})
