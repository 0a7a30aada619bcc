"""Πmod: proof that a Paillier modulus ``N`` is a Paillier-Blum modulus.

Source: CGGMP21 (ePrint 2021/060), "Paillier-Blum Modulus ZK" (Πmod, Figure 16 as numbered
in the ePrint revisions that reference implementations cite; Appendix C). The statement is:
``N = p·q`` with ``p ≡ q ≡ 3 (mod 4)`` and ``gcd(N, φ(N)) = 1``. The prover knows ``p`` and
``q``. Made non-interactive with Fiat-Shamir: the ``y_i`` are read from a transcript bound
to the session, the prover, the caller's context, ``N`` and ``w``.

Repetitions: :data:`REPETITIONS` = 128. Each repetition has soundness error 1/2, so the
interactive proof has error ``2^-m``; under Fiat-Shamir a cheating prover may grind over
``w`` and its other choices, turning that into a work factor of about ``2^m`` hashes, so
``m`` is set to the 128-bit computational level of secp256k1 rather than the statistical
80 (the concrete-security parameters of the paper's appendix use the same 128).
BitForge (CVE-2023-33241) used moduli that nobody proved Blum; this proof refuses them.
"""

from dataclasses import dataclass
from typing import Self

import gmpy2

from shardvault.crypto._sampling import random_below
from shardvault.crypto.errors import MisuseError, VerificationError
from shardvault.crypto.paillier import PaillierSecretKey
from shardvault.crypto.rng import RandomSource
from shardvault.crypto.transcript import Transcript
from shardvault.crypto.zk._common import (
    decode_fields,
    encode_fields,
    require_int,
    require_int_list,
    start_transcript,
)

DOMAIN = "shardvault/cggmp21/zk/mod/v1"
"""Domain tag of Πmod's transcript."""

REPETITIONS = 128
"""The number ``m`` of parallel repetitions (see the module docstring for why 128)."""

_FIELDS = ("w", "x", "a", "b", "z")


@dataclass(frozen=True, slots=True)
class ModProof:
    """A Πmod proof: ``w`` and, per repetition ``i``, ``(x_i, a_i, b_i, z_i)``."""

    w: int
    x: tuple[int, ...]
    a: tuple[int, ...]
    b: tuple[int, ...]
    z: tuple[int, ...]

    def to_bytes(self) -> bytes:
        """Canonical CBOR of the proof's fields."""
        return encode_fields(
            {
                "w": self.w,
                "x": list(self.x),
                "a": list(self.a),
                "b": list(self.b),
                "z": list(self.z),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode :meth:`to_bytes` output (structure only; :func:`verify` checks values).

        Raises:
            EncodingError: if the bytes are not a canonical Πmod proof encoding.
        """
        fields = decode_fields(data, _FIELDS)
        return cls(
            require_int(fields, "w"),
            require_int_list(fields, "x"),
            require_int_list(fields, "a"),
            require_int_list(fields, "b"),
            require_int_list(fields, "z"),
        )


def _challenges(n: int, w: int, session_id: bytes, prover: int, context: bytes) -> list[int]:
    # Figure 16, step 2 (verifier's challenge), made non-interactive: y_i ← Z_N from a
    # transcript of everything public so far.
    transcript: Transcript = start_transcript(DOMAIN, session_id, prover, context)
    transcript.append_int("N", n)
    transcript.append_int("w", w)
    return [transcript.challenge_int_below("y", n) for _ in range(REPETITIONS)]


def _crt(xp: int, xq: int, p: int, q: int, q_inv_p: int) -> int:
    # Garner: x ≡ xp (mod p), x ≡ xq (mod q).
    return int(xq + q * ((xp - xq) * q_inv_p % p))


def prove(
    secret: PaillierSecretKey,
    *,
    session_id: bytes,
    prover: int,
    rng: RandomSource,
    context: bytes = b"",
) -> ModProof:
    """Prove that ``secret.public.n`` is a Paillier-Blum modulus.

    The key is trusted to be what :meth:`PaillierSecretKey.from_primes` accepts; run on
    anything else, this produces a proof that :func:`verify` rejects.

    Raises:
        MisuseError: if a challenge ``y_i`` shares a factor with ``N`` (probability about
            ``2^-1000``) or ``N⁻¹ mod φ(N)`` does not exist.
    """
    p, q = gmpy2.mpz(secret.p), gmpy2.mpz(secret.q)
    n = p * q
    phi = (p - 1) * (q - 1)
    # Figure 16, step 1: w ← Z_N with Jacobi symbol (w/N) = -1.
    while True:
        w = gmpy2.mpz(random_below(int(n), rng))
        if w > 1 and gmpy2.jacobi(w, n) == -1:
            break
    ys = _challenges(int(n), int(w), session_id, prover, context)

    try:
        n_inv_phi = gmpy2.invert(n, phi)
    except (ValueError, ZeroDivisionError):
        raise MisuseError("gcd(N, phi(N)) != 1: not a Paillier modulus") from None
    q_inv_p = gmpy2.invert(q, p)
    # Exponents of the CRT computations: z_i = y_i^(N^-1 mod φ) reduced mod p-1 and q-1,
    # and the fourth root of a quadratic residue modulo a prime ≡ 3 (mod 4), which is
    # u^(((p+1)/4)^2); square roots by u^((p+1)/4) are themselves residues there.
    zp_exp, zq_exp = n_inv_phi % (p - 1), n_inv_phi % (q - 1)
    rp_exp = ((p + 1) // 4) ** 2 % (p - 1)
    rq_exp = ((q + 1) // 4) ** 2 % (q - 1)
    w_p, w_q = gmpy2.legendre(w, p), gmpy2.legendre(w, q)

    xs: list[int] = []
    a_bits: list[int] = []
    b_bits: list[int] = []
    zs: list[int] = []
    for y in ys:
        y_mpz = gmpy2.mpz(y)
        if gmpy2.gcd(y_mpz, n) != 1:
            raise MisuseError("challenge shares a factor with N")
        # Figure 16, step 3: the unique a, b ∈ {0, 1} with y' = (-1)^a w^b y a quadratic
        # residue (w has opposite residuosity modulo p and q; -1 is a non-residue of both).
        l_p, l_q = gmpy2.legendre(y_mpz, p), gmpy2.legendre(y_mpz, q)
        b = 0
        if l_p != l_q:
            b = 1
            l_p, l_q = l_p * w_p, l_q * w_q
        a = 1 if l_p == -1 else 0
        y_prime = y_mpz * (w if b else 1) * (-1 if a else 1) % n
        x = _crt(
            gmpy2.powmod(y_prime % p, rp_exp, p),
            gmpy2.powmod(y_prime % q, rq_exp, q),
            p,
            q,
            q_inv_p,
        )
        z = _crt(
            gmpy2.powmod(y_mpz % p, zp_exp, p),
            gmpy2.powmod(y_mpz % q, zq_exp, q),
            p,
            q,
            q_inv_p,
        )
        xs.append(x)
        a_bits.append(a)
        b_bits.append(b)
        zs.append(z)
    return ModProof(int(w), tuple(xs), tuple(a_bits), tuple(b_bits), tuple(zs))


def verify(
    proof: ModProof,
    n: int,
    *,
    session_id: bytes,
    prover: int,
    context: bytes = b"",
) -> None:
    """Check a Πmod proof for modulus ``n`` made by ``prover`` in this session.

    Raises:
        VerificationError: naming the first check that failed.
    """
    if n < 3 or n % 2 == 0:
        raise VerificationError("Πmod: N is not odd")
    # Every value of the proof is bounded before any exponentiation (the primality test
    # below included), so a peer's oversized value costs no more than a comparison.
    if not (len(proof.x) == len(proof.a) == len(proof.b) == len(proof.z) == REPETITIONS):
        raise VerificationError(f"Πmod: proof must have {REPETITIONS} repetitions")
    w = proof.w
    if not 1 < w < n:
        raise VerificationError("Πmod: w is not in Z*_N with Jacobi symbol -1")
    for i in range(REPETITIONS):
        if proof.a[i] not in (0, 1) or proof.b[i] not in (0, 1):
            raise VerificationError(f"Πmod: a_{i} or b_{i} is not a bit")
        if not 0 < proof.x[i] < n or not 0 < proof.z[i] < n:
            raise VerificationError(f"Πmod: x_{i} or z_{i} is out of range")
    # Figure 16, verification: N is an odd composite number.
    if gmpy2.is_prime(n, 25):
        raise VerificationError("Πmod: N is prime")
    if gmpy2.is_square(n):
        raise VerificationError("Πmod: N is a perfect square")
    # Hygiene beyond the figure: an honest w is a unit with Jacobi symbol -1.
    if gmpy2.jacobi(w, n) != -1:
        raise VerificationError("Πmod: w is not in Z*_N with Jacobi symbol -1")
    ys = _challenges(n, w, session_id, prover, context)
    n_mpz = gmpy2.mpz(n)
    for i, y in enumerate(ys):
        x, a, b, z = proof.x[i], proof.a[i], proof.b[i], proof.z[i]
        # z_i^N ≡ y_i (mod N): N is invertible modulo φ(N).
        if gmpy2.powmod(z, n_mpz, n_mpz) != y:
            raise VerificationError(f"Πmod: z_{i}^N != y_{i}")
        # x_i^4 ≡ (-1)^a_i w^b_i y_i (mod N): N is a Blum integer.
        expected = y * (w if b else 1) * (-1 if a else 1) % n_mpz
        if gmpy2.powmod(x, 4, n_mpz) != expected:
            raise VerificationError(f"Πmod: x_{i}^4 != (-1)^a w^b y_{i}")
