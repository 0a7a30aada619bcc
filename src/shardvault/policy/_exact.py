"""Exact decimal arithmetic for amounts and prices.

Every operation goes through :data:`EXACT`, a decimal context wide enough for any amount
the policy layer accepts (base units up to 80 digits, prices and limits up to 80 digits)
whose traps turn any rounding into an exception. An inexact result is therefore a
defect, never a silently rounded limit.
"""

import re
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

_DECIMAL_TEXT = re.compile(r"(0|[1-9][0-9]{0,39})(\.[0-9]{1,40})?")
"""A price as documents write it: digits, optionally a point and more digits."""


def decimal_text(value: object) -> Decimal | None:
    """``value`` read as a non-negative decimal string such as ``"3000.25"`` (at most
    40 digits on each side of the point, no sign, exponent or leading zero), exactly;
    ``None`` for anything else."""
    if not isinstance(value, str) or not _DECIMAL_TEXT.fullmatch(value):
        return None
    return EXACT.create_decimal(value)


def decimal_string(value: Decimal) -> str:
    """The canonical text of a non-negative decimal: no exponent, no trailing zeros."""
    return format(value.normalize(EXACT), "f")


def units(base_units: int, decimals: int) -> Decimal:
    """``base_units`` shifted ``decimals`` places right, exactly."""
    return EXACT.scaleb(Decimal(base_units), -decimals)


def value_of(base_units: int, decimals: int, price: Decimal) -> Decimal:
    """The reference-currency value of ``base_units`` at ``price`` per whole unit."""
    return EXACT.scaleb(EXACT.multiply(Decimal(base_units), price), -decimals)


def add(a: Decimal, b: Decimal) -> Decimal:
    """``a + b``, exactly."""
    return EXACT.add(a, b)
