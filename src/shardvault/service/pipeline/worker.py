"""Workers: claim due work from the ``pipeline_work`` queue under a lease (``SELECT ...
FOR UPDATE SKIP LOCKED`` on PostgreSQL) and advance each claimed transaction until it
must wait (approvals, confirmations) or is finished."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

from sqlalchemy.orm.exc import StaleDataError

from shardvault.service.pipeline.batch import Pipeline
from shardvault.service.pipeline.outcomes import NEXT, Later, Outcome, delay_of
from shardvault.service.pipeline.runtime import PipelineRuntime
from shardvault.service.platform import Platform
from shardvault.service.work_lease import LeaseKeeper
from shardvault.service.work_signal import wait_for_work, work_committed
from shardvault.store.repositories_vaults import WorkQueue
from shardvault.store.types import utcnow

_log = logging.getLogger("shardvault.pipeline")


IDLE_POLL_S = 1.0
"""The longest an idle worker waits before it looks at the queue again. Work this
process queues wakes a worker at once; work queued by another process (a second server
on the same database, a tool) is seen within this time."""

MIN_IDLE_S = 0.01
"""The shortest wait after an empty claim, so that an item another worker is claiming
cannot make this one spin."""


DEFAULT_BATCH_SIZE = 32
"""Items a worker claims at once. A burst's transfers of one workspace share one
evaluation commit, one round of signing requests and one commit per later step
(:meth:`PipelineWorker._batch`), so their fixed costs are paid once per batch: in the
co-signer bench, batches of 32 instead of 8 took the server's CPU per transfer in a
burst from about 15 to 12 ms (docs/performance.md). A batch whose presignatures ran
out presigns them one after another, 32 in about 7 s here and 15 s at the slowest
presigning rate measured: inside the claim's lease (:attr:`PipelineRuntime.lease_s`)."""

MAX_BATCH_SIZE = 256
"""The largest batch size a worker accepts."""


class PipelineWorker:
    """Claims due work from the queue and advances it (module docstring)."""

    def __init__(
        self,
        platform: Platform,
        runtime: PipelineRuntime,
        *,
        worker_id: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH_SIZE}")
        self.platform = platform
        self.runtime = runtime
        self.pipeline = Pipeline(platform, runtime)
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        self.batch_size = batch_size

    def run_once(self, *, limit: int | None = None) -> int:
        """Claim up to ``limit`` (default: the worker's batch size) due items and
        advance each as far as it goes now.
        Transfers of one workspace awaiting policy are evaluated and signed together
        (:meth:`Pipeline.evaluate_batch`), then each goes on alone, in claim order (for
        EVM transfers of one address, nonce order). Returns how many items were
        claimed."""
        limit = self.batch_size if limit is None else limit
        with self.platform.unit_of_work() as uow:
            claimed = [
                (w.workspace_id, w.transaction_id)
                for w in WorkQueue(uow.session).claim(
                    self.worker_id, lease_s=self.runtime.lease_s, limit=limit
                )
            ]
        if len(claimed) == limit:
            work_committed()  # more may be due: another idle worker claims the next ones
        ids = [tx_id for _, tx_id in claimed]
        with LeaseKeeper(self.platform, self.worker_id, ids, self.runtime.lease_s):
            batched = self._batch(claimed)
            # What a batch left waiting or finished is given back in one commit, before
            # the rest goes on (a transfer woken meanwhile must not be re-delayed after).
            self._settle({t: o for t, o in batched.items() if o != NEXT})
            for workspace_id, tx_id in claimed:
                if batched.get(tx_id, NEXT) == NEXT:
                    self._work(workspace_id, tx_id)
        return len(claimed)

    def _batch(self, claimed: Sequence[tuple[str, str]]) -> dict[str, Outcome]:
        """Evaluate and sign together the claimed transfers of each workspace that may
        await policy (two or more; a transfer with a hint has gone past it). Answers the
        delays :meth:`Pipeline.evaluate_batch` gave; after an error there, none (each
        transfer then goes on alone, from the state it was left in)."""
        groups: dict[str, list[str]] = {}
        for workspace_id, tx_id in claimed:
            if not self.runtime.hints.holds(tx_id):
                groups.setdefault(workspace_id, []).append(tx_id)
        outcomes: dict[str, Outcome] = {}
        order = self.runtime.send_order
        for workspace_id, tx_ids in groups.items():
            if len(tx_ids) < 2:
                continue
            try:
                done = self.pipeline.evaluate_batch(workspace_id, tx_ids)
                outcomes.update(done)
                going = [t for t in tx_ids if done.get(t) == NEXT]
                order.done([t for t in tx_ids if t not in going])  # not sent in this batch
                if going:
                    outcomes.update(self.pipeline.finish_batch(workspace_id, going))
            except Exception:
                # One transfer's fault (or a raced row) undoes the shared evaluation;
                # the single path meets it again and fails only that transfer.
                _log.warning(
                    "batch of %d transfers goes on one at a time", len(tx_ids), exc_info=True
                )
            finally:
                order.done(tx_ids)  # nonces not sent here are not waited for
        return outcomes

    def _work(self, workspace_id: str, tx_id: str) -> None:
        """Advance ``tx_id`` until it must wait, then give its item back or finish it."""
        outcome: Outcome = NEXT
        try:
            while outcome == NEXT:
                outcome = self.pipeline.advance(workspace_id, tx_id)
        except StaleDataError:
            outcome = NEXT  # another step won the race; look again at once
        except Exception:
            _log.exception("pipeline step for %s failed; retrying later", tx_id)
            outcome = Later(self.runtime.broadcast_retry_s)
        self._settle({tx_id: outcome})

    def _settle(self, outcomes: Mapping[str, Outcome]) -> None:
        """Finish the items that need no more steps (:data:`REST`), give the others back
        due after their delay; one commit."""
        if not outcomes:
            return
        delays = {tx_id: delay_of(outcome) for tx_id, outcome in outcomes.items()}
        now = utcnow()
        with self.platform.unit_of_work() as uow:
            queue = WorkQueue(uow.session)
            queue.finish_many([t for t, d in delays.items() if d is None], self.worker_id)
            for tx_id, delay in delays.items():
                if delay is not None:
                    queue.release(tx_id, self.worker_id, now + timedelta(seconds=delay))

    def run(self, stop: threading.Event, *, max_idle_s: float = IDLE_POLL_S) -> None:
        """Work until ``stop`` is set. When a claim comes back empty, wait until the
        queue's next item falls due (a read, outside the write lock), at most
        ``max_idle_s`` (work another process queued has no other way to reach this
        one), and at once when this process commits new work (:mod:`.work_signal`)."""
        while not stop.is_set():
            if self.run_once() > 0:
                continue
            wait = self.idle_wait(max_idle_s)
            if wait > 0:
                wait_for_work(wait)

    def idle_wait(self, max_idle_s: float = IDLE_POLL_S) -> float:
        """Seconds until the queue's next item can be claimed, between
        :data:`MIN_IDLE_S` (an item that looks due but was not claimable: another
        worker's claim is committing) and ``max_idle_s``."""
        with self.platform.unit_of_work(read_only=True) as uow:
            at = WorkQueue(uow.session).next_claimable()
        if at is None:
            return max_idle_s
        return min(max_idle_s, max(MIN_IDLE_S, (at - utcnow()).total_seconds()))

    def drain(self, *, timeout_s: float = 60.0, until: Callable[[], bool] | None = None) -> None:
        """Work until nothing is due (or ``until()`` holds); for tools and tests."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if until is not None and until():
                return
            if self.run_once() == 0:
                if until is None:
                    with self.platform.unit_of_work() as uow:
                        due = WorkQueue(uow.session).due()
                    if due == 0:
                        return
                time.sleep(0.05)
        raise TimeoutError("the pipeline did not settle in time")
