"""Πmul*: a Paillier ciphertext is another one multiplied by the discrete log of a point.

Source: CGGMP21 (ePrint 2021/060), Appendix C.6, Figure 31 "Multiplication Paillier vs
Group (Πmul*)". Common input: the prover's modulus ``N0``, ciphertexts ``C`` and ``D`` under
``N0`` and a point ``X``; the verifier's ring-Pedersen parameters ``(N̂, s, t)``. The prover
knows ``x ∈ ±2^ℓ`` and ``ρ ∈ Z*_N0`` with ``D = C^x · ρ^N0 mod N0²`` and ``X = x·G``. The
paper uses it in the identification steps ("Output … Otherwise"): a signer shows that
``Ĥ_i = K_i^{x_i}·ρ^N`` encrypts ``k_i·x_i`` for the key share behind its public ``X_i``,
without revealing ``x_i``. Presigning identification
(:class:`~shardvault.crypto.protocols.cggmp21.presign.PresignIdentifyChi`) uses it with
``C = K_i``, ``X = W_i = λ_i·X_i``.

1. ``α ← ±2^(ℓ+ε)``, ``r ← Z*_N0``, ``γ ← ±2^(ℓ+ε)·N̂``, ``m ← ±2^ℓ·N̂``;
   ``A = C^α · r^N0 mod N0²``, ``Bx = α·G``, ``E = s^α t^γ``, ``S = s^x t^m mod N̂``.
2. Challenge ``e ← ±q`` (Fiat-Shamir, see :mod:`~shardvault.crypto.zk.context`).
3. ``z1 = α + e·x``, ``z2 = γ + e·m``, ``w = r·ρ^e mod N0``.
Verification: ``z1 ∈ ±2^(ℓ+ε)``, ``C^z1 · w^N0 = A · D^e mod N0²``, ``z1·G = Bx + e·X`` and
``s^z1 t^z2 = E · S^e mod N̂``.
"""

from __future__ import annotations

from dataclasses import dataclass

import gmpy2

from shardvault.crypto._sampling import random_signed, random_unit_mod
from shardvault.crypto.errors import EncodingError, InvalidPointError, VerificationError
from shardvault.crypto.group import Group, Point
from shardvault.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from shardvault.crypto.ring_pedersen import RingPedersenParams
from shardvault.crypto.rng import RandomSource
from shardvault.crypto.zk.context import (
    ELL,
    EPSILON,
    CrtExp,
    ProofContext,
    check_ciphertext,
    check_signed_range,
    check_unit,
    commit,
    commitment_response_bits,
    pow2,
    powmod,
)
from shardvault.crypto.zk.enc import _ints

_INT_FIELDS = ("A", "E", "S", "z1", "z2", "w")


@dataclass(frozen=True, slots=True)
class MulStarProof:
    """A Πmul* proof ``(A, Bx, E, S, z1, z2, w)``."""

    A: int
    Bx: Point
    E: int
    S: int
    z1: int
    z2: int
    w: int

    def to_wire(self) -> dict[str, int | bytes]:
        """The proof as a field map."""
        out: dict[str, int | bytes] = {name: getattr(self, name) for name in _INT_FIELDS}
        out["Bx"] = self.Bx.to_bytes()
        return out

    @classmethod
    def from_wire(cls, group: Group, value: object) -> MulStarProof:
        """Decode a field map.

        Raises:
            EncodingError: wrong shape, a non-integer field or an invalid point.
        """
        if not isinstance(value, dict) or not isinstance(value.get("Bx"), bytes):
            raise EncodingError("Πmul* proof must be a map with a point Bx")
        rest = {k: v for k, v in value.items() if k != "Bx"}
        A, E, S, z1, z2, w = _ints(rest, _INT_FIELDS, "Πmul*")
        return cls(A, group.decode_point(value["Bx"]), E, S, z1, z2, w)


def _challenge(
    context: ProofContext,
    q: int,
    prover: PaillierPublicKey,
    setup: RingPedersenParams,
    C: int,
    D: int,
    X: Point,
    proof_head: tuple[int, Point, int, int],
) -> int:
    A, Bx, E, S = proof_head
    t = context.transcript("mul-star")
    t.append_ints("setup", [setup.n, setup.s, setup.t])
    t.append_ints("statement", [prover.n, C, D])
    t.append("X", X.to_bytes())
    t.append_ints("commitment", [A, E, S])
    t.append("Bx", Bx.to_bytes())
    return t.challenge_signed("e", q)


def prove(
    context: ProofContext,
    group: Group,
    prover: PaillierSecretKey,
    setup: RingPedersenParams,
    C: int,
    D: int,
    X: Point,
    x: int,
    rho: int,
    rng: RandomSource,
) -> MulStarProof:
    """Figure 31, prover side, for ``D = C^x·ρ^N0`` under the prover's own key ``N0``.

    Security: ``x`` (a key share in presigning) and ``ρ`` stay inside this call; the proof
    reveals ``z1 = α + e·x`` only, statistically hidden by ``α ∈ ±2^(ℓ+ε)``.
    """
    n0, nn0, n_hat = prover.n, prover.public.n_squared, setup.n
    hat_bits = n_hat.bit_length()
    alpha = random_signed(ELL + EPSILON, rng)
    r = random_unit_mod(n0, rng)
    gamma = random_signed(ELL + EPSILON + hat_bits, rng)
    m = random_signed(ELL + hat_bits, rng)
    # Figure 31, step 1: A = C^α·r^N0 mod N0², Bx = α·G, E = s^α t^γ, S = s^x t^m mod N̂.
    A = int(gmpy2.powmod(C, alpha, nn0) * prover.nonce_power(r) % nn0)
    Bx = group.base_multiply(group.scalar(alpha))
    E = commit(n_hat, setup.s, setup.t, alpha, gamma)
    S = commit(n_hat, setup.s, setup.t, x, m)
    # Figure 31, step 2: the challenge.
    e = _challenge(context, group.order, prover.public, setup, C, D, X, (A, Bx, E, S))
    # Figure 31, step 3: the responses.
    z1 = alpha + e * x
    z2 = gamma + e * m
    w = int(r * gmpy2.powmod(rho, e, n0) % n0)
    return MulStarProof(A, Bx, E, S, z1, z2, w)


def verify(
    context: ProofContext,
    group: Group,
    prover: PaillierPublicKey,
    setup: RingPedersenParams,
    C: int,
    D: int,
    X: Point,
    proof: MulStarProof,
    crt: CrtExp | None = None,
) -> None:
    """Figure 31, verification. ``crt`` (the verifier's own factorisation of ``N̂``) only
    speeds the ring-Pedersen check up.

    Raises:
        VerificationError: a value out of its range or group, or an equation fails.
    """
    n0, nn0, n_hat = prover.n, prover.n_squared, setup.n
    for name, value in (("C", C), ("D", D), ("A", proof.A)):
        check_ciphertext(value, nn0, n0, f"Πmul* {name}")
    check_unit(proof.w, n0, "Πmul* w")
    check_unit(proof.E, n_hat, "Πmul* E")
    check_unit(proof.S, n_hat, "Πmul* S")
    check_signed_range(proof.z1, ELL + EPSILON, "Πmul* z1")
    # z2 = γ + e·m: the honest bound, checked before any exponentiation.
    z2_bits = commitment_response_bits(ELL + EPSILON, n_hat.bit_length())
    check_signed_range(proof.z2, z2_bits, "Πmul* z2")
    head = (proof.A, proof.Bx, proof.E, proof.S)
    try:
        e = _challenge(context, group.order, prover, setup, C, D, X, head)
    except InvalidPointError as exc:
        raise VerificationError("Πmul* statement has the identity") from exc
    # C^z1 · w^N0 = A · D^e (mod N0²).
    if pow2(C, proof.z1, proof.w, n0, nn0) != proof.A * powmod(D, e, nn0) % nn0:
        raise VerificationError("Πmul* Paillier multiplication equation fails")
    # z1·G = Bx + e·X.
    if group.base_multiply(group.scalar(proof.z1)) != proof.Bx + X * group.scalar(e):
        raise VerificationError("Πmul* group equation fails")
    # s^z1 · t^z2 = E · S^e (mod N̂).
    if (
        pow2(setup.s, proof.z1, setup.t, proof.z2, n_hat, crt)
        != proof.E * powmod(proof.S, e, n_hat) % n_hat
    ):
        raise VerificationError("Πmul* ring-Pedersen equation fails")
