"""``shardvault chain``: Chain tools: decode transactions, PSBTs and messages.

``decode`` calls the pure chain layers directly. Each chain's ``describe(data)`` returns a
JSON-able dict or raises a :class:`~shardvault.chains.errors.ChainError`; the chain
module is imported only when its branch runs, so a chain whose module is absent reports
itself unavailable without breaking the others.
"""

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import cast

import click

from shardvault.chains.errors import ChainError
from shardvault.cli._output import emit_json, fail, fail_on

_DESCRIBERS = {
    "ethereum": "shardvault.chains.ethereum",
    "bitcoin": "shardvault.chains.bitcoin",
    "solana": "shardvault.chains.solana",
}
"""The module whose ``describe(data: str) -> dict`` decodes each chain's data."""

Describer = Callable[[str], Mapping[str, object]]


def _describer(chain: str) -> Describer:
    """Import the chain module lazily and return its ``describe`` function."""
    module_name = _DESCRIBERS[chain]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            fail(f"chain {chain!r} is not available in this build ({module_name} is missing)")
        raise
    describe = getattr(module, "describe", None)
    if not callable(describe):
        fail(f"chain {chain!r} is not available in this build ({module_name} has no decoder)")
    return cast(Describer, describe)


@click.group(name="chain")
def group() -> None:
    """Chain tools: decode transactions, PSBTs and messages."""


@group.command(name="decode")
@click.option(
    "--chain",
    "chain",
    type=click.Choice(sorted(_DESCRIBERS)),
    required=True,
    help="Which chain's encoding DATA is in.",
)
@click.argument("data")
def decode(chain: str, data: str) -> None:
    """Decode DATA and print its fields as one JSON object.

    DATA is, for ethereum, a raw transaction in hex (signed or unsigned; types 0, 1, 2) or
    an EIP-712 typed-data JSON object; for bitcoin a PSBT or raw transaction; for solana a
    transaction or message, in the encoding each chain uses. Use - to read DATA from stdin.
    """
    if data == "-":
        data = sys.stdin.read()
    describe = _describer(chain)
    try:
        result = describe(data)
    except ChainError as exc:
        fail_on(exc)
    emit_json(result)
