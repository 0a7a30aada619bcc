"""Keeping a pipeline worker's claim alive while it works on it.

A worker claims queue items under a lease (``PipelineRuntime.lease_s``); an item whose
lease ends is claimed by another worker. Most steps take milliseconds, but some take
longer than a lease: a signature whose quorum fails over waits for the silent co-signer
to be detected and for another quorum, and a batch whose presignatures ran out presigns
them one after another. Without renewal, another worker would start the same transfer
meanwhile, and the co-signers would sign it twice. :class:`LeaseKeeper` renews the
lease of the items a worker holds every third of a lease until the work is settled.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from types import TracebackType

from shardvault.service.platform import Platform
from shardvault.store.repositories_vaults import WorkQueue

_log = logging.getLogger("shardvault.pipeline")


class LeaseKeeper:
    """Renews ``worker``'s lease on ``transaction_ids`` in a thread while in use (a
    context manager); a renewal that fails is logged and tried again next time."""

    def __init__(
        self,
        platform: Platform,
        worker: str,
        transaction_ids: Sequence[str],
        lease_s: float,
    ) -> None:
        self._platform = platform
        self._worker = worker
        self._ids = list(transaction_ids)
        self._lease_s = lease_s
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LeaseKeeper:
        if self._ids:
            self._thread = threading.Thread(
                target=self._keep, name=f"lease-{self._worker}", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=self._lease_s)

    def _keep(self) -> None:
        while not self._done.wait(self._lease_s / 3):
            try:
                with self._platform.unit_of_work() as uow:
                    held = WorkQueue(uow.session).renew(
                        self._ids, self._worker, lease_s=self._lease_s
                    )
            except Exception:
                _log.warning("could not renew a work lease", exc_info=True)
                continue
            if held == 0:
                return
