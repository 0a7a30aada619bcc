"""Polynomials over a group's scalar field, Shamir sharing and Lagrange interpolation.

Shamir's secret sharing (1979): a degree ``min_signers - 1`` polynomial ``f`` with
``f(0) = secret``; party ``i`` holds ``f(i)``. Any ``min_signers`` shares determine
``f(0)`` through Lagrange interpolation at zero (RFC 9591 §4.2, ``derive_interpolating_value``).
Party identifiers are non-zero scalars; shardvault uses the integers 1..max_signers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from shardvault.crypto.errors import MisuseError
from shardvault.crypto.group import Group, Scalar
from shardvault.crypto.rng import RandomSource


class Polynomial:
    """A polynomial ``a_0 + a_1 x + ... + a_{d} x^d`` with scalar coefficients.

    Security: the coefficients of a sharing polynomial are secret; ``repr`` shows only the
    degree and group.
    """

    __slots__ = ("coefficients", "group")

    def __init__(self, group: Group, coefficients: Sequence[Scalar]) -> None:
        if not coefficients:
            raise MisuseError("a polynomial needs at least one coefficient")
        self.group = group
        self.coefficients: tuple[Scalar, ...] = tuple(coefficients)

    @classmethod
    def random(
        cls, group: Group, degree: int, rng: RandomSource, constant: Scalar | None = None
    ) -> Polynomial:
        """A uniformly random polynomial of ``degree``, with the given constant term if any."""
        if degree < 0:
            raise MisuseError("degree must be non-negative")
        first = constant if constant is not None else group.random_scalar(rng)
        return cls(group, [first] + [group.random_scalar(rng) for _ in range(degree)])

    @property
    def degree(self) -> int:
        """The polynomial's formal degree (number of coefficients minus one)."""
        return len(self.coefficients) - 1

    def evaluate(self, x: Scalar | int) -> Scalar:
        """``f(x)`` by Horner's rule."""
        x_value = x.value if isinstance(x, Scalar) else x
        result = self.group.scalar(0)
        for coefficient in reversed(self.coefficients):
            result = result * x_value + coefficient
        return result

    def __repr__(self) -> str:
        return f"Polynomial({self.group.name}, degree={self.degree}, <redacted>)"


def lagrange_coefficient(group: Group, identifier: int, identifiers: Iterable[int]) -> Scalar:
    """The Lagrange coefficient of ``identifier`` for interpolation at zero.

    RFC 9591 §4.2 ``derive_interpolating_value``:
    ``lambda_i = prod_{j != i} x_j / (x_j - x_i)``.

    Raises:
        MisuseError: ``identifier`` is not in ``identifiers``, an identifier repeats, or one
            is zero (modulo the group order).
    """
    return lagrange_coefficient_at(group, identifier, identifiers, 0)


def lagrange_coefficient_at(
    group: Group, identifier: int, identifiers: Iterable[int], at: int
) -> Scalar:
    """The Lagrange basis polynomial of ``identifier`` over ``identifiers``, evaluated at ``at``.

    ``L_i(x) = prod_{j != i} (x - x_j) / (x_i - x_j)``; at ``x = 0`` this is
    :func:`lagrange_coefficient`.

    Raises:
        MisuseError: as :func:`lagrange_coefficient`.
    """
    ids = [group.scalar(x) for x in identifiers]
    me = group.scalar(identifier)
    if len(set(ids)) != len(ids):
        raise MisuseError("identifiers must be distinct")
    if any(x.is_zero() for x in ids):
        raise MisuseError("identifiers must be non-zero")
    if me not in ids:
        raise MisuseError("identifier is not in the signer set")
    x = group.scalar(at)
    numerator = group.scalar(1)
    denominator = group.scalar(1)
    for other in ids:
        if other == me:
            continue
        numerator = numerator * (x - other)
        denominator = denominator * (me - other)
    return numerator * denominator.inverse()
