"""Paillier, ring-Pedersen parameters, sampling and safe primes (CGGMP21 §2.3, §3).

Keys come from the test-only prime fixture; the only primes searched here are tiny ones
(under 100 bits, milliseconds) to exercise the search and the pool.
"""

import gmpy2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardvault.crypto import primes
from shardvault.crypto._sampling import random_below, random_signed, random_unit_mod
from shardvault.crypto.errors import EncodingError, MisuseError, VerificationError
from shardvault.crypto.paillier import (
    MIN_MODULUS_BITS,
    PaillierPublicKey,
    PaillierSecretKey,
    check_min_modulus_bits,
)
from shardvault.crypto.ring_pedersen import RingPedersenParams, RingPedersenSecret
from shardvault.crypto.ring_pedersen import generate as generate_ring_pedersen
from shardvault.crypto.rng import system_random
from tests.crypto.cggmp21.conftest import make_seeded_rng

FAST = settings(max_examples=25, deadline=None)


@pytest.fixture(scope="module")
def key(paillier_keys_2048: list[PaillierSecretKey]) -> PaillierSecretKey:
    return paillier_keys_2048[0]


def _signed_plaintext(n: int) -> st.SearchStrategy[int]:
    return st.integers(min_value=-(n // 2) + 1, max_value=n // 2)


# --- encryption and homomorphisms -------------------------------------------------------


@FAST
@given(data=st.data())
def test_round_trip_centered(key: PaillierSecretKey, data: st.DataObject) -> None:
    m = data.draw(_signed_plaintext(key.n))
    c, rho = key.public.encrypt(m, system_random)
    assert key.decrypt(c) == m
    # The owner's CRT encryption gives the same ciphertext as the public one.
    assert key.encrypt_with_nonce(m, rho) == c
    assert key.recover_nonce(c) == rho


@FAST
@given(data=st.data())
def test_homomorphic_add_and_scalar_mul(key: PaillierSecretKey, data: st.DataObject) -> None:
    small = st.integers(min_value=-(2**600), max_value=2**600)
    m1, m2, k = data.draw(small), data.draw(small), data.draw(st.integers(-(2**256), 2**256))
    pk = key.public
    c1, _ = pk.encrypt(m1, system_random)
    c2, _ = key.encrypt(m2, system_random)
    assert key.decrypt(pk.add(c1, c2)) == m1 + m2
    assert key.decrypt(pk.scalar_mul(c1, k)) == m1 * k


def test_plaintext_wraps_modulo_n(key: PaillierSecretKey) -> None:
    """Plaintexts are taken modulo N and decrypt to the centred representative."""
    c = key.public.encrypt_with_nonce(key.n + 5, 7)
    assert key.decrypt(c) == 5
    c = key.public.encrypt_with_nonce(key.n // 2 + 1, 7)
    assert key.decrypt(c) == key.n // 2 + 1 - key.n


def test_3072_bit_round_trip(paillier_keys_3072: list[PaillierSecretKey]) -> None:
    key = paillier_keys_3072[0]
    assert key.public.bits == 3072
    c, rho = key.public.encrypt(-123456789, system_random)
    assert key.decrypt(c) == -123456789
    assert key.encrypt_with_nonce(-123456789, rho) == c


@pytest.mark.parametrize("bad", ["zero", "n_squared", "negative", "shares_p", "not_int"])
def test_ciphertext_outside_units_rejected(key: PaillierSecretKey, bad: str) -> None:
    value: object = {
        "zero": 0,
        "n_squared": key.public.n_squared,
        "negative": -5,
        "shares_p": key.p * 12345,
        "not_int": 1.5,
    }[bad]
    with pytest.raises(VerificationError):
        key.public.validate_ciphertext(value)  # type: ignore[arg-type]
    if isinstance(value, int):
        with pytest.raises(VerificationError):
            key.decrypt(value)


def test_scalar_mul_negative_of_non_unit_raises(key: PaillierSecretKey) -> None:
    with pytest.raises(VerificationError):
        key.public.scalar_mul(key.p, -1)


def test_validate_unit(key: PaillierSecretKey) -> None:
    key.public.validate_unit(5)
    for bad in (0, key.n, key.q):
        with pytest.raises(VerificationError, match="nonce"):
            key.public.validate_unit(bad, "nonce")


# --- key construction checks --------------------------------------------------------------


def _prime_with_residue(bits: int, residue: int, seed: str) -> int:
    rng = make_seeded_rng(seed)
    while True:
        candidate = gmpy2.next_prime(random_below(1 << bits, rng) | (1 << (bits - 1)))
        if candidate % 4 == residue and candidate.bit_length() == bits:
            return int(candidate)


def test_from_primes_accepts_fixture(key: PaillierSecretKey) -> None:
    again = PaillierSecretKey.from_primes(key.p, key.q)
    assert again.public == key.public
    assert again.phi == (key.p - 1) * (key.q - 1)


def test_from_primes_rejects_equal_primes(key: PaillierSecretKey) -> None:
    with pytest.raises(MisuseError, match="distinct"):
        PaillierSecretKey.from_primes(key.p, key.p)


def test_from_primes_rejects_non_blum(key: PaillierSecretKey) -> None:
    p = _prime_with_residue(1024, 1, "non-blum")
    with pytest.raises(MisuseError, match="Blum"):
        PaillierSecretKey.from_primes(p, key.q)


def test_from_primes_rejects_blum_but_not_safe(key: PaillierSecretKey) -> None:
    p = _prime_with_residue(1024, 3, "blum-not-safe")
    assert not primes.is_safe_prime(p)
    with pytest.raises(MisuseError, match="safe"):
        PaillierSecretKey.from_primes(p, key.q)


def test_stored_key_skips_only_the_safe_prime_tests(key: PaillierSecretKey) -> None:
    """A key read back from authenticated storage skips the (slow) primality tests only:
    equal primes, non-Blum primes and small moduli are still refused."""
    label = 0
    blum_not_safe = 0
    while (blum_not_safe * key.q).bit_length() < 2048:
        blum_not_safe = _prime_with_residue(1024, 3, f"blum-not-safe-{label}")
        label += 1
    loaded = PaillierSecretKey.from_primes(blum_not_safe, key.q, recheck_primality=False)
    assert loaded.n == blum_not_safe * key.q
    with pytest.raises(MisuseError, match="safe"):
        PaillierSecretKey.from_bytes(loaded.to_bytes())
    with pytest.raises(MisuseError, match="distinct"):
        PaillierSecretKey.from_primes(key.p, key.p, recheck_primality=False)
    with pytest.raises(MisuseError, match="Blum"):
        PaillierSecretKey.from_primes(
            _prime_with_residue(1024, 1, "non-blum"), key.q, recheck_primality=False
        )
    again = PaillierSecretKey.from_bytes(key.to_bytes(), recheck_primality=False)
    assert (again.p, again.q) == (key.p, key.q)


def test_small_modulus_needs_explicit_test_only(
    paillier_keys_1024: list[PaillierSecretKey],
) -> None:
    small = paillier_keys_1024[0]
    with pytest.raises(MisuseError, match="below 2048"):
        PaillierSecretKey.from_primes(small.p, small.q)
    with pytest.raises(MisuseError, match="unsafe_test_only"):
        PaillierSecretKey.from_primes(small.p, small.q, min_modulus_bits=1024)
    with pytest.raises(MisuseError, match="unsafe_test_only"):
        check_min_modulus_bits(MIN_MODULUS_BITS - 1, unsafe_test_only=False)
    ok = PaillierSecretKey.from_primes(
        small.p, small.q, min_modulus_bits=1024, unsafe_test_only=True
    )
    assert ok.public.bits == 1024


def test_repr_hides_primes(key: PaillierSecretKey) -> None:
    text = repr(key) + str(key)
    for secret in (key.p, key.q):
        assert str(secret) not in text
        assert format(secret, "x") not in text
    assert "2048" in text


# --- encodings ----------------------------------------------------------------------------


def test_public_key_encoding(key: PaillierSecretKey) -> None:
    pk = key.public
    assert PaillierPublicKey.from_bytes(pk.to_bytes()) == pk
    for bad in (b"", b"\x00" + pk.to_bytes(), (pk.n + 1).to_bytes(256, "big"), b"\x01"):
        with pytest.raises(EncodingError):
            PaillierPublicKey.from_bytes(bad)


def test_secret_key_encoding(key: PaillierSecretKey) -> None:
    data = key.to_bytes()
    again = PaillierSecretKey.from_bytes(data)
    assert (again.p, again.q) == (key.p, key.q)
    for bad in (data[:-1], data + b"\x00", data[:3], b"\x00\x00\x00\x01\x00" + data[5:]):
        with pytest.raises(EncodingError):
            PaillierSecretKey.from_bytes(bad)


# --- ring-Pedersen ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ring(key: PaillierSecretKey) -> tuple[RingPedersenParams, RingPedersenSecret]:
    return generate_ring_pedersen(key.p, key.q, make_seeded_rng("ring"))


def test_ring_pedersen_trapdoor(
    ring: tuple[RingPedersenParams, RingPedersenSecret], key: PaillierSecretKey
) -> None:
    params, secret = ring
    params.validate()
    assert params.n == key.n
    assert pow(params.t, secret.lambda_, params.n) == params.s
    assert secret.phi == key.phi
    assert "lambda" not in repr(secret)
    assert str(secret.lambda_) not in repr(secret)


@FAST
@given(x=st.integers(-(2**800), 2**800), y=st.integers(-(2**800), 2**800))
def test_commit_negative_exponents(
    ring: tuple[RingPedersenParams, RingPedersenSecret], x: int, y: int
) -> None:
    params, _ = ring
    assert params.commit(x, y) * params.commit(-x, -y) % params.n == 1
    assert params.commit(x, y) == params.power(params.s, x) * params.power(params.t, y) % params.n


@pytest.mark.parametrize("bad", ["s_one", "t_minus_one", "s_too_big", "t_not_unit", "n_even"])
def test_ring_pedersen_validate_rejects(
    ring: tuple[RingPedersenParams, RingPedersenSecret], key: PaillierSecretKey, bad: str
) -> None:
    params, _ = ring
    n, s, t = params.n, params.s, params.t
    candidate = {
        "s_one": (n, 1, t),
        "t_minus_one": (n, s, n - 1),
        "s_too_big": (n, s + n, t),
        "t_not_unit": (n, s, key.p),
        "n_even": (n + 1, s, t),
    }[bad]
    with pytest.raises(VerificationError):
        RingPedersenParams(*candidate).validate()


def test_ring_pedersen_encoding(ring: tuple[RingPedersenParams, RingPedersenSecret]) -> None:
    params, _ = ring
    data = params.to_bytes()
    assert RingPedersenParams.from_bytes(data) == params
    for bad in (data[:-1], data + b"\x01", b"\x00\x00\x00\x01\x00" + data[5:], b"\x00"):
        with pytest.raises(EncodingError):
            RingPedersenParams.from_bytes(bad)
    with pytest.raises(EncodingError):
        RingPedersenParams(-1, 2, 3)


# --- sampling -----------------------------------------------------------------------------


@FAST
@given(bound=st.integers(1, 2**300), seed=st.binary(min_size=1, max_size=8))
def test_random_below_in_range(bound: int, seed: bytes) -> None:
    value = random_below(bound, make_seeded_rng(seed))
    assert 0 <= value < bound


@FAST
@given(bits=st.integers(0, 600), seed=st.binary(min_size=1, max_size=8))
def test_random_signed_in_range(bits: int, seed: bytes) -> None:
    assert abs(random_signed(bits, make_seeded_rng(seed))) <= 1 << bits


def test_random_unit_mod(key: PaillierSecretKey) -> None:
    value = random_unit_mod(key.n, system_random)
    assert 0 < value < key.n
    assert gmpy2.gcd(value, key.n) == 1
    with pytest.raises(MisuseError):
        random_unit_mod(1, system_random)
    with pytest.raises(MisuseError):
        random_below(0, system_random)


def test_broken_random_source_detected() -> None:
    with pytest.raises(MisuseError):
        random_below(3, lambda n: b"\xff" * n)


# --- safe primes --------------------------------------------------------------------------


def test_is_safe_prime(paillier_keys_2048: list[PaillierSecretKey]) -> None:
    assert primes.is_safe_prime(paillier_keys_2048[0].p)
    assert primes.is_safe_prime(23)  # 23 = 2 * 11 + 1
    assert not primes.is_safe_prime(13)  # 13 = 2 * 6 + 1, 6 is not prime
    assert not primes.is_safe_prime(29)  # 29 is 1 mod 4
    assert not primes.is_safe_prime(5)


def test_generate_small_safe_prime_reports_progress() -> None:
    """A tiny (80-bit) search: exercises the sieve and the progress callback quickly."""
    reports: list[primes.SearchProgress] = []
    p = primes.generate_safe_prime(80, make_seeded_rng("tiny"), reports.append)
    assert p.bit_length() == 80
    assert p >> 78 == 0b11
    assert p % 4 == 3
    assert primes.is_safe_prime(p)
    assert reports[-1].found
    assert all(not r.found for r in reports[:-1])


def test_pool_generates_distinct_primes() -> None:
    reports: list[primes.PoolProgress] = []
    found = primes.generate_safe_primes_parallel(
        72, 3, system_random, workers=2, on_progress=reports.append
    )
    assert len(set(found)) == 3
    assert all(primes.is_safe_prime(p) and p.bit_length() == 72 for p in found)
    assert [r.done for r in reports] == [1, 2, 3]


def test_pool_that_cannot_start_searches_in_this_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process that may not start helpers (a sandbox; an OS user that can run its
    interpreter but not start it again) still gets its primes, found one by one."""

    class NoPool:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise PermissionError("no helper processes here")

    monkeypatch.setattr(primes, "ProcessPoolExecutor", NoPool)
    reports: list[primes.PoolProgress] = []
    found = primes.generate_safe_primes_parallel(
        72, 2, system_random, workers=2, on_progress=reports.append
    )
    assert len(set(found)) == 2
    assert all(primes.is_safe_prime(p) and p.bit_length() == 72 for p in found)
    assert [r.done for r in reports] == [1, 2]


def test_prime_generation_misuse() -> None:
    with pytest.raises(MisuseError):
        primes.generate_safe_prime(32, system_random)
    with pytest.raises(MisuseError):
        primes.generate_safe_primes_parallel(128, 0, system_random)
    with pytest.raises(MisuseError):
        primes.generate_paillier_blum_primes(2049, system_random)


@pytest.fixture(scope="module")
def ring_with_tables(
    ring: tuple[RingPedersenParams, RingPedersenSecret],
) -> RingPedersenParams:
    params = RingPedersenParams(ring[0].n, ring[0].s, ring[0].t)
    params.precompute(max_exponent_bits=3000)
    params.precompute()  # idempotent
    return params


@FAST
@given(x=st.integers(-(2**3100), 2**3100), y=st.integers(-(2**2900), 2**2900))
def test_fixed_base_tables_match_powmod(
    ring: tuple[RingPedersenParams, RingPedersenSecret],
    ring_with_tables: RingPedersenParams,
    x: int,
    y: int,
) -> None:
    """Fixed-base tables give the same commitments, including negative exponents and
    exponents longer than the tables (which fall back to powmod)."""
    assert ring_with_tables.commit(x, y) == ring[0].commit(x, y)
    assert ring_with_tables == ring[0]


def test_precompute_refuses_invalid_parameters(
    ring: tuple[RingPedersenParams, RingPedersenSecret],
) -> None:
    with pytest.raises(VerificationError):
        RingPedersenParams(ring[0].n, 1, ring[0].t).precompute()


def test_gmpy2_integers_accepted(key: PaillierSecretKey) -> None:
    """Callers computing with gmpy2 may pass mpz values; bools are not integers here."""
    c, _ = key.public.encrypt(42, system_random)
    key.public.validate_ciphertext(gmpy2.mpz(c))
    assert key.decrypt(gmpy2.mpz(c)) == 42
    assert PaillierPublicKey(gmpy2.mpz(key.n)) == key.public
    assert isinstance(PaillierPublicKey(gmpy2.mpz(key.n)).n, int)
    with pytest.raises(VerificationError):
        key.public.validate_ciphertext(True)  # type: ignore[arg-type]
