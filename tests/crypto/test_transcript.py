"""Fiat-Shamir transcripts: framing, domain separation, challenge ranges."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shardvault.crypto.transcript import Transcript


def test_framing_separates_value_boundaries() -> None:
    a = Transcript("test").append("x", b"ab").append("y", b"c")
    b = Transcript("test").append("x", b"a").append("y", b"bc")
    assert a.challenge_bytes("c", 32) != b.challenge_bytes("c", 32)


def test_domain_and_label_separate() -> None:
    base = Transcript("proto/a").append("x", b"1").challenge_bytes("c", 32)
    assert Transcript("proto/b").append("x", b"1").challenge_bytes("c", 32) != base
    assert Transcript("proto/a").append("y", b"1").challenge_bytes("c", 32) != base
    assert Transcript("proto/a").append("x", b"1").challenge_bytes("c", 32) == base


def test_signed_integers_are_unambiguous() -> None:
    pos = Transcript("t").append_int("v", 5).challenge_bytes("c", 16)
    neg = Transcript("t").append_int("v", -5).challenge_bytes("c", 16)
    assert pos != neg
    lists = Transcript("t").append_ints("v", [1, 2]).challenge_bytes("c", 16)
    other = Transcript("t").append_ints("v", [12]).challenge_bytes("c", 16)
    assert lists != other


def test_successive_challenges_differ_and_fork_is_independent() -> None:
    t = Transcript("t").append("x", b"1")
    fork = t.fork("branch")
    first, second = t.challenge_bytes("c", 32), t.challenge_bytes("c", 32)
    assert first != second
    assert fork.challenge_bytes("c", 32) not in (first, second)


@given(bound=st.integers(min_value=1, max_value=2**300), seed=st.binary(max_size=16))
def test_challenges_stay_in_range(bound: int, seed: bytes) -> None:
    t = Transcript("range").append("seed", seed)
    assert 0 <= t.challenge_int_below("c", bound) < bound
    assert -bound <= t.challenge_signed("s", bound) <= bound


def test_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Transcript("t").challenge_int_below("c", 0)
