"""The ``--profile`` option of ``shardvault server`` and ``shardvault cosigner run``.

``development`` (the default) allows what one host needs to run everything; ``production``
refuses anything that would let one machine sign alone (docs/deployment.md): each
command lists what it refuses.
"""

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

PROFILES = ("development", "production")
"""The profiles a server or a co-signer runs in."""


def profile_option(production: str) -> Callable[[F], F]:
    """``--profile``, with what ``production`` means for this command."""
    return click.option(
        "--profile",
        type=click.Choice(PROFILES),
        default="development",
        show_default=True,
        help=production,
    )
