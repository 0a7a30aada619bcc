"""Πlog*: a Paillier ciphertext and a group element hide the same small exponent.

Source: CGGMP21 (ePrint 2021/060), Figure 25 "Knowledge of Exponent vs Paillier
Encryption (Πlog*)". Common input: the prover's modulus ``N0``, a ciphertext ``C``, a base
point ``B`` and a point ``X``; the verifier's ring-Pedersen parameters ``(N̂, s, t)``. The
prover knows ``x ∈ ±2^ℓ`` and ``ρ`` with ``C = (1+N0)^x ρ^N0 mod N0²`` and ``X = x·B``.
Presigning uses it twice (Figure 7): round 2, ``ψ'`` for ``(G_i, Γ_i)`` with ``B = G``,
and round 3, ``ψ''`` for ``(K_i, Δ_i)`` with ``B = Γ``.

1. ``α ← ±2^(ℓ+ε)``, ``μ ← ±2^ℓ·N̂``, ``r ← Z*_N0``, ``γ ← ±2^(ℓ+ε)·N̂``;
   ``S = s^x t^μ``, ``A = (1+N0)^α r^N0 mod N0²``, ``Y = α·B``, ``D = s^α t^γ mod N̂``.
2. Challenge ``e ← ±q``.
3. ``z1 = α + e·x``, ``z2 = r·ρ^e mod N0``, ``z3 = γ + e·μ``.
Verification: ``z1 ∈ ±2^(ℓ+ε)``, ``(1+N0)^z1 z2^N0 = A·C^e mod N0²``, ``z1·B = Y + e·X``,
``s^z1 t^z3 = D·S^e mod N̂``.
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
    paillier_enc,
    pow2,
    powmod,
)
from shardvault.crypto.zk.enc import _ints

_INT_FIELDS = ("S", "A", "D", "z1", "z2", "z3")


@dataclass(frozen=True, slots=True)
class LogStarProof:
    """A Πlog* proof ``(S, A, Y, D, z1, z2, z3)``."""

    S: int
    A: int
    Y: Point
    D: int
    z1: int
    z2: int
    z3: int

    def to_wire(self) -> dict[str, int | bytes]:
        """The proof as a field map."""
        out: dict[str, int | bytes] = {name: getattr(self, name) for name in _INT_FIELDS}
        out["Y"] = self.Y.to_bytes()
        return out

    @classmethod
    def from_wire(cls, group: Group, value: object) -> LogStarProof:
        """Decode a field map.

        Raises:
            EncodingError: wrong shape, a non-integer field or an invalid point.
        """
        if not isinstance(value, dict) or not isinstance(value.get("Y"), bytes):
            raise EncodingError("Πlog* proof must be a map with a point Y")
        rest = {k: v for k, v in value.items() if k != "Y"}
        S, A, D, z1, z2, z3 = _ints(rest, _INT_FIELDS, "Πlog*")
        return cls(S, A, group.decode_point(value["Y"]), D, z1, z2, z3)


def _challenge(
    context: ProofContext,
    q: int,
    prover: PaillierPublicKey,
    setup: RingPedersenParams,
    C: int,
    X: Point,
    B: Point,
    S: int,
    A: int,
    Y: Point,
    D: int,
) -> int:
    t = context.transcript("log-star")
    t.append_ints("setup", [setup.n, setup.s, setup.t])
    t.append_ints("statement", [prover.n, C])
    t.append("X", X.to_bytes())
    t.append("B", B.to_bytes())
    t.append_ints("commitment", [S, A, D])
    t.append("Y", Y.to_bytes())
    return t.challenge_signed("e", q)


def prove(
    context: ProofContext,
    group: Group,
    prover: PaillierSecretKey,
    setup: RingPedersenParams,
    C: int,
    X: Point,
    B: Point,
    x: int,
    rho: int,
    rng: RandomSource,
) -> LogStarProof:
    """Figure 25, prover side (``C`` under the prover's own key)."""
    n0, nn0, n_hat = prover.n, prover.public.n_squared, setup.n
    alpha = random_signed(ELL + EPSILON, rng)
    mu = random_signed(ELL + n_hat.bit_length(), rng)
    r = random_unit_mod(n0, rng)
    gamma = random_signed(ELL + EPSILON + n_hat.bit_length(), rng)
    S = commit(n_hat, setup.s, setup.t, x, mu)
    A = paillier_enc(n0, nn0, alpha, prover.nonce_power(r))
    Y = B * group.scalar(alpha)
    D = commit(n_hat, setup.s, setup.t, alpha, gamma)
    e = _challenge(context, group.order, prover.public, setup, C, X, B, S, A, Y, D)
    z1 = alpha + e * x
    z2 = int(r * gmpy2.powmod(rho, e, n0) % n0)
    z3 = gamma + e * mu
    return LogStarProof(S, A, Y, D, z1, z2, z3)


def verify(
    context: ProofContext,
    group: Group,
    prover: PaillierPublicKey,
    setup: RingPedersenParams,
    C: int,
    X: Point,
    B: Point,
    proof: LogStarProof,
    crt: CrtExp | None = None,
) -> None:
    """Figure 25, verification.

    Raises:
        VerificationError: a value out of its range or group, or an equation fails.
    """
    n0, nn0, n_hat = prover.n, prover.n_squared, setup.n
    check_ciphertext(C, nn0, n0, "Πlog* statement C")
    check_ciphertext(proof.A, nn0, n0, "Πlog* A")
    check_unit(proof.z2, n0, "Πlog* z2")
    check_unit(proof.S, n_hat, "Πlog* S")
    check_unit(proof.D, n_hat, "Πlog* D")
    check_signed_range(proof.z1, ELL + EPSILON, "Πlog* z1")
    # z3 = γ + e·μ: the honest bound, checked before any exponentiation.
    z3_bits = commitment_response_bits(ELL + EPSILON, n_hat.bit_length())
    check_signed_range(proof.z3, z3_bits, "Πlog* z3")
    try:
        e = _challenge(
            context, group.order, prover, setup, C, X, B, proof.S, proof.A, proof.Y, proof.D
        )
    except InvalidPointError as exc:
        raise VerificationError("Πlog* statement has the identity") from exc
    left = paillier_enc(n0, nn0, proof.z1, powmod(proof.z2, n0, nn0))
    if left != proof.A * powmod(C, e, nn0) % nn0:
        raise VerificationError("Πlog* Paillier equation fails")
    if B * group.scalar(proof.z1) != proof.Y + X * group.scalar(e):
        raise VerificationError("Πlog* group equation fails")
    if (
        pow2(setup.s, proof.z1, setup.t, proof.z3, n_hat, crt)
        != proof.D * powmod(proof.S, e, n_hat) % n_hat
    ):
        raise VerificationError("Πlog* ring-Pedersen equation fails")
