"""Πlog* (CGGMP21 Figure 25): completeness, and every verifier check refuses bad input."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shardvault.crypto.errors import EncodingError, VerificationError
from shardvault.crypto.group import SECP256K1
from shardvault.crypto.zk import log_star
from shardvault.crypto.zk.context import CrtExp
from tests.crypto.cggmp21.zk_helpers import RNG, make_setup, other_context

G = SECP256K1


def _proof():  # type: ignore[no-untyped-def]
    s = make_setup()
    x = 987654321
    base = G.base_multiply(G.scalar(77))
    X = base * G.scalar(x)
    C, rho = s.prover.encrypt(x, RNG)
    return s, C, X, base, log_star.prove(s.context, G, s.prover, s.setup, C, X, base, x, rho, RNG)


def test_valid_proof_verifies() -> None:
    s, C, X, base, proof = _proof()
    log_star.verify(s.context, G, s.prover.public, s.setup, C, X, base, proof)
    log_star.verify(
        s.context,
        G,
        s.prover.public,
        s.setup,
        C,
        X,
        base,
        proof,
        CrtExp(s.verifier.p, s.verifier.q),
    )
    assert log_star.LogStarProof.from_wire(G, proof.to_wire()) == proof


@pytest.mark.parametrize("field", ["S", "A", "D", "z1", "z2", "z3"])
def test_any_changed_field_is_refused(field: str) -> None:
    s, C, X, base, proof = _proof()
    with pytest.raises(VerificationError):
        log_star.verify(
            s.context,
            G,
            s.prover.public,
            s.setup,
            C,
            X,
            base,
            replace(proof, **{field: getattr(proof, field) + 1}),
        )


def test_wrong_point_base_or_context_is_refused() -> None:
    s, C, X, base, proof = _proof()
    with pytest.raises(VerificationError):
        log_star.verify(s.context, G, s.prover.public, s.setup, C, X + base, base, proof)
    with pytest.raises(VerificationError):
        log_star.verify(s.context, G, s.prover.public, s.setup, C, X, G.generator(), proof)
    with pytest.raises(VerificationError):
        log_star.verify(
            other_context(s.context, curve="ed25519"),
            G,
            s.prover.public,
            s.setup,
            C,
            X,
            base,
            proof,
        )
    with pytest.raises(VerificationError):
        log_star.verify(
            s.context, G, s.prover.public, s.setup, C, X, base, replace(proof, Y=proof.Y + base)
        )
    with pytest.raises(VerificationError):
        log_star.verify(s.context, G, s.prover.public, s.setup, 0, X, base, proof)


def test_malformed_wire_is_an_encoding_error() -> None:
    with pytest.raises(EncodingError):
        log_star.LogStarProof.from_wire(G, {"Y": b"\x02" + bytes(32)})
