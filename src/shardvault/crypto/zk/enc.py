"""Πenc: range proof that a Paillier ciphertext encrypts a small plaintext.

Source: CGGMP21 (ePrint 2021/060), Figure 14 "Paillier Encryption in Range ZK (Πenc)".
Common input: the prover's modulus ``N0`` and a ciphertext ``K``; the verifier's
ring-Pedersen parameters ``(N̂, s, t)``. The prover knows ``k ∈ ±2^ℓ`` and ``ρ`` with
``K = (1 + N0)^k · ρ^N0 mod N0²``. Presigning round 1 (Figure 7) proves ``K_i`` this way
to every peer ``j`` under that peer's parameters.

1. Prover: ``α ← ±2^(ℓ+ε)``, ``μ ← ±2^ℓ·N̂``, ``r ← Z*_N0``, ``γ ← ±2^(ℓ+ε)·N̂``;
   ``S = s^k t^μ``, ``A = (1+N0)^α r^N0 mod N0²``, ``C = s^α t^γ mod N̂``.
2. Challenge ``e ← ±q`` (Fiat-Shamir, see :mod:`~shardvault.crypto.zk.context`).
3. ``z1 = α + e·k``, ``z2 = r·ρ^e mod N0``, ``z3 = γ + e·μ``.
Verification: ``z1 ∈ ±2^(ℓ+ε)``, ``(1+N0)^z1 · z2^N0 = A · K^e mod N0²`` and
``s^z1 t^z3 = C · S^e mod N̂``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import gmpy2

from shardvault.crypto._sampling import random_signed, random_unit_mod
from shardvault.crypto.errors import EncodingError, VerificationError
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

_FIELDS = ("S", "A", "C", "z1", "z2", "z3")


@dataclass(frozen=True, slots=True)
class EncProof:
    """A Πenc proof ``(S, A, C, z1, z2, z3)``."""

    S: int
    A: int
    C: int
    z1: int
    z2: int
    z3: int

    def to_wire(self) -> dict[str, int]:
        """The proof as a field map of integers."""
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def from_wire(cls, value: object) -> EncProof:
        """Decode a field map.

        Raises:
            EncodingError: wrong shape or a non-integer field.
        """
        return cls(*_ints(value, _FIELDS, "Πenc"))


def _ints(value: object, names: tuple[str, ...], what: str) -> list[int]:
    if not isinstance(value, Mapping) or set(value) != set(names):
        raise EncodingError(f"{what} proof must have fields {list(names)}")
    out: list[int] = []
    for name in names:
        item = value[name]
        if not isinstance(item, int) or isinstance(item, bool):
            raise EncodingError(f"{what} proof field {name} must be an integer")
        out.append(item)
    return out


def _challenge(
    context: ProofContext,
    q: int,
    prover: PaillierPublicKey,
    setup: RingPedersenParams,
    K: int,
    S: int,
    A: int,
    C: int,
) -> int:
    t = context.transcript("enc")
    t.append_ints("setup", [setup.n, setup.s, setup.t])
    t.append_ints("statement", [prover.n, K])
    t.append_ints("commitment", [S, A, C])
    return t.challenge_signed("e", q)


def prove(
    context: ProofContext,
    q: int,
    prover: PaillierSecretKey,
    setup: RingPedersenParams,
    K: int,
    k: int,
    rho: int,
    rng: RandomSource,
) -> EncProof:
    """Figure 14, prover side, for ``K = enc_N0(k; ρ)`` under the prover's own key."""
    n0 = prover.n
    nn0 = prover.public.n_squared
    n_hat = setup.n
    alpha = random_signed(ELL + EPSILON, rng)
    mu = random_signed(ELL + n_hat.bit_length(), rng)
    r = random_unit_mod(n0, rng)
    gamma = random_signed(ELL + EPSILON + n_hat.bit_length(), rng)
    S = commit(n_hat, setup.s, setup.t, k, mu)
    A = paillier_enc(n0, nn0, alpha, prover.nonce_power(r))
    C = commit(n_hat, setup.s, setup.t, alpha, gamma)
    e = _challenge(context, q, prover.public, setup, K, S, A, C)
    z1 = alpha + e * k
    z2 = int(r * gmpy2.powmod(rho, e, n0) % n0)
    z3 = gamma + e * mu
    return EncProof(S, A, C, z1, z2, z3)


def verify(
    context: ProofContext,
    q: int,
    prover: PaillierPublicKey,
    setup: RingPedersenParams,
    K: int,
    proof: EncProof,
    crt: CrtExp | None = None,
) -> None:
    """Figure 14, verification. ``crt`` (the verifier's own factorisation of ``N̂``) only
    speeds the ring-Pedersen check up.

    Raises:
        VerificationError: a value out of its range or group, or an equation fails.
    """
    n0, nn0, n_hat = prover.n, prover.n_squared, setup.n
    check_ciphertext(K, nn0, n0, "Πenc statement K")
    check_ciphertext(proof.A, nn0, n0, "Πenc A")
    check_unit(proof.z2, n0, "Πenc z2")
    check_unit(proof.S, n_hat, "Πenc S")
    check_unit(proof.C, n_hat, "Πenc C")
    # Every range before the first exponentiation: z1 is Figure 14's own check, z3 the
    # honest prover's bound (commitment_response_bits), so no peer value costs more.
    check_signed_range(proof.z1, ELL + EPSILON, "Πenc z1")
    z3_bits = commitment_response_bits(ELL + EPSILON, n_hat.bit_length())
    check_signed_range(proof.z3, z3_bits, "Πenc z3")
    e = _challenge(context, q, prover, setup, K, proof.S, proof.A, proof.C)
    left = paillier_enc(n0, nn0, proof.z1, powmod(proof.z2, n0, nn0))
    right = proof.A * powmod(K, e, nn0) % nn0
    if left != right:
        raise VerificationError("Πenc Paillier equation fails")
    if (
        pow2(setup.s, proof.z1, setup.t, proof.z3, n_hat, crt)
        != proof.C * powmod(proof.S, e, n_hat) % n_hat
    ):
        raise VerificationError("Πenc ring-Pedersen equation fails")
