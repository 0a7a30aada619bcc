"""Shared output conventions of the command line.

A command prints one JSON object on stdout when it succeeds. When it refuses its input it
prints one line on stderr and exits non-zero, having written nothing.
"""

import json
from collections.abc import Mapping
from typing import NoReturn

import click

from shardvault.errors import ShardvaultError


def emit_json(obj: Mapping[str, object]) -> None:
    """Print one JSON object on stdout."""
    click.echo(json.dumps(obj, sort_keys=False))


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one line on stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def fail_on(exc: ShardvaultError) -> NoReturn:
    """Report a typed shardvault error as one line and exit 1."""
    fail(str(exc) or type(exc).__name__)
