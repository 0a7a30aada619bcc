"""The Paillier cryptosystem over Paillier-Blum moduli, as CGGMP21 uses it.

Source: CGGMP21 (Canetti, Gennaro, Goldfeder, Makriyannis, Peled, ePrint 2021/060),
§2.3 "Paillier encryption": for ``N = p·q``, ``enc(m; ρ) = (1 + N)^m · ρ^N mod N²`` with
``ρ ∈ Z*_N``, and ``dec`` returns the plaintext as the representative in ``±N/2`` (the paper
treats plaintexts as signed integers, and so do its range proofs). ``N`` is a
Paillier-Blum modulus (§3 "Paillier-Blum modulus"): ``p ≡ q ≡ 3 (mod 4)``; shardvault
further takes ``p`` and ``q`` to be safe primes, as the auxiliary-info phase (Figure 7)
requires for the ring-Pedersen parameters.

Arithmetic is GMP's (``gmpy2``). The key owner's operations use the Chinese remainder
theorem over ``p²`` and ``q²``: decryption (Paillier's original CRT decryption) and
``ρ^N mod N²``, which presigning computes for every ciphertext its owner makes.
"""

from dataclasses import dataclass, field
from typing import Self

import gmpy2

from shardvault.crypto._sampling import is_integer, random_unit_mod
from shardvault.crypto.errors import EncodingError, MisuseError, VerificationError
from shardvault.crypto.primes import is_safe_prime
from shardvault.crypto.rng import RandomSource

MIN_MODULUS_BITS = 2048
"""Smallest Paillier modulus accepted by default (CGGMP21 §6 parameters; Alpha-Rays showed
what small moduli cost). Lower bounds exist only for tests and need ``unsafe_test_only``."""

MAX_MODULUS_BITS = 4096
"""Largest Paillier or ring-Pedersen modulus accepted from a peer: twice the default size.
It leaves room for parties that choose 3072- or 4096-bit keys, while capping what one
peer's modulus can cost every verifier: Πmod exponentiates by ``N`` modulo ``N`` 128 times,
and the range proofs' exponents grow with ``|N̂|``, so the cost grows about with the cube of
the size (8× a 2048-bit modulus at the cap, instead of unbounded up to the message limit)."""


def check_min_modulus_bits(min_modulus_bits: int, *, unsafe_test_only: bool) -> None:
    """Refuse a lowered modulus bound unless the caller said it is for tests only.

    Raises:
        MisuseError: if ``min_modulus_bits`` is below :data:`MIN_MODULUS_BITS` without
            ``unsafe_test_only``.
    """
    if min_modulus_bits < MIN_MODULUS_BITS and not unsafe_test_only:
        raise MisuseError(
            f"a minimum modulus of {min_modulus_bits} bits is below {MIN_MODULUS_BITS} "
            "and is allowed only with unsafe_test_only=True"
        )


def _int_to_bytes(value: int) -> bytes:
    return int(value).to_bytes((int(value).bit_length() + 7) // 8, "big")


def _canonical_int(data: bytes, what: str) -> int:
    # A canonical encoding is non-empty and has no leading zero byte.
    if not data or data[0] == 0:
        raise EncodingError(f"{what} is empty or has a leading zero byte")
    return int.from_bytes(data, "big")


@dataclass(frozen=True, slots=True)
class PaillierPublicKey:
    """A Paillier public key: the modulus ``N`` (``n``) and its square (``n_squared``).

    Constructing one checks only that ``N`` is odd and above ``2^8``; the auxiliary-info
    phase verifies size, Blum structure and the absence of small factors with proofs
    before a peer's key is used.
    """

    n: int
    n_squared: int = field(init=False, repr=False, compare=False)
    _n: int = field(init=False, repr=False, compare=False)
    _nn: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not is_integer(self.n) or self.n < 257 or self.n % 2 == 0:
            raise EncodingError("a Paillier modulus must be an odd integer above 256")
        n = gmpy2.mpz(self.n)
        object.__setattr__(self, "n", int(self.n))
        object.__setattr__(self, "n_squared", int(n * n))
        object.__setattr__(self, "_n", n)
        object.__setattr__(self, "_nn", n * n)

    @property
    def bits(self) -> int:
        """Length of ``N`` in bits."""
        return self.n.bit_length()

    def encrypt(self, m: int, rng: RandomSource) -> tuple[int, int]:
        """Encrypt ``m`` (any integer, taken modulo ``N``) with a fresh nonce.

        Returns ``(ciphertext, rho)``; keep ``rho`` only as long as a proof needs it.
        """
        rho = random_unit_mod(self.n, rng)
        return self.encrypt_with_nonce(m, rho), rho

    def encrypt_with_nonce(self, m: int, rho: int) -> int:
        """``(1 + N)^m · ρ^N mod N²`` (CGGMP21 §2.3); ``(1 + N)^m = 1 + (m mod N)·N``."""
        n, nn = self._n, self._nn
        return int((1 + (m % n) * n) * gmpy2.powmod(rho, n, nn) % nn)

    def add(self, c1: int, c2: int) -> int:
        """The ciphertext of the sum: ``c1 · c2 mod N²``."""
        return int(gmpy2.mpz(c1) * c2 % self._nn)

    def scalar_mul(self, c: int, k: int) -> int:
        """The ciphertext of ``k`` times the plaintext: ``c^k mod N²`` (``k`` may be negative).

        Raises:
            VerificationError: if ``k`` is negative and ``c`` is not invertible mod ``N²``.
        """
        try:
            return int(gmpy2.powmod(c, k, self._nn))
        except (ValueError, ZeroDivisionError):
            raise VerificationError("ciphertext is not invertible modulo N^2") from None

    def validate_ciphertext(self, c: int) -> None:
        """Check that ``c`` lies in ``Z*_{N²}``: ``0 < c < N²`` and ``gcd(c, N) = 1``.

        Raises:
            VerificationError: otherwise.
        """
        if not is_integer(c) or not 0 < c < self.n_squared or gmpy2.gcd(c, self._n) != 1:
            raise VerificationError("ciphertext is not in Z*_{N^2}")

    def validate_unit(self, x: int, what: str = "value") -> None:
        """Check that ``x`` lies in ``Z*_N``.

        Raises:
            VerificationError: otherwise, naming ``what``.
        """
        if not is_integer(x) or not 0 < x < self.n or gmpy2.gcd(x, self._n) != 1:
            raise VerificationError(f"{what} is not in Z*_N")

    def to_bytes(self) -> bytes:
        """Big-endian ``N`` without leading zeros."""
        return _int_to_bytes(self.n)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode :meth:`to_bytes` output.

        Raises:
            EncodingError: if the bytes are not a canonical odd modulus.
        """
        return cls(_canonical_int(data, "Paillier modulus"))


@dataclass(frozen=True, slots=True, repr=False)
class PaillierSecretKey:
    """A Paillier secret key: the safe primes ``p`` and ``q`` of a Paillier-Blum modulus.

    The constructor only derives the CRT constants; :meth:`from_primes` is the checked way
    to build a key (safe, Blum, distinct primes of the required size).

    Security: ``p`` and ``q`` factor the party's modulus; whoever learns them decrypts
    every ciphertext sent to this party and can forge its range proofs. They are kept out
    of ``repr`` and have no encoding besides :meth:`to_bytes`, meant for the encrypted
    share store only.
    """

    p: int
    q: int
    public: PaillierPublicKey = field(init=False, compare=False)
    # CRT constants (Paillier 1999 §7, decryption with CRT), computed once.
    _p: int = field(init=False, compare=False)
    _q: int = field(init=False, compare=False)
    _pp: int = field(init=False, compare=False)
    _qq: int = field(init=False, compare=False)
    # h_p and h_q are needed only to decrypt, and cost two full-size exponentiations: a
    # key read back from storage for an online signature (no decryption) skips them.
    _hp: int | None = field(init=False, compare=False)
    _hq: int | None = field(init=False, compare=False)
    _q_inv_p: int = field(init=False, compare=False)
    _qq_inv_pp: int = field(init=False, compare=False)
    _q_mod_p1: int = field(init=False, compare=False)
    _p_mod_q1: int = field(init=False, compare=False)
    _phi: int = field(init=False, compare=False)

    def __post_init__(self) -> None:
        p, q = gmpy2.mpz(self.p), gmpy2.mpz(self.q)
        if p == q or p < 3 or q < 3:
            raise MisuseError("Paillier primes must be distinct and odd")
        n = p * q
        pp, qq = p * p, q * q
        public = PaillierPublicKey(int(n))
        values = {
            "p": int(p),
            "q": int(q),
            "public": public,
            "_p": p,
            "_q": q,
            "_pp": pp,
            "_qq": qq,
            "_hp": None,
            "_hq": None,
            "_q_inv_p": gmpy2.invert(q, p),
            "_qq_inv_pp": gmpy2.invert(qq, pp),
            # Exponents for nonce_power: q mod (p - 1) and p mod (q - 1).
            "_q_mod_p1": q % (p - 1),
            "_p_mod_q1": p % (q - 1),
            "_phi": (p - 1) * (q - 1),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"PaillierSecretKey(n_bits={self.public.bits})"

    @classmethod
    def from_primes(
        cls,
        p: int,
        q: int,
        *,
        min_modulus_bits: int = MIN_MODULUS_BITS,
        unsafe_test_only: bool = False,
        recheck_primality: bool = True,
    ) -> Self:
        """Build a key from two safe primes, checking what CGGMP21 Figure 7 needs.

        Checks: ``p ≠ q``, both safe primes (so ``≡ 3 mod 4``, Blum), and ``N = p·q`` of at
        least ``min_modulus_bits`` bits. Lowering that bound below
        :data:`MIN_MODULUS_BITS` requires ``unsafe_test_only=True``.
        ``recheck_primality=False`` skips only the safe-prime tests (about 40 ms for a
        2048-bit key), for a key read back from storage that authenticates it (an AEAD
        envelope) after it passed them when it was made; every other check still runs.

        Raises:
            MisuseError: if any check fails (these are our own primes, not a peer's).
        """
        check_min_modulus_bits(min_modulus_bits, unsafe_test_only=unsafe_test_only)
        if p == q:
            raise MisuseError("Paillier primes must be distinct")
        for name, prime in (("p", p), ("q", q)):
            if prime % 4 != 3:
                raise MisuseError(f"Paillier prime {name} is not a Blum prime (3 mod 4)")
            if recheck_primality and not is_safe_prime(prime):
                raise MisuseError(f"Paillier prime {name} is not a safe prime")
        if (p * q).bit_length() < min_modulus_bits:
            raise MisuseError(
                f"Paillier modulus has {(p * q).bit_length()} bits, below {min_modulus_bits}"
            )
        return cls(p, q)

    @property
    def n(self) -> int:
        """The public modulus ``N``."""
        return self.public.n

    @property
    def phi(self) -> int:
        """Euler's totient ``φ(N) = (p - 1)(q - 1)``."""
        return self._phi

    def _crt_pair(self, xp: int, xq: int) -> int:
        # Garner's CRT over p² and q²: x = x_q + q²·((x_p - x_q)·(q²)^-1 mod p²).
        return int(xq + self._qq * ((xp - xq) * self._qq_inv_pp % self._pp))

    def nonce_power(self, rho: int) -> int:
        """``ρ^N mod N²`` through the CRT over ``p²`` and ``q²``.

        Modulo ``p²``, ``a^p`` depends only on ``a mod p`` (binomial expansion of
        ``(a + kp)^p``), so ``ρ^N = (ρ^q)^p ≡ ((ρ mod p)^(q mod (p-1)) mod p)^p (mod p²)``:
        a half-size exponentiation, then one with a half-size exponent.
        """
        p, q = self._p, self._q
        xp = gmpy2.powmod(gmpy2.powmod(rho, self._q_mod_p1, p), p, self._pp)
        xq = gmpy2.powmod(gmpy2.powmod(rho, self._p_mod_q1, q), q, self._qq)
        return self._crt_pair(xp, xq)

    def encrypt_with_nonce(self, m: int, rho: int) -> int:
        """Same result as :meth:`PaillierPublicKey.encrypt_with_nonce`, about 3x faster."""
        n = self.public._n
        nn = self.public._nn
        return int((1 + (m % n) * n) * self.nonce_power(rho) % nn)

    def encrypt(self, m: int, rng: RandomSource) -> tuple[int, int]:
        """Encrypt to our own key with a fresh nonce; returns ``(ciphertext, rho)``."""
        rho = random_unit_mod(self.n, rng)
        return self.encrypt_with_nonce(m, rho), rho

    def _decryption_constants(self) -> tuple[int, int]:
        """``h_p``, ``h_q``, computed at the first decryption (racing threads compute the
        same values)."""
        if self._hp is None or self._hq is None:
            p, q = self._p, self._q
            g = 1 + self.public.n
            # h_p = L_p(g^(p-1) mod p²)^-1 mod p with L_p(x) = (x - 1) / p; likewise q.
            hp = gmpy2.invert((gmpy2.powmod(g, p - 1, self._pp) - 1) // p, p)
            hq = gmpy2.invert((gmpy2.powmod(g, q - 1, self._qq) - 1) // q, q)
            object.__setattr__(self, "_hp", hp)
            object.__setattr__(self, "_hq", hq)
            return hp, hq
        return self._hp, self._hq

    def decrypt(self, c: int) -> int:
        """The plaintext of ``c`` as the representative in ``(-N/2, N/2]``.

        Raises:
            VerificationError: if ``c`` is not in ``Z*_{N²}``.
        """
        self.public.validate_ciphertext(c)
        p, q = self._p, self._q
        hp, hq = self._decryption_constants()
        # m_p = L_p(c^(p-1) mod p²) · h_p mod p, and likewise modulo q (Paillier §7).
        mp = (gmpy2.powmod(c, p - 1, self._pp) - 1) // p * hp % p
        mq = (gmpy2.powmod(c, q - 1, self._qq) - 1) // q * hq % q
        m = mq + q * ((mp - mq) * self._q_inv_p % p)
        n = self.public.n
        return int(m - n) if m > n // 2 else int(m)

    def recover_nonce(self, c: int) -> int:
        """The nonce ``ρ ∈ Z*_N`` of a ciphertext ``c`` to this key.

        ``c · (1 + N)^-m ≡ ρ^N (mod N²)`` and ``ρ = (ρ^N mod N)^(N^-1 mod φ(N)) mod N``; the
        identifiable-abort steps of CGGMP21 (Figure 8, output "Otherwise") reveal nonces.

        Raises:
            VerificationError: if ``c`` is not in ``Z*_{N²}``.
        """
        m = self.decrypt(c)
        n = self.public._n
        rho_n = c * (1 - (m % n) * n) % n  # (1 + N)^-m ≡ 1 - m·N (mod N²), then mod N.
        return int(gmpy2.powmod(rho_n, gmpy2.invert(n, self._phi), n))

    def to_bytes(self) -> bytes:
        """``len(p) || p || len(q) || q`` with 4-byte big-endian lengths.

        Security: the result is secret; store it only encrypted.
        """
        out = b""
        for value in (self.p, self.q):
            raw = _int_to_bytes(value)
            out += len(raw).to_bytes(4, "big") + raw
        return out

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        min_modulus_bits: int = MIN_MODULUS_BITS,
        unsafe_test_only: bool = False,
        recheck_primality: bool = True,
    ) -> Self:
        """Decode :meth:`to_bytes` output and re-check the primes with :meth:`from_primes`
        (``recheck_primality``: see there).

        Raises:
            EncodingError: if the framing is wrong.
            MisuseError: if the primes fail :meth:`from_primes`.
        """
        values: list[int] = []
        offset = 0
        for name in ("p", "q"):
            if len(data) < offset + 4:
                raise EncodingError(f"Paillier secret key truncated before {name}")
            length = int.from_bytes(data[offset : offset + 4], "big")
            offset += 4
            if len(data) < offset + length:
                raise EncodingError(f"Paillier secret key truncated in {name}")
            values.append(_canonical_int(data[offset : offset + length], name))
            offset += length
        if offset != len(data):
            raise EncodingError("trailing bytes after a Paillier secret key")
        return cls.from_primes(
            values[0],
            values[1],
            min_modulus_bits=min_modulus_bits,
            unsafe_test_only=unsafe_test_only,
            recheck_primality=recheck_primality,
        )
