"""Polynomials, Lagrange interpolation and Feldman VSS."""

import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardvault.crypto.errors import EncodingError, MisuseError, VerificationError
from shardvault.crypto.group import ED25519, SECP256K1, Group
from shardvault.crypto.polynomial import Polynomial, lagrange_coefficient
from shardvault.crypto.vss import VerifiableCommitment, sum_commitments

GROUPS = [SECP256K1, ED25519]


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_any_quorum_interpolates_the_secret(group: Group, data: st.DataObject) -> None:
    max_signers = data.draw(st.integers(min_value=1, max_value=7))
    min_signers = data.draw(st.integers(min_value=1, max_value=max_signers))
    secret = group.random_scalar(secrets.token_bytes)
    poly = Polynomial.random(group, min_signers - 1, secrets.token_bytes, constant=secret)
    quorum = data.draw(
        st.lists(
            st.integers(1, max_signers), min_size=min_signers, max_size=min_signers, unique=True
        )
    )
    total = group.scalar(0)
    for i in quorum:
        total = total + lagrange_coefficient(group, i, quorum) * poly.evaluate(i)
    assert total == secret


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_feldman_accepts_honest_and_rejects_wrong_share(group: Group) -> None:
    poly = Polynomial.random(group, 2, secrets.token_bytes)
    commitment = VerifiableCommitment.of(poly)
    for i in range(1, 6):
        commitment.verify_share(i, poly.evaluate(i))
    with pytest.raises(VerificationError, match="party 3"):
        commitment.verify_share(3, poly.evaluate(3) + 1)
    with pytest.raises(VerificationError):
        commitment.verify_share(3, poly.evaluate(4))


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_summed_commitments_verify_summed_shares(group: Group) -> None:
    polys = [Polynomial.random(group, 1, secrets.token_bytes) for _ in range(3)]
    summed = sum_commitments([VerifiableCommitment.of(p) for p in polys])
    for i in (1, 2, 3):
        share = sum((p.evaluate(i) for p in polys), group.scalar(0))
        summed.verify_share(i, share)


def test_commitment_decoding_validates_points() -> None:
    commitment = VerifiableCommitment.of(Polynomial.random(ED25519, 1, secrets.token_bytes))
    encoded = commitment.to_bytes()
    assert VerifiableCommitment.from_bytes(ED25519, encoded) == commitment
    with pytest.raises(EncodingError):
        VerifiableCommitment.from_bytes(ED25519, [encoded[0], b"\x01" + bytes(31)])
    with pytest.raises(EncodingError):
        VerifiableCommitment.from_bytes(ED25519, [])


def test_lagrange_refuses_bad_signer_sets() -> None:
    with pytest.raises(MisuseError):
        lagrange_coefficient(SECP256K1, 1, [1, 1, 2])
    with pytest.raises(MisuseError):
        lagrange_coefficient(SECP256K1, 4, [1, 2])
    with pytest.raises(MisuseError):
        lagrange_coefficient(SECP256K1, 1, [1, 0])


def test_polynomial_repr_hides_coefficients() -> None:
    poly = Polynomial(SECP256K1, [SECP256K1.scalar(987654321)])
    assert "987654321" not in repr(poly)
