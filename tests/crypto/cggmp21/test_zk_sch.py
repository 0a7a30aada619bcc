"""Πsch (CGGMP21 Figure 22): completeness, binding to rid and context, nonce single use."""

from __future__ import annotations

import secrets

import pytest

from shardvault.crypto.errors import EncodingError, MisuseError, VerificationError
from shardvault.crypto.group import SECP256K1
from shardvault.crypto.zk import sch
from shardvault.crypto.zk.context import ProofContext

G = SECP256K1
RNG = secrets.token_bytes
CONTEXT = ProofContext(bytes(32), 1, "secp256k1", bytes(32))


def test_prove_verify_and_bindings() -> None:
    x = G.random_scalar(RNG)
    X = G.base_multiply(x)
    proof = sch.prove(CONTEXT, G, X, x, b"rid", RNG)
    sch.verify(CONTEXT, G, X, proof, b"rid")
    assert sch.SchnorrProof.from_wire(G, proof.to_wire()) == proof
    with pytest.raises(VerificationError):
        sch.verify(CONTEXT, G, X, proof, b"other rid")
    with pytest.raises(VerificationError):
        sch.verify(ProofContext(bytes(32), 2, "secp256k1", bytes(32)), G, X, proof, b"rid")
    with pytest.raises(VerificationError):
        sch.verify(CONTEXT, G, X + X, proof, b"rid")
    with pytest.raises(VerificationError):
        sch.verify(CONTEXT, G, X, sch.SchnorrProof(proof.commitment, proof.response + 1), b"rid")


def test_nonce_answers_once() -> None:
    nonce = sch.SchnorrNonce(G, RNG)
    nonce.respond(G.scalar(1), G.scalar(2))
    with pytest.raises(MisuseError):
        nonce.respond(G.scalar(1), G.scalar(2))
    assert "redacted" in repr(nonce)


def test_malformed_wire() -> None:
    with pytest.raises(EncodingError):
        sch.SchnorrProof.from_wire(G, [b"x"])
