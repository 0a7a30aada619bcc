"""Chaum-Pedersen proof that two points share a discrete logarithm, made non-interactive.

Chaum and Pedersen, "Wallet Databases with Observers" (CRYPTO '92), §3.2: the prover knows
``x`` with ``Y = x·G`` and ``S = x·R`` for a second base ``R``. It picks ``w``, sends
``A = w·G`` and ``B = w·R``, gets a challenge ``c`` and answers ``z = w + c·x``; the
verifier checks ``z·G = A + c·Y`` and ``z·R = B + c·S``. Fiat-Shamir: ``c`` is drawn from a
:class:`~shardvault.crypto.transcript.Transcript` over a caller's context, both bases, both
points and both commitments. The proof is sent as ``(c, z)``; the verifier recomputes
``A = z·G - c·Y`` and ``B = z·R - c·S`` and checks that they hash to ``c``.

Used by :mod:`shardvault.crypto.protocols.complaints`: a party that complains about a share
encrypted to it shows the Diffie-Hellman value ``S = y·R`` for the ciphertext's ephemeral
key ``R`` and proves it is the one its published key ``Y`` determines, without revealing
``y``.
"""

from __future__ import annotations

from dataclasses import dataclass

from shardvault.crypto.errors import EncodingError, MisuseError, VerificationError
from shardvault.crypto.group import Group, Point, Scalar
from shardvault.crypto.rng import RandomSource
from shardvault.crypto.transcript import Transcript

DOMAIN = "shardvault/zk/dleq/v1"
"""Domain tag of every DLEQ challenge."""


@dataclass(frozen=True, slots=True)
class DleqProof:
    """A proof ``(c, z)``; :meth:`to_bytes` is the two canonical scalars."""

    challenge: Scalar
    response: Scalar

    def to_bytes(self) -> bytes:
        """``SerializeScalar(c) || SerializeScalar(z)``."""
        return self.challenge.to_bytes() + self.response.to_bytes()

    @classmethod
    def from_bytes(cls, group: Group, data: bytes) -> DleqProof:
        """Decode two canonical scalars.

        Raises:
            EncodingError: the wrong length or a scalar not below the group order.
        """
        if len(data) != 2 * group.scalar_length:
            raise EncodingError(f"a DLEQ proof is {2 * group.scalar_length} bytes")
        half = group.scalar_length
        return cls(group.decode_scalar(data[:half]), group.decode_scalar(data[half:]))


def _challenge(
    group: Group, context: bytes, base: Point, public: Point, shared: Point, a: Point, b: Point
) -> Scalar:
    t = Transcript(DOMAIN)
    t.append("group", group.name.encode())
    t.append("context", context)
    for label, point in (
        ("G", group.generator()),
        ("Y", public),
        ("R", base),
        ("S", shared),
        ("A", a),
        ("B", b),
    ):
        t.append(label, group.point_bytes_or_identity(point))
    return group.scalar(t.challenge_int_below("c", group.order))


def prove(
    group: Group, context: bytes, secret: Scalar, base: Point, rng: RandomSource
) -> DleqProof:
    """Prove that ``secret·G`` and ``secret·base`` share the discrete log ``secret``.

    Raises:
        MisuseError: a zero secret or the identity as ``base``.
    """
    if secret.is_zero() or base.is_identity():
        raise MisuseError("a DLEQ proof needs a non-zero secret and a non-identity base")
    w = group.random_scalar(rng)
    a, b = group.base_multiply(w), base * w
    c = _challenge(group, context, base, group.base_multiply(secret), base * secret, a, b)
    return DleqProof(c, w + c * secret)


def verify(
    group: Group, context: bytes, public: Point, base: Point, shared: Point, proof: DleqProof
) -> None:
    """Check that ``log_G(public) = log_base(shared)`` under ``context``.

    Raises:
        VerificationError: the proof does not verify.
    """
    c, z = proof.challenge, proof.response
    a = group.base_multiply(z) - public * c
    b = base * z - shared * c
    if _challenge(group, context, base, public, shared, a, b) != c:
        raise VerificationError("DLEQ proof does not verify")
