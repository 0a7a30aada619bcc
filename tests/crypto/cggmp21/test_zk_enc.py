"""Πenc (CGGMP21 Figure 14): completeness, and every verifier check refuses bad input."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardvault.crypto.errors import EncodingError, VerificationError
from shardvault.crypto.group import SECP256K1
from shardvault.crypto.zk import enc
from shardvault.crypto.zk.context import CrtExp
from tests.crypto.cggmp21.zk_helpers import RNG, make_setup, other_context

Q = SECP256K1.order


def _proof():  # type: ignore[no-untyped-def]
    s = make_setup()
    k = 12345678901234567890
    K, rho = s.prover.encrypt(k, RNG)
    return s, K, enc.prove(s.context, Q, s.prover, s.setup, K, k, rho, RNG)


def test_valid_proof_verifies_with_and_without_crt() -> None:
    s, K, proof = _proof()
    enc.verify(s.context, Q, s.prover.public, s.setup, K, proof)
    enc.verify(s.context, Q, s.prover.public, s.setup, K, proof, CrtExp(s.verifier.p, s.verifier.q))
    assert enc.EncProof.from_wire(proof.to_wire()) == proof


@pytest.mark.parametrize("field", ["S", "A", "C", "z1", "z2", "z3"])
def test_any_changed_field_is_refused(field: str) -> None:
    s, K, proof = _proof()
    bad = replace(proof, **{field: getattr(proof, field) + 1})
    with pytest.raises(VerificationError):
        enc.verify(s.context, Q, s.prover.public, s.setup, K, bad)


def test_out_of_range_values_are_refused() -> None:
    s, K, proof = _proof()
    n = s.prover.n
    for bad_K in (0, n * n, n):
        with pytest.raises(VerificationError):
            enc.verify(s.context, Q, s.prover.public, s.setup, bad_K, proof)
    with pytest.raises(VerificationError, match="outside"):
        enc.verify(s.context, Q, s.prover.public, s.setup, K, replace(proof, z1=2**768 + 1))


def test_other_session_or_prover_is_refused() -> None:
    s, K, proof = _proof()
    for context in (
        other_context(s.context, session_id=bytes(32)),
        other_context(s.context, prover=2),
    ):
        with pytest.raises(VerificationError):
            enc.verify(context, Q, s.prover.public, s.setup, K, proof)


def test_out_of_range_plaintext_fails() -> None:
    """A prover whose k lies far outside ±2^ℓ cannot pass the range check."""
    s = make_setup()
    k = 2**1100
    K, rho = s.prover.encrypt(k, RNG)
    proof = enc.prove(s.context, Q, s.prover, s.setup, K, k, rho, RNG)
    with pytest.raises(VerificationError):
        enc.verify(s.context, Q, s.prover.public, s.setup, K, proof)


def test_malformed_wire_is_an_encoding_error() -> None:
    with pytest.raises(EncodingError):
        enc.EncProof.from_wire({"S": 1})
    with pytest.raises(EncodingError):
        enc.EncProof.from_wire(dict.fromkeys(["S", "A", "C", "z1", "z2", "z3"], "x"))


_CACHED: list[object] = []


def _cached():  # type: ignore[no-untyped-def]
    if not _CACHED:
        _CACHED.append(_proof())
    return _CACHED[0]


@settings(max_examples=40, deadline=None)
@given(
    field=st.sampled_from(["S", "A", "C", "z1", "z2", "z3"]),
    delta=st.integers(min_value=-(2**64), max_value=2**64).filter(lambda d: d != 0),
)
def test_property_any_mutation_is_rejected(field: str, delta: int) -> None:
    s, K, proof = _cached()
    bad = replace(proof, **{field: getattr(proof, field) + delta})
    with pytest.raises(VerificationError):
        enc.verify(s.context, Q, s.prover.public, s.setup, K, bad)


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_property_wire_round_trip_through_cbor(data: st.DataObject) -> None:
    import cbor2

    _, _, proof = _cached()
    decoded = enc.EncProof.from_wire(cbor2.loads(cbor2.dumps(proof.to_wire(), canonical=True)))
    assert decoded == proof
    junk = data.draw(st.dictionaries(st.text(max_size=3), st.integers(), max_size=3))
    if set(junk) != {"S", "A", "C", "z1", "z2", "z3"}:
        with pytest.raises(EncodingError):
            enc.EncProof.from_wire(junk)


@settings(max_examples=30, deadline=None)
@given(exponent=st.integers(min_value=-(2**3000), max_value=2**3000))
def test_fixed_base_commitment_matches_powmod(exponent: int) -> None:
    """The prover's fixed-base tables agree with GMP's powmod, for any sign and size
    (exponents beyond the table fall back to powmod)."""
    from shardvault.crypto.zk.context import FixedBaseTable, commit, pow2

    s, _, _ = _cached()
    n, base_s, base_t = s.setup.n, s.setup.s, s.setup.t
    assert commit(n, base_s, base_t, exponent, -exponent // 3) == pow2(
        base_s, exponent, base_t, -exponent // 3, n
    )
    small = FixedBaseTable(base_s, n, 64)
    assert small.pow(exponent) == pow(base_s, exponent, n)
