"""Typed amounts: integers in a chain's base unit, never floats.

``Wei``, ``Satoshi`` and ``Lamports`` are distinct integer types so that one cannot be
passed where another is expected. :func:`parse_decimal_amount` turns a decimal string such
as ``"1.5"`` into base units exactly, refusing more fractional digits than the asset has.
"""

import re
from typing import NewType

from shardvault.chains.errors import InvalidAmountError

Wei = NewType("Wei", int)
"""Ether's base unit (10**-18 ETH); also the unit of every ERC-20 amount's raw integer."""

Satoshi = NewType("Satoshi", int)
"""Bitcoin's base unit (10**-8 BTC)."""

Lamports = NewType("Lamports", int)
"""Solana's base unit (10**-9 SOL)."""

UINT256_MAX = 2**256 - 1
"""The largest value an EVM word holds."""

MAX_SATOSHI = 21_000_000 * 100_000_000
"""Bitcoin's money range: no output or sum may exceed it."""

UINT64_MAX = 2**64 - 1
"""The largest lamport amount a Solana instruction carries."""

_DECIMAL = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")


def parse_decimal_amount(text: str, decimals: int, *, maximum: int, field: str = "amount") -> int:
    """Parse a non-negative decimal string into base units of an asset with ``decimals``.

    Raises:
        InvalidAmountError: not a plain decimal (no sign, exponent or spaces), more
            fractional digits than ``decimals``, or a result above ``maximum``.
    """
    if not isinstance(text, str) or len(text) > 100:
        raise InvalidAmountError("must be a decimal string of at most 100 characters", field=field)
    match = _DECIMAL.fullmatch(text)
    if match is None:
        raise InvalidAmountError("must be a non-negative decimal such as 1.25", field=field)
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > decimals:
        raise InvalidAmountError(
            f"has {len(fraction)} decimal places; the asset has {decimals}", field=field
        )
    scale: int = 10**decimals
    value = int(whole) * scale + int(fraction.ljust(decimals, "0") or "0")
    if value > maximum:
        raise InvalidAmountError("exceeds the largest amount the chain allows", field=field)
    return value


def format_decimal_amount(value: int, decimals: int) -> str:
    """Render base units as an exact decimal string (no trailing zeros after the point)."""
    if value < 0:
        raise InvalidAmountError("must not be negative", field="amount")
    scale: int = 10**decimals
    whole, fraction = divmod(value, scale)
    if fraction == 0:
        return str(whole)
    return f"{whole}.{str(fraction).rjust(decimals, '0').rstrip('0')}"


def wei(value: int) -> Wei:
    """Check and type a wei amount (0 <= value <= 2**256 - 1)."""
    if not 0 <= value <= UINT256_MAX:
        raise InvalidAmountError("wei must be between 0 and 2**256 - 1", field="amount")
    return Wei(value)


def satoshi(value: int) -> Satoshi:
    """Check and type a satoshi amount (0 <= value <= 21e6 BTC)."""
    if not 0 <= value <= MAX_SATOSHI:
        raise InvalidAmountError("satoshi must be between 0 and 21e14", field="amount")
    return Satoshi(value)


def lamports(value: int) -> Lamports:
    """Check and type a lamport amount (0 <= value <= 2**64 - 1)."""
    if not 0 <= value <= UINT64_MAX:
        raise InvalidAmountError("lamports must be between 0 and 2**64 - 1", field="amount")
    return Lamports(value)
