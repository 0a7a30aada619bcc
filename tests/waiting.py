"""Waiting in tests for something another thread or process does."""

import time
from collections.abc import Callable


def eventually(
    condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02
) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; answers whether it
    held (its value at the deadline)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return condition()
        time.sleep(interval)
    return True
