"""Πaff-g: a Paillier affine operation with its multiplier committed in the group.

Source: CGGMP21 (ePrint 2021/060), Figure 15 "Paillier Affine Operation with Group
Commitment in Range ZK (Πaff-g)". Common input: the verifier's modulus ``N0`` and the
prover's ``N1``, ciphertexts ``C`` (under ``N0``), ``D`` (under ``N0``), ``Y`` (under
``N1``) and a point ``X``; the verifier's ring-Pedersen parameters ``(N̂, s, t)``. The prover
knows ``x ∈ ±2^ℓ``, ``y ∈ ±2^ℓ'``, ``ρ ∈ Z*_N0``, ``ρy ∈ Z*_N1`` with
``D = C^x (1+N0)^y ρ^N0 mod N0²``, ``Y = (1+N1)^y ρy^N1 mod N1²`` and ``X = x·G``.
Presigning round 2 (Figure 7) proves each ``(D_{j,i}, F_{j,i})`` pair this way.

1. ``α ← ±2^(ℓ+ε)``, ``β ← ±2^(ℓ'+ε)``, ``r ← Z*_N0``, ``ry ← Z*_N1``,
   ``γ, δ ← ±2^(ℓ+ε)·N̂``, ``m, μ ← ±2^ℓ·N̂``;
   ``A = C^α (1+N0)^β r^N0 mod N0²``, ``Bx = α·G``, ``By = (1+N1)^β ry^N1 mod N1²``,
   ``E = s^α t^γ``, ``S = s^x t^m``, ``F = s^β t^δ``, ``T = s^y t^μ mod N̂``.
2. Challenge ``e ← ±q``.
3. ``z1 = α + e·x``, ``z2 = β + e·y``, ``z3 = γ + e·m``, ``z4 = δ + e·μ``,
   ``w = r·ρ^e mod N0``, ``wy = ry·ρy^e mod N1``.
Verification: ``z1 ∈ ±2^(ℓ+ε)``, ``z2 ∈ ±2^(ℓ'+ε)``, ``C^z1 (1+N0)^z2 w^N0 = A·D^e mod N0²``,
``z1·G = Bx + e·X``, ``(1+N1)^z2 wy^N1 = By·Y^e mod N1²``, ``s^z1 t^z3 = E·S^e``,
``s^z2 t^z4 = F·T^e mod N̂``.
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
    ELL_PRIME,
    EPSILON,
    CrtExp,
    ProofContext,
    check_ciphertext,
    check_signed_range,
    check_unit,
    commit,
    commitment_response_bits,
    paillier_enc,
    pow2,
    powmod,
)
from shardvault.crypto.zk.enc import _ints

_INT_FIELDS = ("A", "By", "E", "S", "F", "T", "z1", "z2", "z3", "z4", "w", "wy")


@dataclass(frozen=True, slots=True)
class AffGProof:
    """A Πaff-g proof."""

    A: int
    Bx: Point
    By: int
    E: int
    S: int
    F: int
    T: int
    z1: int
    z2: int
    z3: int
    z4: int
    w: int
    wy: int

    def to_wire(self) -> dict[str, int | bytes]:
        """The proof as a field map."""
        out: dict[str, int | bytes] = {name: getattr(self, name) for name in _INT_FIELDS}
        out["Bx"] = self.Bx.to_bytes()
        return out

    @classmethod
    def from_wire(cls, group: Group, value: object) -> AffGProof:
        """Decode a field map.

        Raises:
            EncodingError: wrong shape, a non-integer field or an invalid point.
        """
        if not isinstance(value, dict) or not isinstance(value.get("Bx"), bytes):
            raise EncodingError("Πaff-g proof must be a map with a point Bx")
        rest = {k: v for k, v in value.items() if k != "Bx"}
        A, By, E, S, F, T, z1, z2, z3, z4, w, wy = _ints(rest, _INT_FIELDS, "Πaff-g")
        return cls(A, group.decode_point(value["Bx"]), By, E, S, F, T, z1, z2, z3, z4, w, wy)


def _challenge(
    context: ProofContext,
    q: int,
    verifier: PaillierPublicKey,
    prover: PaillierPublicKey,
    setup: RingPedersenParams,
    C: int,
    D: int,
    Y: int,
    X: Point,
    proof_head: tuple[int, Point, int, int, int, int, int],
) -> int:
    A, Bx, By, E, S, F, T = proof_head
    t = context.transcript("aff-g")
    t.append_ints("setup", [setup.n, setup.s, setup.t])
    t.append_ints("statement", [verifier.n, prover.n, C, D, Y])
    t.append("X", X.to_bytes())
    t.append_ints("commitment", [A, By, E, S, F, T])
    t.append("Bx", Bx.to_bytes())
    return t.challenge_signed("e", q)


def prove(
    context: ProofContext,
    group: Group,
    verifier: PaillierPublicKey,
    prover: PaillierSecretKey,
    setup: RingPedersenParams,
    C: int,
    D: int,
    Y: int,
    X: Point,
    witness: tuple[int, int, int, int],
    rng: RandomSource,
) -> AffGProof:
    """Figure 15, prover side; ``witness`` is ``(x, y, ρ, ρy)``."""
    x, y, rho, rho_y = witness
    n0, nn0 = verifier.n, verifier.n_squared
    n1, nn1 = prover.n, prover.public.n_squared
    n_hat = setup.n
    hat_bits = n_hat.bit_length()
    alpha = random_signed(ELL + EPSILON, rng)
    beta = random_signed(ELL_PRIME + EPSILON, rng)
    r = random_unit_mod(n0, rng)
    r_y = random_unit_mod(n1, rng)
    gamma = random_signed(ELL + EPSILON + hat_bits, rng)
    delta = random_signed(ELL + EPSILON + hat_bits, rng)
    m = random_signed(ELL + hat_bits, rng)
    mu = random_signed(ELL + hat_bits, rng)
    A = int(gmpy2.powmod(C, alpha, nn0) * paillier_enc(n0, nn0, beta, powmod(r, n0, nn0)) % nn0)
    Bx = group.base_multiply(group.scalar(alpha))
    By = paillier_enc(n1, nn1, beta, prover.nonce_power(r_y))
    E = commit(n_hat, setup.s, setup.t, alpha, gamma)
    S = commit(n_hat, setup.s, setup.t, x, m)
    F = commit(n_hat, setup.s, setup.t, beta, delta)
    T = commit(n_hat, setup.s, setup.t, y, mu)
    e = _challenge(
        context, group.order, verifier, prover.public, setup, C, D, Y, X, (A, Bx, By, E, S, F, T)
    )
    z1 = alpha + e * x
    z2 = beta + e * y
    z3 = gamma + e * m
    z4 = delta + e * mu
    w = int(r * gmpy2.powmod(rho, e, n0) % n0)
    w_y = int(r_y * gmpy2.powmod(rho_y, e, n1) % n1)
    return AffGProof(A, Bx, By, E, S, F, T, z1, z2, z3, z4, w, w_y)


def verify(
    context: ProofContext,
    group: Group,
    verifier: PaillierPublicKey,
    prover: PaillierPublicKey,
    setup: RingPedersenParams,
    C: int,
    D: int,
    Y: int,
    X: Point,
    proof: AffGProof,
    crt: CrtExp | None = None,
) -> None:
    """Figure 15, verification. ``crt`` is the verifier's own factorisation of ``N0 = N̂``
    (presigning's case), used only for speed.

    Raises:
        VerificationError: a value out of its range or group, or an equation fails.
    """
    n0, nn0 = verifier.n, verifier.n_squared
    n1, nn1 = prover.n, prover.n_squared
    n_hat = setup.n
    for name, value in (("C", C), ("D", D), ("A", proof.A)):
        check_ciphertext(value, nn0, n0, f"Πaff-g {name}")
    for name, value in (("Y", Y), ("By", proof.By)):
        check_ciphertext(value, nn1, n1, f"Πaff-g {name}")
    check_unit(proof.w, n0, "Πaff-g w")
    check_unit(proof.wy, n1, "Πaff-g wy")
    for name, value in (("E", proof.E), ("S", proof.S), ("F", proof.F), ("T", proof.T)):
        check_unit(value, n_hat, f"Πaff-g {name}")
    check_signed_range(proof.z1, ELL + EPSILON, "Πaff-g z1")
    check_signed_range(proof.z2, ELL_PRIME + EPSILON, "Πaff-g z2")
    # z3 = γ + e·m and z4 = δ + e·μ: the honest bound, checked before any exponentiation.
    z34_bits = commitment_response_bits(ELL + EPSILON, n_hat.bit_length())
    check_signed_range(proof.z3, z34_bits, "Πaff-g z3")
    check_signed_range(proof.z4, z34_bits, "Πaff-g z4")
    head = (proof.A, proof.Bx, proof.By, proof.E, proof.S, proof.F, proof.T)
    try:
        e = _challenge(context, group.order, verifier, prover, setup, C, D, Y, X, head)
    except InvalidPointError as exc:
        raise VerificationError("Πaff-g statement has the identity") from exc
    # C^z1 · (1+N0)^z2 · w^N0 = A · D^e (mod N0²).
    if crt is not None and crt.n == n0:
        left = crt.pow2_squared(C, proof.z1, proof.w, n0)
    else:
        left = pow2(C, proof.z1, proof.w, n0, nn0)
    left = (1 + (proof.z2 % n0) * n0) * left % nn0
    if left != proof.A * powmod(D, e, nn0) % nn0:
        raise VerificationError("Πaff-g Paillier affine equation fails")
    if group.base_multiply(group.scalar(proof.z1)) != proof.Bx + X * group.scalar(e):
        raise VerificationError("Πaff-g group equation fails")
    left_y = paillier_enc(n1, nn1, proof.z2, powmod(proof.wy, n1, nn1))
    if left_y != proof.By * powmod(Y, e, nn1) % nn1:
        raise VerificationError("Πaff-g Paillier encryption equation fails")
    if (
        pow2(setup.s, proof.z1, setup.t, proof.z3, n_hat, crt)
        != proof.E * powmod(proof.S, e, n_hat) % n_hat
    ):
        raise VerificationError("Πaff-g first ring-Pedersen equation fails")
    if (
        pow2(setup.s, proof.z2, setup.t, proof.z4, n_hat, crt)
        != proof.F * powmod(proof.T, e, n_hat) % n_hat
    ):
        raise VerificationError("Πaff-g second ring-Pedersen equation fails")
