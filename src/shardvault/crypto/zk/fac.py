"""Πfac: proof that a Paillier modulus ``N0`` has no small factor.

Source: CGGMP21 (ePrint 2021/060), "No Small Factor Proof" (Πfac, Figure 28 as numbered in
the ePrint revisions that reference implementations cite; Appendix C.5). The prover knows
``p, q`` with ``N0 = p·q``; the proof is made against the VERIFIER's ring-Pedersen
parameters ``(N̂, s, t)`` and shows that both factors exceed about ``2^ℓ`` (precisely:
``|p|, |q| < √N0 · 2^(ℓ+ε)`` with ``p·q = N0``). Small factors are what the Alpha-Rays and
BitForge attacks exploited to extract shares from the range proofs of presigning.

Figure 28:

1. Prover samples ``α, β ← ±2^(ℓ+ε)·√N0``, ``μ, ν ← ±2^ℓ·N̂``, ``σ ← ±2^ℓ·N0·N̂``,
   ``r ← ±2^(ℓ+ε)·N0·N̂``, ``x, y ← ±2^(ℓ+ε)·N̂`` and sends ``P = s^p t^μ``,
   ``Q = s^q t^ν``, ``A = s^α t^x``, ``B = s^β t^y``, ``T = Q^α t^r`` (mod ``N̂``) and ``σ``.
2. Challenge ``e ← ±q`` (``q`` the secp256k1 group order), here by Fiat-Shamir over a
   transcript of the session, the prover, the context, ``N0``, ``(N̂, s, t)`` and step 1.
3. Prover answers ``σ̂ = σ - ν·p``, ``z1 = α + e·p``, ``z2 = β + e·q``, ``w1 = x + e·μ``,
   ``w2 = y + e·ν``, ``v = r + e·σ̂``.

Verification: with ``R = s^N0 t^σ``: ``s^z1 t^w1 = A·P^e``, ``s^z2 t^w2 = B·Q^e``,
``Q^z1 t^v = T·R^e`` (mod ``N̂``), and ``z1, z2 ∈ ±√N0 · 2^(ℓ+ε)``. Beyond the figure, the
verifier bounds every other response by what an honest prover can produce (so a peer cannot
make it exponentiate to giant exponents) and checks that ``P, Q, A, B, T`` are units.
"""

from dataclasses import dataclass
from typing import Self

import gmpy2

from shardvault.crypto._sampling import random_below
from shardvault.crypto.errors import VerificationError
from shardvault.crypto.paillier import PaillierSecretKey
from shardvault.crypto.ring_pedersen import RingPedersenParams
from shardvault.crypto.rng import RandomSource
from shardvault.crypto.zk._common import (
    decode_fields,
    encode_fields,
    require_int,
    start_transcript,
)

DOMAIN = "shardvault/cggmp21/zk/fac/v1"
"""Domain tag of Πfac's transcript."""

ELL = 256
"""ℓ of CGGMP21's parameters: the bit length of the curve order."""

EPSILON = 512
"""ε = 2ℓ, the slack of CGGMP21's range proofs."""

CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""The secp256k1 group order ``q`` (SEC 2 §2.4.1); challenges are drawn from ``±q``."""

_FIELDS = ("P", "Q", "A", "B", "T", "sigma", "z1", "z2", "w1", "w2", "v")


@dataclass(frozen=True, slots=True)
class FacProof:
    """A Πfac proof (Figure 28's commitments, ``σ`` and responses)."""

    P: int
    Q: int
    A: int
    B: int
    T: int
    sigma: int
    z1: int
    z2: int
    w1: int
    w2: int
    v: int

    def to_bytes(self) -> bytes:
        """Canonical CBOR of the proof's fields."""
        return encode_fields({name: getattr(self, name) for name in _FIELDS})

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode :meth:`to_bytes` output (structure only).

        Raises:
            EncodingError: if the bytes are not a canonical Πfac proof encoding.
        """
        fields = decode_fields(data, _FIELDS)
        return cls(*(require_int(fields, name) for name in _FIELDS))


def _signed(bound: int, rng: RandomSource) -> int:
    # Uniform in the closed interval [-bound, bound].
    return random_below(2 * bound + 1, rng) - bound


def _challenge(
    n0: int,
    setup: RingPedersenParams,
    first: tuple[int, int, int, int, int, int],
    session_id: bytes,
    prover: int,
    context: bytes,
) -> int:
    transcript = start_transcript(DOMAIN, session_id, prover, context)
    transcript.append_int("N0", n0)
    transcript.append_ints("N^, s, t", [setup.n, setup.s, setup.t])
    transcript.append_ints("P, Q, A, B, T, sigma", first)
    return transcript.challenge_signed("e", CURVE_ORDER)


def prove(
    secret: PaillierSecretKey,
    setup: RingPedersenParams,
    *,
    session_id: bytes,
    prover: int,
    rng: RandomSource,
    context: bytes = b"",
) -> FacProof:
    """Prove that ``secret``'s modulus has no small factor, for the verifier whose
    ring-Pedersen parameters are ``setup``."""
    p, q = secret.p, secret.q
    n0 = p * q
    n_hat = setup.n
    sqrt_n0 = int(gmpy2.isqrt(n0))
    # Figure 28, step 1: the prover's random values.
    alpha = _signed(sqrt_n0 << (ELL + EPSILON), rng)
    beta = _signed(sqrt_n0 << (ELL + EPSILON), rng)
    mu = _signed(n_hat << ELL, rng)
    nu = _signed(n_hat << ELL, rng)
    sigma = _signed((n0 * n_hat) << ELL, rng)
    r = _signed((n0 * n_hat) << (ELL + EPSILON), rng)
    x = _signed(n_hat << (ELL + EPSILON), rng)
    y = _signed(n_hat << (ELL + EPSILON), rng)
    cap_p = setup.commit(p, mu)
    cap_q = setup.commit(q, nu)
    cap_a = setup.commit(alpha, x)
    cap_b = setup.commit(beta, y)
    cap_t = setup.power(cap_q, alpha) * setup.commit(0, r) % n_hat
    # Figure 28, step 2: e ← ±q by Fiat-Shamir.
    e = _challenge(
        n0, setup, (cap_p, cap_q, cap_a, cap_b, cap_t, sigma), session_id, prover, context
    )
    # Figure 28, step 3: the responses.
    sigma_hat = sigma - nu * p
    return FacProof(
        P=cap_p,
        Q=cap_q,
        A=cap_a,
        B=cap_b,
        T=cap_t,
        sigma=sigma,
        z1=alpha + e * p,
        z2=beta + e * q,
        w1=x + e * mu,
        w2=y + e * nu,
        v=r + e * sigma_hat,
    )


def verify(
    proof: FacProof,
    n0: int,
    setup: RingPedersenParams,
    *,
    session_id: bytes,
    prover: int,
    context: bytes = b"",
) -> None:
    """Check that ``prover``'s modulus ``n0`` has no small factor, against OUR ring-Pedersen
    parameters ``setup`` (the verifier's own, trusted).

    Raises:
        VerificationError: naming the first check that failed.
    """
    n_hat = setup.n
    if n0 < 3:
        raise VerificationError("Πfac: N0 is not a modulus")
    sqrt_n0 = int(gmpy2.isqrt(n0))
    for name in ("P", "Q", "A", "B", "T"):
        value = getattr(proof, name)
        if not 0 < value < n_hat or gmpy2.gcd(value, n_hat) != 1:
            raise VerificationError(f"Πfac: {name} is not in Z*_N^")
    # Bounds on what an honest prover sends (see the module docstring); z1, z2's bound is
    # Figure 28's own range check and carries the proof's meaning.
    z_bound = sqrt_n0 << (ELL + EPSILON)
    if abs(proof.z1) > z_bound or abs(proof.z2) > z_bound:
        raise VerificationError("Πfac: z1 or z2 is outside ±sqrt(N0)·2^(ℓ+ε)")
    if abs(proof.sigma) > (n0 * n_hat) << ELL:
        raise VerificationError("Πfac: sigma is out of range")
    w_bound = n_hat << (ELL + EPSILON + 1)
    if abs(proof.w1) > w_bound or abs(proof.w2) > w_bound:
        raise VerificationError("Πfac: w1 or w2 is out of range")
    if abs(proof.v) > (n0 * n_hat) << (ELL + EPSILON + 1):
        raise VerificationError("Πfac: v is out of range")
    e = _challenge(
        n0,
        setup,
        (proof.P, proof.Q, proof.A, proof.B, proof.T, proof.sigma),
        session_id,
        prover,
        context,
    )
    # R = s^N0 t^σ mod N̂.
    cap_r = setup.commit(n0, proof.sigma)
    if setup.commit(proof.z1, proof.w1) != proof.A * setup.power(proof.P, e) % n_hat:
        raise VerificationError("Πfac: s^z1 t^w1 != A P^e")
    if setup.commit(proof.z2, proof.w2) != proof.B * setup.power(proof.Q, e) % n_hat:
        raise VerificationError("Πfac: s^z2 t^w2 != B Q^e")
    lhs = setup.power(proof.Q, proof.z1) * setup.commit(0, proof.v) % n_hat
    if lhs != proof.T * setup.power(cap_r, e) % n_hat:
        raise VerificationError("Πfac: Q^z1 t^v != T R^e")
