"""Shared output conventions of the command line.

A command prints one JSON object on stdout when it succeeds. When it refuses its input it
prints one line on stderr and exits non-zero, having written nothing.
"""

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
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


BAR_WIDTH = 30
"""Characters in a progress bar."""


def render_bar(label: str, done: int, total: int, detail: str, elapsed: float) -> str:
    """One line of a progress bar: ``label [####......] done/total detail  1.2 s``."""
    total = max(total, 1)
    done = min(max(done, 0), total)
    filled = BAR_WIDTH * done // total
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    suffix = f" {detail}" if detail else ""
    return f"{label} [{bar}] {done}/{total}{suffix} {elapsed:5.1f} s"


@contextmanager
def progress_bar(label: str, *, enabled: bool = True) -> Iterator[Callable[[int, int, str], None]]:
    """A progress bar on stderr while the block runs; the block calls the function it
    is given with ``(done, total, detail)`` as the work advances. On a terminal the bar
    redraws in place (with the elapsed seconds); elsewhere the label is printed once and
    the last state at the end. Nothing is shown when ``enabled`` is false."""
    state: tuple[int, int, str] = (0, 0, "")
    lock = threading.Lock()

    def update(done: int, total: int, detail: str) -> None:
        nonlocal state
        with lock:
            state = (done, total, detail)

    if not enabled:
        yield update
        return
    started = time.monotonic()

    def line() -> str:
        with lock:
            done, total, detail = state
        return render_bar(label, done, total, detail, time.monotonic() - started)

    if not sys.stderr.isatty():
        click.echo(f"{label}...", err=True)
        try:
            yield update
        finally:
            click.echo(line(), err=True)
        return
    done_event = threading.Event()

    def tick() -> None:
        while not done_event.wait(0.2):
            click.echo(f"\r{line()}", err=True, nl=False)

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield update
    finally:
        done_event.set()
        thread.join()
        click.echo(f"\r{line()}", err=True)
