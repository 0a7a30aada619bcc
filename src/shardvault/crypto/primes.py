"""Safe-prime generation for Paillier-Blum moduli.

CGGMP21 (ePrint 2021/060, §3 "Paillier-Blum modulus" and Figure 7, auxiliary info, step 1)
asks each party for ``N = p·q`` where ``p`` and ``q`` are safe primes (``p = 2p' + 1`` with
``p'`` prime) and ``p ≡ q ≡ 3 (mod 4)``, so that ``N`` is a Paillier-Blum modulus and the
ring-Pedersen group ``QR_N`` is cyclic of order ``p'q'``. Every safe prime ``2p' + 1`` with
an odd ``p'`` is already ``≡ 3 (mod 4)``, so safe primes are Blum primes for free.

Search method: a random odd start ``p'_0`` with its two top bits set (so that ``N`` has
exactly twice the prime length), then an incremental search over a window of candidates
``p'_0 + 2i``. A sieve over the small primes ``ℓ < 2^16`` removes every ``i`` for which
``ℓ`` divides ``p'`` or ``2p' + 1``; the survivors get a base-2 Fermat test on ``p'`` and on
``p``, and the rare pair passing both gets the full probabilistic test of GMP
(``gmpy2.is_prime`` with 40 Miller-Rabin rounds on each). Incremental search from a random
start is the method OpenSSL uses for safe primes; its small bias towards primes after long
gaps does not help factoring ``N``.

Speed: a 1024-bit safe prime (for a 2048-bit modulus) takes seconds to a minute on one core
of this project's machine; a 1536-bit one, minutes. Production code therefore runs the
search in a process pool (:func:`generate_safe_primes_parallel`), reporting progress through
a callback, and tests use fixtures made once by ``scripts/gen_test_fixtures.py``.
"""

import multiprocessing
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass

import gmpy2

from shardvault.crypto._sampling import random_bits
from shardvault.crypto.errors import MisuseError
from shardvault.crypto.rng import RandomSource

SIEVE_BOUND = 1 << 16
"""Small primes below this bound are sieved out of both ``p'`` and ``2p' + 1``."""

WINDOW = 1 << 14
"""Number of candidates ``p'_0 + 2i`` examined per sieved window."""

MILLER_RABIN_ROUNDS = 40
"""Rounds of GMP's Miller-Rabin test on a final candidate: error below ``2^-80``."""

MIN_PRIME_BITS = 64
"""Smallest prime length this module generates; anything smaller is a misuse."""


def _small_primes() -> tuple[int, ...]:
    primes: list[int] = []
    candidate = gmpy2.mpz(3)
    while candidate < SIEVE_BOUND:
        primes.append(int(candidate))
        candidate = gmpy2.next_prime(candidate)
    return tuple(primes)


_SMALL_PRIMES = _small_primes()
# For each small prime ℓ: the inverses of 2 and 4 modulo ℓ, used to place the sieve marks.
_SIEVE_TABLE = tuple((ell, pow(2, -1, ell), pow(4, -1, ell)) for ell in _SMALL_PRIMES)


@dataclass(frozen=True, slots=True)
class SearchProgress:
    """Progress of one safe-prime search, reported after every sieved window.

    ``windows`` counts sieved windows so far and ``fermat_tests`` the exponentiations spent;
    ``found`` is true on the final report.
    """

    bits: int
    windows: int
    fermat_tests: int
    found: bool


@dataclass(frozen=True, slots=True)
class PoolProgress:
    """Progress of a pooled generation: ``done`` of ``total`` safe primes found."""

    bits: int
    done: int
    total: int


def is_safe_prime(p: int, rounds: int = MILLER_RABIN_ROUNDS) -> bool:
    """True if ``p`` and ``(p - 1) / 2`` are both (probable) primes, ``p > 5``."""
    if p < 7 or p % 4 != 3:
        # Every safe prime above 5 is 3 mod 4 because its half p' is odd; 5 is rejected
        # as too small to matter.
        return False
    half = (p - 1) // 2
    return bool(gmpy2.is_prime(half, rounds)) and bool(gmpy2.is_prime(p, rounds))


def _sieve_window(start: int) -> bytearray:
    """Mark with 1 each ``i < WINDOW`` where neither ``start + 2i`` nor ``2(start + 2i) + 1``
    has a factor below :data:`SIEVE_BOUND`."""
    sieve = bytearray(b"\x01") * WINDOW
    for ell, inv2, inv4 in _SIEVE_TABLE:
        r = start % ell
        # start + 2i ≡ 0 (mod ℓ)  ⇔  i ≡ -r · 2^-1 (mod ℓ).
        first = (-r * inv2) % ell
        sieve[first::ell] = bytes(len(range(first, WINDOW, ell)))
        # 2(start + 2i) + 1 ≡ 0 (mod ℓ)  ⇔  i ≡ -(2r + 1) · 4^-1 (mod ℓ).
        second = (-(2 * r + 1) * inv4) % ell
        sieve[second::ell] = bytes(len(range(second, WINDOW, ell)))
    return sieve


def generate_safe_prime(
    bits: int,
    rng: RandomSource,
    on_progress: Callable[[SearchProgress], None] | None = None,
) -> int:
    """A random safe prime ``p`` of exactly ``bits`` bits with its two top bits set.

    The result is a Blum prime (``p ≡ 3 mod 4``). ``on_progress`` is called after every
    sieved window and once more when the prime is found.

    Raises:
        MisuseError: if ``bits`` is below :data:`MIN_PRIME_BITS`.
    """
    if bits < MIN_PRIME_BITS:
        raise MisuseError(f"safe primes shorter than {MIN_PRIME_BITS} bits are not generated")
    half_bits = bits - 1
    top = 0b11 << (half_bits - 2)
    windows = 0
    fermat_tests = 0
    two = gmpy2.mpz(2)
    while True:
        # A fresh random start p'_0: top two bits set, odd. The window must not overflow
        # half_bits bits; restart if it would.
        start = random_bits(half_bits, rng) | top | 1
        if start + 2 * WINDOW >= 1 << half_bits:
            continue
        sieve = _sieve_window(start)
        windows += 1
        index = sieve.find(1)
        while index != -1:
            half = gmpy2.mpz(start + 2 * index)
            fermat_tests += 1
            if gmpy2.powmod(two, half - 1, half) == 1:
                p = 2 * half + 1
                fermat_tests += 1
                if gmpy2.powmod(two, p - 1, p) == 1 and is_safe_prime(int(p)):
                    if on_progress is not None:
                        on_progress(SearchProgress(bits, windows, fermat_tests, True))
                    return int(p)
            index = sieve.find(1, index + 1)
        if on_progress is not None:
            on_progress(SearchProgress(bits, windows, fermat_tests, False))


def generate_safe_primes_parallel(
    bits: int,
    count: int,
    rng: RandomSource,
    *,
    workers: int = 2,
    on_progress: Callable[[PoolProgress], None] | None = None,
) -> list[int]:
    """``count`` distinct safe primes of ``bits`` bits, searched in a pool of processes.

    Each search runs :func:`generate_safe_prime` in a worker process; ``on_progress`` is
    called in the calling process each time one finishes. Workers start from a fork server,
    so this is safe to call from a threaded service. ``rng`` is sent to the workers,
    so it must be picklable: pass :data:`~shardvault.crypto.rng.system_random` (a seeded
    test source would make all workers draw the same primes; duplicates are discarded and
    searched again, but do not rely on that for anything but tests).

    Raises:
        MisuseError: if ``count`` or ``workers`` is not positive, or ``bits`` is too small.
    """
    if count < 1 or workers < 1:
        raise MisuseError("count and workers must be positive")
    if bits < MIN_PRIME_BITS:
        raise MisuseError(f"safe primes shorter than {MIN_PRIME_BITS} bits are not generated")
    found: list[int] = []
    # A fork server rather than a plain fork: callers may be threaded services, and forking
    # a threaded process can copy held locks into the children.
    context = multiprocessing.get_context("forkserver")
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            pending: set[Future[int]] = {
                pool.submit(generate_safe_prime, bits, rng) for _ in range(min(count, workers))
            }
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    _keep(found, future.result(), count, bits, on_progress)
                missing = count - len(found) - len(pending)
                for _ in range(max(0, missing)):
                    pending.add(pool.submit(generate_safe_prime, bits, rng))
    except OSError:
        # No helper process can be started here (a sandbox, or an interpreter this OS
        # user may run but not start again): search in this process, one after another.
        while len(found) < count:
            _keep(found, generate_safe_prime(bits, rng), count, bits, on_progress)
    return found


def _keep(
    found: list[int],
    prime: int,
    count: int,
    bits: int,
    on_progress: Callable[[PoolProgress], None] | None,
) -> None:
    """Add ``prime`` to ``found`` unless it is a duplicate or enough were found."""
    if prime not in found and len(found) < count:
        found.append(prime)
        if on_progress is not None:
            on_progress(PoolProgress(bits, len(found), count))


def generate_paillier_blum_primes(
    modulus_bits: int,
    rng: RandomSource,
    *,
    workers: int = 2,
    on_progress: Callable[[PoolProgress], None] | None = None,
) -> tuple[int, int]:
    """Two distinct safe primes ``(p, q)`` whose product has exactly ``modulus_bits`` bits.

    Raises:
        MisuseError: if ``modulus_bits`` is odd or too small.
    """
    if modulus_bits % 2 != 0:
        raise MisuseError("the modulus length must be even")
    p, q = generate_safe_primes_parallel(
        modulus_bits // 2, 2, rng, workers=workers, on_progress=on_progress
    )
    return p, q
