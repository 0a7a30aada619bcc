"""Πdec: a Paillier ciphertext decrypts to the discrete log (mod ``q``) of a point.

Source: CGGMP21 (ePrint 2021/060), Appendix C.6, Figure 30 "Paillier Decryption modulo q
(Πdec)", in the form the later revisions use in their identification steps, where the
value is given in the exponent: common input the prover's modulus ``N0``, a ciphertext
``C`` under ``N0``, a base point ``B`` and a point ``Y``; the verifier's ring-Pedersen
parameters ``(N̂, s, t)``. The prover (who can decrypt ``C``) knows ``y`` and ``ρ`` with
``C = (1+N0)^y · ρ^N0 mod N0²`` and ``Y = (y mod q)·B``.

Figure 30 takes a public scalar ``x = y mod q`` and has the prover send ``γ = α mod q``,
checked as ``z1 ≡ γ + e·x (mod q)``. In presigning the decrypted value is ``χ_i``, which
must stay secret (it is a share of ``k·x``); only ``S_i = χ_i·Γ`` is public. So, exactly as
Πlog* replaces Πenc's plaintext by a point, this module sends ``Z = α·B`` and checks
``z1·B = Z + e·Y``. A later revision of the paper states its Πdec (renumbered Figure 28)
with the value as a point ``y·g`` too; the base ``B`` here is a parameter because
presigning's base is ``Γ``.

Range (an addition to Figure 30, which bounds nothing): the prover states a bound
``y ∈ ±2^bits``; ``z1`` must lie in ``±2^(bits+σ)`` with ``σ = ℓ + 128`` (the challenge
size plus 128 bits of statistical hiding), and ``bits + σ + 2`` must be below ``|N0|``.
Then the integer the ring-Pedersen commitment binds equals the plaintext of ``C`` taken in
``(-N0/2, N0/2]``: without the bound a prover could claim ``y + m·N0`` for any ``m``, and
so any point ``Y`` shifted by multiples of ``(N0 mod q)·B``.

1. ``α ← ±2^(bits+σ)``, ``μ ← ±2^ℓ·N̂``, ``ν ← ±2^(bits+σ)·N̂``, ``r ← Z*_N0``;
   ``S = s^y t^μ``, ``T = s^α t^ν mod N̂``, ``A = (1+N0)^α r^N0 mod N0²``, ``Z = α·B``.
2. Challenge ``e ← ±q``.
3. ``z1 = α + e·y``, ``z2 = ν + e·μ``, ``w = r·ρ^e mod N0``.
Verification: ``z1 ∈ ±2^(bits+σ)``, ``(1+N0)^z1 · w^N0 = A · C^e mod N0²``,
``z1·B = Z + e·Y`` and ``s^z1 t^z2 = T · S^e mod N̂``.
"""

from __future__ import annotations

from dataclasses import dataclass

import gmpy2

from shardvault.crypto._sampling import random_signed, random_unit_mod
from shardvault.crypto.errors import (
    EncodingError,
    InvalidPointError,
    MisuseError,
    VerificationError,
)
from shardvault.crypto.group import Group, Point
from shardvault.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from shardvault.crypto.ring_pedersen import RingPedersenParams
from shardvault.crypto.rng import RandomSource
from shardvault.crypto.zk.context import (
    ELL,
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

SLACK = ELL + 128
"""``σ``: the slack of ``α`` over ``e·y`` (challenge bits plus 128 bits of statistical
hiding); smaller than ``ε`` so that large plaintexts still fit below ``N0/4``."""

_INT_FIELDS = ("S", "T", "A", "z1", "z2", "w")


@dataclass(frozen=True, slots=True)
class DecProof:
    """A Πdec proof ``(S, T, A, Z, z1, z2, w)``."""

    S: int
    T: int
    A: int
    Z: Point
    z1: int
    z2: int
    w: int

    def to_wire(self) -> dict[str, int | bytes]:
        """The proof as a field map."""
        out: dict[str, int | bytes] = {name: getattr(self, name) for name in _INT_FIELDS}
        out["Z"] = self.Z.to_bytes()
        return out

    @classmethod
    def from_wire(cls, group: Group, value: object) -> DecProof:
        """Decode a field map.

        Raises:
            EncodingError: wrong shape, a non-integer field or an invalid point.
        """
        if not isinstance(value, dict) or not isinstance(value.get("Z"), bytes):
            raise EncodingError("Πdec proof must be a map with a point Z")
        rest = {k: v for k, v in value.items() if k != "Z"}
        S, T, A, z1, z2, w = _ints(rest, _INT_FIELDS, "Πdec")
        return cls(S, T, A, group.decode_point(value["Z"]), z1, z2, w)


def max_plaintext_bits(modulus_bits: int) -> int:
    """The largest ``bits`` a modulus of ``modulus_bits`` bits supports (``bits + σ + 2 <
    modulus_bits``)."""
    return modulus_bits - SLACK - 3


def _check_bits(bits: int, n0: int) -> None:
    if not 0 < bits <= max_plaintext_bits(n0.bit_length()):
        raise MisuseError(f"Πdec plaintext bound 2^{bits} does not fit the modulus")


def _challenge(
    context: ProofContext,
    q: int,
    prover: PaillierPublicKey,
    setup: RingPedersenParams,
    bits: int,
    C: int,
    B: Point,
    Y: Point,
    proof_head: tuple[int, int, int, Point],
) -> int:
    S, T, A, Z = proof_head
    t = context.transcript("dec")
    t.append_ints("setup", [setup.n, setup.s, setup.t])
    t.append_ints("statement", [prover.n, bits, C])
    t.append("B", B.to_bytes())
    t.append("Y", Y.to_bytes())
    t.append_ints("commitment", [S, T, A])
    t.append("Z", Z.to_bytes())
    return t.challenge_signed("e", q)


def prove(
    context: ProofContext,
    group: Group,
    prover: PaillierSecretKey,
    setup: RingPedersenParams,
    C: int,
    B: Point,
    Y: Point,
    bits: int,
    rng: RandomSource,
) -> DecProof:
    """Figure 30 (point form), prover side: ``C`` is under the prover's own key, so the
    prover decrypts it and recovers its nonce itself.

    Security: the plaintext ``y`` (``χ_i`` in presigning) and ``ρ`` stay inside this call.

    Raises:
        MisuseError: ``bits`` does not fit the modulus, the plaintext is outside
            ``±2^bits``, or ``Y`` is not its image under ``B`` (an honest caller never
            asks for a proof of a false statement).
    """
    n0, nn0, n_hat = prover.n, prover.public.n_squared, setup.n
    _check_bits(bits, n0)
    y = prover.decrypt(C)
    if abs(y) > (1 << bits):
        raise MisuseError(f"Πdec plaintext is outside ±2^{bits}")
    if B * group.scalar(y) != Y:
        raise MisuseError("Πdec statement is false: Y is not y·B")
    rho = prover.recover_nonce(C)
    hat_bits = n_hat.bit_length()
    # Figure 30, step 1 (point form): S, T, A and Z = α·B in place of γ = α mod q.
    alpha = random_signed(bits + SLACK, rng)
    mu = random_signed(ELL + hat_bits, rng)
    nu = random_signed(bits + SLACK + hat_bits, rng)
    r = random_unit_mod(n0, rng)
    S = commit(n_hat, setup.s, setup.t, y, mu)
    T = commit(n_hat, setup.s, setup.t, alpha, nu)
    A = paillier_enc(n0, nn0, alpha, prover.nonce_power(r))
    Z = B * group.scalar(alpha)
    # Figure 30, step 2: the challenge, bound to the statement and the bound ``bits``.
    e = _challenge(context, group.order, prover.public, setup, bits, C, B, Y, (S, T, A, Z))
    # Figure 30, step 3: the responses.
    z1 = alpha + e * y
    z2 = nu + e * mu
    w = int(r * gmpy2.powmod(rho, e, n0) % n0)
    return DecProof(S, T, A, Z, z1, z2, w)


def verify(
    context: ProofContext,
    group: Group,
    prover: PaillierPublicKey,
    setup: RingPedersenParams,
    C: int,
    B: Point,
    Y: Point,
    bits: int,
    proof: DecProof,
    crt: CrtExp | None = None,
) -> None:
    """Figure 30 (point form), verification. ``crt`` (the verifier's own factorisation of
    ``N̂``) only speeds the ring-Pedersen check up.

    Raises:
        MisuseError: ``bits`` does not fit the modulus (a caller's choice, not a peer's).
        VerificationError: a value out of its range or group, or an equation fails.
    """
    n0, nn0, n_hat = prover.n, prover.n_squared, setup.n
    _check_bits(bits, n0)
    check_ciphertext(C, nn0, n0, "Πdec statement C")
    check_ciphertext(proof.A, nn0, n0, "Πdec A")
    check_unit(proof.w, n0, "Πdec w")
    check_unit(proof.S, n_hat, "Πdec S")
    check_unit(proof.T, n_hat, "Πdec T")
    check_signed_range(proof.z1, bits + SLACK, "Πdec z1")
    # z2 = ν + e·μ: the honest bound, checked before any exponentiation.
    z2_bits = commitment_response_bits(bits + SLACK, n_hat.bit_length())
    check_signed_range(proof.z2, z2_bits, "Πdec z2")
    head = (proof.S, proof.T, proof.A, proof.Z)
    try:
        e = _challenge(context, group.order, prover, setup, bits, C, B, Y, head)
    except InvalidPointError as exc:
        raise VerificationError("Πdec statement has the identity") from exc
    # (1+N0)^z1 · w^N0 = A · C^e (mod N0²).
    left = paillier_enc(n0, nn0, proof.z1, powmod(proof.w, n0, nn0))
    if left != proof.A * powmod(C, e, nn0) % nn0:
        raise VerificationError("Πdec Paillier equation fails")
    # z1·B = Z + e·Y.
    if B * group.scalar(proof.z1) != proof.Z + Y * group.scalar(e):
        raise VerificationError("Πdec group equation fails")
    # s^z1 · t^z2 = T · S^e (mod N̂).
    if (
        pow2(setup.s, proof.z1, setup.t, proof.z2, n_hat, crt)
        != proof.T * powmod(proof.S, e, n_hat) % n_hat
    ):
        raise VerificationError("Πdec ring-Pedersen equation fails")
