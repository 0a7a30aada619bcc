"""What every CGGMP21 presigning proof binds, its security parameters, and shared helpers.

Source: CGGMP21 (Canetti, Gennaro, Goldfeder, Makriyannis, Peled; ePrint 2021/060), §2
"Preliminaries" (the range notation ``±2^ℓ``) and §6 / the parameters paragraph of the
presigning section: ``ℓ = |q|``, ``ℓ' = 5ℓ``, ``ε = 2ℓ`` for secp256k1 (``q`` the group
order), with Paillier moduli of at least ``8ℓ = 2048`` bits.

Fiat-Shamir (§2.3 "ZK module" and Figure 2 for the challenge distribution): each proof's
challenge ``e ← ±q`` is read from a :class:`~shardvault.crypto.transcript.Transcript`
whose domain names the proof, and which absorbs the session id, the prover's id, the curve
and a digest of every party's auxiliary information (Paillier modulus and ring-Pedersen
parameters), then the statement and the prover's first message. A proof made for one
session, prover, verifier set or curve therefore fails in any other (TSSHOCK, Alpha-Rays).

Figure numbers in this package follow the 2021-2022 revisions of ePrint 2021/060, which
present the three-round presigning with Πenc/Πaff-g/Πlog*: Figure 5 key generation,
Figure 6 auxiliary info and key refresh, Figure 7 presigning, Figure 8 signing, Figure 14
Πenc, Figure 15 Πaff-g, Figure 22 Πsch, Figure 25 Πlog*, Figure 30 Πdec, Figure 31 Πmul*.
Later revisions renumber the figures (and replace Πenc by an ElGamal-based variant); the
proof names are stable.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import gmpy2

from shardvault.crypto.errors import VerificationError
from shardvault.crypto.transcript import Transcript

ELL = 256
"""``ℓ``: bit bound of the honest plaintexts ``k``, ``γ``, ``x`` (``2^ℓ ≥ q``)."""

ELL_PRIME = 5 * ELL
"""``ℓ' = 5ℓ``: bit bound of the additive masks ``β`` in Πaff-g."""

EPSILON = 2 * ELL
"""``ε = 2ℓ``: slack between what honest provers choose and what the proofs guarantee."""

MIN_PAILLIER_BITS = 8 * ELL
"""Paillier moduli the proofs assume: at least ``8ℓ`` bits, so ``±2^(ℓ'+ε)`` fits."""


@dataclass(frozen=True, slots=True)
class ProofContext:
    """What a proof's challenge is bound to, besides its statement.

    ``binding`` is a digest computed once per session by the protocol over the party set
    and every party's auxiliary information (see :func:`aux_binding`); ``prover`` is the id
    of the party that made the proof; ``curve`` names the elliptic curve.
    """

    session_id: bytes
    prover: int
    curve: str
    binding: bytes

    def transcript(self, proof: str) -> Transcript:
        """A fresh transcript for ``proof`` with the context absorbed."""
        t = Transcript(f"shardvault/cggmp21/zk/{proof}")
        t.append("session_id", self.session_id)
        t.append_int("prover", self.prover)
        t.append("curve", self.curve.encode())
        t.append("aux_binding", self.binding)
        return t


def aux_binding(parties: list[tuple[int, int, int, int]]) -> bytes:
    """Digest of the party set and each party's ``(id, N, s, t)`` auxiliary information."""
    t = Transcript("shardvault/cggmp21/aux-binding")
    t.append_int("parties", len(parties))
    for party, n, s, t_base in sorted(parties):
        t.append_ints(f"aux/{party}", [party, n, s, t_base])
    return t.challenge_bytes("binding", 32)


def check_signed_range(value: int, bits: int, what: str) -> None:
    """Check ``value ∈ ±2^bits`` (the closed interval ``[-2^bits, 2^bits]``).

    Raises:
        VerificationError: out of range, naming ``what``.
    """
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) > (1 << bits):
        raise VerificationError(f"{what} is outside ±2^{bits}")


def commitment_response_bits(nonce_bits: int, modulus_bits: int) -> int:
    """Bit bound of a ring-Pedersen response ``z = γ + e·m`` (Figures 14, 15, 25, 30, 31).

    An honest prover draws ``γ ∈ ±2^nonce_bits·N̂`` and ``m ∈ ±2^ℓ·N̂``, and ``e ∈ ±q ⊂ ±2^ℓ``,
    so ``|z| ≤ 2^(nonce_bits + |N̂|) + 2^(2ℓ + |N̂|) ≤ 2^(max(nonce_bits, 2ℓ) + |N̂| + 1)``.
    The paper checks no range on these responses (any integer satisfies the commitment
    equation's soundness argument); the bound only keeps a peer's value from costing an
    exponentiation longer than an honest one.
    """
    return max(nonce_bits, 2 * ELL) + modulus_bits + 1


def check_unit(value: int, n: int, what: str) -> None:
    """Check ``value ∈ Z*_n``.

    Raises:
        VerificationError: otherwise, naming ``what``.
    """
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not 0 < value < n
        or gmpy2.gcd(value, n) != 1
    ):
        raise VerificationError(f"{what} is not in Z*_N")


def check_ciphertext(value: int, n_squared: int, n: int, what: str) -> None:
    """Check a Paillier ciphertext lies in ``Z*_{N²}``.

    Raises:
        VerificationError: otherwise, naming ``what``.
    """
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not 0 < value < n_squared
        or gmpy2.gcd(value, n) != 1
    ):
        raise VerificationError(f"{what} is not a ciphertext in Z*_(N^2)")


class CrtExp:
    """Exponentiation modulo ``N = p·q`` through the CRT, for the owner of ``N``.

    A verifier checks ring-Pedersen equations modulo its *own* ``N̂``; knowing ``p`` and
    ``q`` it reduces exponents modulo ``p - 1`` and ``q - 1`` and works modulo the halves,
    which turns a 2300-bit exponent modulo 2048 bits into two 1024-bit exponents modulo
    1024 bits (LFDT-Lockness/cggmp21 spec, "Using the Chinese Remainder Theorem").

    Security: holds the factorisation of the party's modulus; never serialised.
    """

    __slots__ = (
        "_n",
        "_n2",
        "_p",
        "_p1",
        "_pp",
        "_pp1",
        "_q",
        "_q1",
        "_q_inv_p",
        "_qq",
        "_qq1",
        "_qq_inv_pp",
    )

    def __init__(self, p: int, q: int) -> None:
        self._p = gmpy2.mpz(p)
        self._q = gmpy2.mpz(q)
        self._p1 = self._p - 1
        self._q1 = self._q - 1
        self._n = self._p * self._q
        self._q_inv_p = gmpy2.invert(self._q, self._p)
        # Modulo p² and q²: the unit groups have orders p(p-1) and q(q-1).
        self._pp = self._p * self._p
        self._qq = self._q * self._q
        self._pp1 = self._p * self._p1
        self._qq1 = self._q * self._q1
        self._n2 = self._n * self._n
        self._qq_inv_pp = gmpy2.invert(self._qq, self._pp)

    def __repr__(self) -> str:
        return "CrtExp(<redacted>)"

    @property
    def n(self) -> int:
        """The modulus ``N``."""
        return int(self._n)

    def pow2(self, a: int, x: int, b: int, y: int) -> int:
        """``a^x · b^y mod N`` for units ``a``, ``b`` (exponents of any sign)."""
        p, q = self._p, self._q
        xp = gmpy2.powmod(a, x % self._p1, p) * gmpy2.powmod(b, y % self._p1, p) % p
        xq = gmpy2.powmod(a, x % self._q1, q) * gmpy2.powmod(b, y % self._q1, q) % q
        return int(xq + q * ((xp - xq) * self._q_inv_p % p))

    def pow2_squared(self, a: int, x: int, b: int, y: int) -> int:
        """``a^x · b^y mod N²`` for units ``a``, ``b`` modulo ``N²``."""
        pp, qq = self._pp, self._qq
        xp = gmpy2.powmod(a, x % self._pp1, pp) * gmpy2.powmod(b, y % self._pp1, pp) % pp
        xq = gmpy2.powmod(a, x % self._qq1, qq) * gmpy2.powmod(b, y % self._qq1, qq) % qq
        return int(xq + qq * ((xp - xq) * self._qq_inv_pp % pp))


def pow2(a: int, x: int, b: int, y: int, n: int, crt: CrtExp | None = None) -> int:
    """``a^x · b^y mod n``, through ``crt`` when its modulus is ``n``.

    Raises:
        VerificationError: a negative exponent on a base that is not a unit.
    """
    if crt is not None and crt.n == n:
        return crt.pow2(a, x, b, y)
    try:
        return int(gmpy2.powmod(a, x, n) * gmpy2.powmod(b, y, n) % n)
    except ZeroDivisionError:
        raise VerificationError("value is not invertible modulo N") from None


def paillier_enc(n: int, n_squared: int, m: int, rho_power: int) -> int:
    """``(1 + N)^m · ρ^N mod N²`` given ``ρ^N mod N²`` (``rho_power``); ``m`` of any sign."""
    return int((1 + (m % n) * n) * rho_power % n_squared)


def powmod(base: int, exponent: int, modulus: int) -> int:
    """``base^exponent mod modulus`` with GMP (negative exponents invert first).

    Raises:
        VerificationError: a negative exponent on a base that is not a unit.
    """
    try:
        return int(gmpy2.powmod(base, exponent, modulus))
    except ZeroDivisionError:
        raise VerificationError("value is not invertible") from None


COMMITMENT_EXPONENT_BITS = ELL + EPSILON + 3072 + 64
"""Largest ring-Pedersen exponent the fixed-base tables cover: ``ℓ + ε + |N̂|`` for moduli
up to 3072 bits, plus margin. Larger exponents fall back to ``powmod``."""

_WINDOW = 4


class FixedBaseTable:
    """Fixed-base exponentiation ``base^x mod n`` with a precomputed comb of window 4.

    Row ``i`` holds ``base^(j·16^i)`` for ``j < 16``, so ``base^x`` costs one modular
    multiplication per non-zero hexadecimal digit of ``x`` instead of GMP's ~1.2 per bit.
    A prover commits under each verifier's ring-Pedersen bases ``s``, ``t`` many times per
    presignature (exponents up to ``ℓ + ε + |N̂|`` bits), so the table, built once per
    verifier and reused across presignatures, pays for itself within one presigning run
    (the issue's "fixed-base tables for ring-Pedersen bases").
    """

    __slots__ = ("_modulus", "_rows")

    def __init__(self, base: int, modulus: int, max_bits: int) -> None:
        n = gmpy2.mpz(modulus)
        rows: list[list[gmpy2.mpz]] = []
        current = gmpy2.mpz(base) % n
        for _ in range((max_bits + _WINDOW - 1) // _WINDOW):
            row = [gmpy2.mpz(1), current]
            for _ in range(2, 1 << _WINDOW):
                row.append(row[-1] * current % n)
            rows.append(row)
            current = row[-1] * current % n
        self._rows = rows
        self._modulus = n

    def pow(self, exponent: int) -> int:
        """``base^exponent mod n`` (a negative exponent inverts the result).

        Raises:
            VerificationError: a negative exponent and a base that is not a unit.
        """
        n = self._modulus
        magnitude = -exponent if exponent < 0 else exponent
        if magnitude.bit_length() > len(self._rows) * _WINDOW:
            return powmod(int(self._rows[0][1]), exponent, int(n))
        result = gmpy2.mpz(1)
        rows = self._rows
        index = 0
        while magnitude:
            digit = magnitude & 0xF
            if digit:
                result = result * rows[index][digit] % n
            magnitude >>= _WINDOW
            index += 1
        if exponent < 0:
            try:
                result = gmpy2.invert(result, n)
            except ZeroDivisionError:
                raise VerificationError("value is not invertible modulo N") from None
        return int(result)


@functools.lru_cache(maxsize=8)
def _commitment_tables(n: int, s: int, t: int) -> tuple[FixedBaseTable, FixedBaseTable]:
    bits = max(COMMITMENT_EXPONENT_BITS, ELL + EPSILON + n.bit_length() + 64)
    return FixedBaseTable(s, n, bits), FixedBaseTable(t, n, bits)


def commit(n: int, s: int, t: int, x: int, y: int) -> int:
    """The ring-Pedersen commitment ``s^x · t^y mod N`` through cached fixed-base tables.

    For the prover's commitments under a verifier's public parameters (whose factorisation
    it does not know). The tables of the last few parameter sets are kept (about 6 MB each).

    Raises:
        VerificationError: a negative exponent on a base that is not a unit.
    """
    table_s, table_t = _commitment_tables(n, s, t)
    return table_s.pow(x) * table_t.pow(y) % n
