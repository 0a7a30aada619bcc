"""Feldman verifiable secret sharing.

Feldman (FOCS 1987): the dealer of a polynomial ``f`` publishes commitments
``C_k = a_k * G`` to its coefficients. A share ``s_i = f(i)`` is valid exactly when
``s_i * G == sum_k i^k * C_k``. This is RFC 9591 Appendix C.2 ``vss_verify`` and the check
each party makes on the shares it receives in the FROST paper's KeyGen (round 2, step 2)
and in CGGMP21's key generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shardvault.crypto.errors import EncodingError, VerificationError
from shardvault.crypto.group import Group, Point, Scalar
from shardvault.crypto.polynomial import Polynomial


@dataclass(frozen=True, slots=True)
class VerifiableCommitment:
    """Feldman commitments ``C_0 .. C_{t-1}`` to a sharing polynomial's coefficients.

    ``C_0`` commits to the secret itself (the dealer's contribution to the group key).
    """

    group: Group
    points: tuple[Point, ...]

    @classmethod
    def of(cls, polynomial: Polynomial) -> VerifiableCommitment:
        """Commit to every coefficient of ``polynomial``."""
        return cls(
            polynomial.group,
            tuple(polynomial.group.base_multiply(a) for a in polynomial.coefficients),
        )

    @property
    def min_signers(self) -> int:
        """The threshold this commitment shares at (degree plus one)."""
        return len(self.points)

    @property
    def constant(self) -> Point:
        """``C_0``, the commitment to the shared secret."""
        return self.points[0]

    def evaluate(self, identifier: int) -> Point:
        """``sum_k identifier^k * C_k``: the public image of the share of ``identifier``."""
        x = self.group.scalar(identifier)
        result = self.group.identity()
        for point in reversed(self.points):
            result = result * x + point
        return result

    def verify_share(self, identifier: int, share: Scalar) -> None:
        """Check ``share * G == evaluate(identifier)``.

        Raises:
            VerificationError: the share does not match the commitments.
        """
        if self.group.base_multiply(share) != self.evaluate(identifier):
            raise VerificationError(f"share for party {identifier} does not match commitments")

    def to_bytes(self) -> tuple[bytes, ...]:
        """Each commitment point in its ciphersuite encoding."""
        return tuple(point.to_bytes() for point in self.points)

    @classmethod
    def from_bytes(cls, group: Group, encoded: Sequence[bytes]) -> VerifiableCommitment:
        """Decode and validate commitment points (each must be a valid non-identity point).

        Raises:
            EncodingError: an empty list, or a point that does not decode.
        """
        if not encoded:
            raise EncodingError("a commitment needs at least one point")
        return cls(group, tuple(group.decode_point(item) for item in encoded))


def sum_commitments(commitments: Sequence[VerifiableCommitment]) -> VerifiableCommitment:
    """The coefficient-wise sum: the commitment to the sum of the dealers' polynomials."""
    first = commitments[0]
    width = first.min_signers
    if any(c.min_signers != width for c in commitments):
        raise EncodingError("commitments of different thresholds cannot be summed")
    return VerifiableCommitment(
        first.group,
        tuple(first.group.sum_points([c.points[k] for c in commitments]) for k in range(width)),
    )
