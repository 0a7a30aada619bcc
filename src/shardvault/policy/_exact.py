"""Exact decimal arithmetic for amounts and prices.

Every operation goes through :data:`EXACT`, a decimal context wide enough for any amount
the policy layer accepts (base units up to 80 digits, prices and limits up to 80 digits)
whose traps turn any rounding into an exception. An inexact result is therefore a
defect, never a silently rounded limit.
"""

from decimal import (
    Clamped,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Underflow,
)

EXACT = Context(
    prec=400,
    Emax=10_000,
    Emin=-10_000,
    traps=[Inexact, Rounded, InvalidOperation, DivisionByZero, Overflow, Underflow, Clamped],
)
"""The decimal context of all policy arithmetic: 400 digits, every inexactness trapped."""

ZERO = Decimal(0)


def units(base_units: int, decimals: int) -> Decimal:
    """``base_units`` shifted ``decimals`` places right, exactly."""
    return EXACT.scaleb(Decimal(base_units), -decimals)


def value_of(base_units: int, decimals: int, price: Decimal) -> Decimal:
    """The reference-currency value of ``base_units`` at ``price`` per whole unit."""
    return EXACT.scaleb(EXACT.multiply(Decimal(base_units), price), -decimals)


def add(a: Decimal, b: Decimal) -> Decimal:
    """``a + b``, exactly."""
    return EXACT.add(a, b)
