"""Uniform integers drawn from a caller-supplied random source.

Every sampler here uses rejection sampling over bytes from a
:data:`~shardvault.crypto.rng.RandomSource`, so the result is exactly uniform on its range
(no modular bias). CGGMP21 (ePrint 2021/060) samples its proof nonces from intervals
``±2^bits`` and its Paillier nonces from ``Z*_N``; these helpers serve both.
"""

import gmpy2

from shardvault.crypto.errors import MisuseError
from shardvault.crypto.rng import RandomSource

_MAX_TRIES = 256
"""Rejection sampling fails with probability at most 1/2 per try; 256 tries in a row
failing has probability below 2**-256 and is treated as a broken random source."""


def random_below(bound: int, rng: RandomSource) -> int:
    """A uniform integer in ``[0, bound)``.

    Raises:
        MisuseError: if ``bound`` is not positive or the random source looks broken.
    """
    if bound < 1:
        raise MisuseError("random_below needs a positive bound")
    bits = (bound - 1).bit_length()
    if bits == 0:
        return 0
    nbytes = (bits + 7) // 8
    excess = nbytes * 8 - bits
    for _ in range(_MAX_TRIES):
        candidate = int.from_bytes(rng(nbytes), "big") >> excess
        if candidate < bound:
            return candidate
    raise MisuseError("random source returned out-of-range values 256 times in a row")


def random_bits(bits: int, rng: RandomSource) -> int:
    """A uniform integer in ``[0, 2^bits)``."""
    return random_below(1 << bits, rng)


def random_signed(bits: int, rng: RandomSource) -> int:
    """A uniform integer in the closed interval ``[-2^bits, 2^bits]`` (CGGMP21's ``±2^ℓ``)."""
    bound = 1 << bits
    return random_below(2 * bound + 1, rng) - bound


def random_unit_mod(n: int, rng: RandomSource) -> int:
    """A uniform element of ``Z*_n``: in ``[1, n)`` and coprime to ``n``.

    Raises:
        MisuseError: if ``n < 2`` or no unit was found (a broken random source, or an ``n``
            whose units are a negligible fraction, which no valid modulus has).
    """
    if n < 2:
        raise MisuseError("random_unit_mod needs a modulus of at least 2")
    for _ in range(_MAX_TRIES):
        candidate = random_below(n, rng)
        if candidate != 0 and gmpy2.gcd(candidate, n) == 1:
            return candidate
    raise MisuseError("no unit found modulo n after 256 draws")


def is_integer(value: object) -> bool:
    """True for a Python ``int`` (not ``bool``) or a GMP ``mpz``: what the arithmetic
    modules accept as an integer from callers that compute with gmpy2."""
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, gmpy2.mpz)
