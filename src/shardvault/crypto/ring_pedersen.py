"""Ring-Pedersen commitment parameters ``(N, s, t)``.

Source: CGGMP21 (ePrint 2021/060) §3 "Ring-Pedersen parameters" and Figure 7 (auxiliary
info, round 1): with ``N = p·q`` a product of safe primes, sample ``r ← Z*_N`` and
``λ ← Z_φ(N)``, set ``t = r² mod N`` and ``s = t^λ mod N``. A commitment to ``(x, y)`` is
``s^x · t^y mod N``; the verifier of the range proofs in presigning (Πenc, Πaff-g, Πlog*)
uses its own parameters, which every peer checked with Πprm (``s ∈ ⟨t⟩``) before use.
CVE-2020-12118 is what happens when ``s`` and ``t`` go unproven.
"""

from dataclasses import dataclass, field
from typing import Self

import gmpy2

from shardvault.crypto._sampling import is_integer, random_below, random_unit_mod
from shardvault.crypto.errors import EncodingError, MisuseError, VerificationError
from shardvault.crypto.rng import RandomSource

_HEX_DIGIT = {c: i for i, c in enumerate("0123456789abcdef")}

DEFAULT_TABLE_BITS = 4096
"""Exponent length covered by :meth:`RingPedersenParams.precompute` by default: enough for
every ring-Pedersen exponent of CGGMP21's range proofs at 2048-bit moduli (the largest is
about ``ℓ' + ε + log N̂`` bits); longer exponents fall back to ``powmod``."""


class FixedBaseTable:
    """Powers of one base modulo ``N`` for fixed-base exponentiation (4-bit windows).

    Row ``i`` holds ``base^(d·16^i)`` for ``d < 16``, so ``base^e`` is one multiplication per
    non-zero hexadecimal digit of ``e``: about three times faster than ``powmod`` for
    2000-3000-bit exponents, at about 4 MB per base for 4096-bit exponents.
    """

    __slots__ = ("_max_bits", "_modulus", "_rows")

    def __init__(self, base: int, modulus: int, max_bits: int = DEFAULT_TABLE_BITS) -> None:
        n = gmpy2.mpz(modulus)
        x = gmpy2.mpz(base) % n
        rows = []
        for _ in range((max_bits + 3) // 4):
            row = [gmpy2.mpz(1), x]
            for _ in range(14):
                row.append(row[-1] * x % n)
            rows.append(tuple(row))
            x = row[-1] * x % n
        self._rows = tuple(rows)
        self._modulus = n
        self._max_bits = max_bits

    def power(self, exponent: int) -> int:
        """``base^exponent mod N``; negative exponents through the inverse.

        Raises:
            ValueError or ZeroDivisionError: a negative exponent and a base that is not a
                unit (callers translate this).
        """
        n = self._modulus
        magnitude = -exponent if exponent < 0 else exponent
        if magnitude.bit_length() > self._max_bits:
            return int(gmpy2.powmod(self._rows[0][1], exponent, n))
        acc = gmpy2.mpz(1)
        for row, digit in zip(self._rows, reversed(format(magnitude, "x")), strict=False):
            if digit != "0":
                acc = acc * row[_HEX_DIGIT[digit]] % n
        if exponent < 0:
            acc = gmpy2.invert(acc, n)
        return int(acc)


@dataclass(frozen=True, slots=True)
class RingPedersenParams:
    """Public ring-Pedersen parameters: modulus ``n`` and bases ``s``, ``t``.

    Construction checks only types; :meth:`validate` checks that the bases are non-trivial
    units, and Πprm (``shardvault.crypto.zk.prm``) proves ``s ∈ ⟨t⟩``.
    """

    n: int
    s: int
    t: int
    _n: int = field(init=False, repr=False, compare=False)
    _s: int = field(init=False, repr=False, compare=False)
    _t: int = field(init=False, repr=False, compare=False)
    _tables: tuple[FixedBaseTable, FixedBaseTable] | None = field(
        init=False, repr=False, compare=False, default=None
    )

    def __post_init__(self) -> None:
        for name in ("n", "s", "t"):
            value = getattr(self, name)
            if not is_integer(value) or value < 0:
                raise EncodingError(f"ring-Pedersen {name} must be a non-negative integer")
            object.__setattr__(self, name, int(value))
            object.__setattr__(self, "_" + name, gmpy2.mpz(value))

    def validate(self) -> None:
        """Check ``N`` odd and ``s``, ``t`` in ``Z*_N`` and different from ``0, ±1``.

        Raises:
            VerificationError: naming the failed check.
        """
        n = self._n
        if n < 257 or n % 2 == 0:
            raise VerificationError("ring-Pedersen modulus is not an odd integer above 256")
        for name, base in (("s", self._s), ("t", self._t)):
            if not 1 < base < n - 1:
                raise VerificationError(f"ring-Pedersen base {name} is not in (1, N-1)")
            if gmpy2.gcd(base, n) != 1:
                raise VerificationError(f"ring-Pedersen base {name} is not in Z*_N")

    def commit(self, x: int, y: int) -> int:
        """``s^x · t^y mod N``; negative exponents use the inverses of ``s`` and ``t``.

        Raises:
            VerificationError: if a negative exponent meets a non-invertible base (a base
                that :meth:`validate` would have rejected).
        """
        try:
            tables = self._tables
            if tables is not None:
                return tables[0].power(x) * tables[1].power(y) % self.n
            return int(
                gmpy2.powmod(self._s, x, self._n) * gmpy2.powmod(self._t, y, self._n) % self._n
            )
        except (ValueError, ZeroDivisionError):
            raise VerificationError("ring-Pedersen base is not invertible") from None

    def precompute(self, max_exponent_bits: int = DEFAULT_TABLE_BITS) -> None:
        """Build fixed-base tables for ``s`` and ``t`` so that :meth:`commit` runs about
        three times faster; worth it for parameters used in many proofs (a peer's, during
        presigning). Costs about 60 ms and 8 MB at 2048 bits. Idempotent.

        Raises:
            VerificationError: if the parameters fail :meth:`validate`.
        """
        if self._tables is not None:
            return
        self.validate()
        tables = (
            FixedBaseTable(self.s, self.n, max_exponent_bits),
            FixedBaseTable(self.t, self.n, max_exponent_bits),
        )
        object.__setattr__(self, "_tables", tables)

    def power(self, base: int, exponent: int) -> int:
        """``base^exponent mod N`` (negative exponents through the inverse), for verifiers
        that combine a commitment with a challenge power.

        Raises:
            VerificationError: if ``exponent`` is negative and ``base`` is not a unit.
        """
        try:
            return int(gmpy2.powmod(base, exponent, self._n))
        except (ValueError, ZeroDivisionError):
            raise VerificationError("value is not invertible modulo N") from None

    def to_bytes(self) -> bytes:
        """``N``, ``s``, ``t`` as 4-byte-length-prefixed big-endian integers."""
        out = b""
        for value in (self.n, self.s, self.t):
            raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
            out += len(raw).to_bytes(4, "big") + raw
        return out

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode :meth:`to_bytes` output (no validation beyond framing).

        Raises:
            EncodingError: if the framing is wrong or an integer is not canonical.
        """
        values: list[int] = []
        offset = 0
        for name in ("n", "s", "t"):
            if len(data) < offset + 4:
                raise EncodingError(f"ring-Pedersen parameters truncated before {name}")
            length = int.from_bytes(data[offset : offset + 4], "big")
            offset += 4
            raw = data[offset : offset + length]
            if len(raw) != length or not raw or raw[0] == 0:
                raise EncodingError(f"ring-Pedersen {name} is truncated or not canonical")
            values.append(int.from_bytes(raw, "big"))
            offset += length
        if offset != len(data):
            raise EncodingError("trailing bytes after ring-Pedersen parameters")
        return cls(values[0], values[1], values[2])


@dataclass(frozen=True, slots=True, repr=False)
class RingPedersenSecret:
    """The trapdoor of ring-Pedersen parameters: ``λ`` with ``t^λ = s``, and ``φ(N)``;
    optionally the primes ``p``, ``q`` of ``N``, which let Πprm's prover use the CRT.

    Security: with ``λ`` a prover could equivocate commitments and forge every range proof
    verified against these parameters. It is needed only to prove Πprm; drop it after.
    """

    lambda_: int
    phi: int
    p: int | None = None
    q: int | None = None

    def __repr__(self) -> str:
        return "RingPedersenSecret(<redacted>)"


def generate(p: int, q: int, rng: RandomSource) -> tuple[RingPedersenParams, RingPedersenSecret]:
    """Fresh ring-Pedersen parameters over ``N = p·q`` (CGGMP21 Figure 7, round 1).

    ``p`` and ``q`` must be safe primes (the caller's Paillier key already checked that).

    Raises:
        MisuseError: if ``p == q``.
    """
    if p == q:
        raise MisuseError("ring-Pedersen primes must be distinct")
    n = p * q
    phi = (p - 1) * (q - 1)
    while True:
        # Figure 7: r ← Z*_N, λ ← Z_φ(N), t = r² mod N, s = t^λ mod N. A t of order below
        # p'q' (probability about 2/p' + 2/q') or λ = 0 would make trivial parameters.
        r = random_unit_mod(n, rng)
        t = int(gmpy2.powmod(r, 2, n))
        lam = random_below(phi, rng)
        s = int(gmpy2.powmod(t, lam, n))
        if t in (1, n - 1) or s in (0, 1, n - 1) or lam == 0:
            continue
        return RingPedersenParams(n, s, t), RingPedersenSecret(lam, phi, p, q)
