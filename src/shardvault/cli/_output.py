"""Shared output conventions of the command line.

A command prints one JSON object on stdout when it succeeds. When it refuses its input it
prints one line on stderr and exits non-zero, having written nothing.
"""

import json
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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


@contextmanager
def waiting(label: str, *, enabled: bool = True) -> Iterator[None]:
    """Show ``label`` and the elapsed seconds on stderr while the block runs (a server
    call that takes long, such as key generation); on a terminal the line updates in
    place, elsewhere it is printed once. Nothing is shown when ``enabled`` is false."""
    if not enabled:
        yield
        return
    if not sys.stderr.isatty():
        click.echo(f"{label}...", err=True)
        yield
        return
    done = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        frames = "|/-\\"
        step = 0
        while not done.wait(0.2):
            elapsed = time.monotonic() - started
            click.echo(f"\r{frames[step % 4]} {label}... {elapsed:5.1f} s", err=True, nl=False)
            step += 1

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        click.echo(f"\r  {label}: {time.monotonic() - started:.1f} s", err=True)
