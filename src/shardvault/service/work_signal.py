"""A process-wide wake-up for pipeline workers: new work was committed.

Workers poll the persistent queue (the source of truth, and the only signal across
processes); in the server process, the API also calls :func:`work_committed` after a
commit that queued work (a new transaction, completed approvals), so an idle worker
claims it at once instead of at its next poll.
"""

from __future__ import annotations

import threading

_SIGNAL = threading.Event()


def work_committed() -> None:
    """Wake the idle workers of this process."""
    _SIGNAL.set()


def wait_for_work(timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for :func:`work_committed`; answers whether it was
    called (the signal is then reset, so the next wait waits again)."""
    woken = _SIGNAL.wait(timeout)
    if woken:
        _SIGNAL.clear()
    return woken
