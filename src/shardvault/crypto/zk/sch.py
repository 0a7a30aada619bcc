"""Πsch: Schnorr proof of knowledge of a discrete logarithm, made non-interactive.

Source: CGGMP21 (ePrint 2021/060), Figure 22 "Schnorr PoK", used by key generation
(Figure 5, rounds 1 and 3) and key refresh (Figure 6): the prover commits to
``A = α·G`` early (inside the hashed commitment of round 1) and answers the challenge
``e`` with ``z = α + e·x mod q``; the verifier checks ``z·G = A + e·X``. The challenge
comes from a :class:`~shardvault.crypto.zk.context.ProofContext` transcript, so it binds
session id, prover id, curve, auxiliary info and the round's common randomness ``rid``.
"""

from __future__ import annotations

from dataclasses import dataclass

from shardvault.crypto.errors import (
    EncodingError,
    InvalidScalarError,
    MisuseError,
    VerificationError,
)
from shardvault.crypto.group import Group, Point, Scalar
from shardvault.crypto.rng import RandomSource
from shardvault.crypto.zk.context import ProofContext


class SchnorrNonce:
    """The prover's secret ``α`` between the commitment and the response.

    Security: ``α`` together with a response reveals the witness; it is used once, then
    cleared by :meth:`respond`, which refuses a second call.
    """

    __slots__ = ("_alpha", "commitment")

    def __init__(self, group: Group, rng: RandomSource) -> None:
        alpha = group.random_scalar(rng)
        self._alpha: Scalar | None = alpha
        self.commitment: Point = group.base_multiply(alpha)

    def __repr__(self) -> str:
        return "SchnorrNonce(<redacted>)"

    def respond(self, challenge: Scalar, witness: Scalar) -> Scalar:
        """``z = α + e·x``; the nonce is spent afterwards.

        Raises:
            MisuseError: the nonce was already used.
        """
        alpha = self._alpha
        if alpha is None:
            raise MisuseError("a Schnorr nonce answers one challenge only")
        self._alpha = None
        return alpha + challenge * witness


def challenge(
    context: ProofContext, group: Group, statement: Point, commitment: Point, rid: bytes
) -> Scalar:
    """The Fiat-Shamir challenge ``e`` of Figure 22, bound to ``rid`` and the context."""
    t = context.transcript("sch")
    t.append("rid", rid)
    t.append("X", statement.to_bytes())
    t.append("A", commitment.to_bytes())
    return group.scalar(t.challenge_int_below("e", group.order))


@dataclass(frozen=True, slots=True)
class SchnorrProof:
    """A Πsch transcript ``(A, z)``."""

    commitment: Point
    response: Scalar

    def to_wire(self) -> list[bytes]:
        """``[A, z]`` in their group encodings."""
        return [self.commitment.to_bytes(), self.response.to_bytes()]

    @classmethod
    def from_wire(cls, group: Group, value: object) -> SchnorrProof:
        """Decode ``[A, z]``.

        Raises:
            EncodingError: wrong shape, invalid point or scalar.
        """
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, bytes) for v in value)
        ):
            raise EncodingError("Schnorr proof must be [A, z]")
        return cls(group.decode_point(value[0]), group.decode_scalar(value[1]))


def prove(
    context: ProofContext,
    group: Group,
    statement: Point,
    witness: Scalar,
    rid: bytes,
    rng: RandomSource,
) -> SchnorrProof:
    """One-shot Πsch for ``X = x·G``."""
    nonce = SchnorrNonce(group, rng)
    e = challenge(context, group, statement, nonce.commitment, rid)
    return SchnorrProof(nonce.commitment, nonce.respond(e, witness))


def verify(
    context: ProofContext, group: Group, statement: Point, proof: SchnorrProof, rid: bytes
) -> None:
    """Figure 22, verification: ``z·G = A + e·X``.

    Raises:
        VerificationError: the equation fails.
    """
    try:
        e = challenge(context, group, statement, proof.commitment, rid)
    except InvalidScalarError as exc:  # pragma: no cover - identity statements never encode
        raise VerificationError("Schnorr statement is not encodable") from exc
    if group.base_multiply(proof.response) != proof.commitment + statement * e:
        raise VerificationError("Schnorr proof does not verify")
