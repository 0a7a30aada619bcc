"""A process-wide wake-up for pipeline workers: new work was committed.

Workers poll the persistent queue (the source of truth, and the only signal across
processes); in the server process, the API also calls :func:`work_committed` after a
commit that queued work (a new transaction, completed approvals), so an idle worker
claims it at once instead of at its next poll. Each call wakes one worker, not all of
them: sixteen workers racing to claim one item cost sixteen write transactions.
"""

from __future__ import annotations

import threading

_CONDITION = threading.Condition()
_pending = 0


def work_committed() -> None:
    """Wake one idle worker of this process (or let the next one to wait go at once)."""
    global _pending
    with _CONDITION:
        _pending += 1
        _CONDITION.notify(1)


def wait_for_work(timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for :func:`work_committed` calls not yet taken by
    another waiter, and take them all; answers whether there were any.

    All: the waker claims every due item up to its limit, so the other calls of a burst
    (a hundred API commits) would each send a worker to claim nothing, every claim a
    write transaction. A worker whose claim came back full wakes one more itself
    (:class:`~shardvault.service.pipeline.PipelineWorker`)."""
    global _pending
    with _CONDITION:
        if _pending == 0:
            _CONDITION.wait(timeout)
        if _pending > 0:
            _pending = 0
            return True
        return False
