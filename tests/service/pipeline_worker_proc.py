"""A pipeline worker in its own process, for the crash tests.

Usage: ``python -m tests.service.pipeline_worker_proc <json>`` where the JSON names the
database URL, the audit key file, the custody directory, the transaction to finish, the
lease in seconds and an optional crash point. At the crash point (a name passed to the
pipeline's fault hook) the process SIGKILLs itself: nothing is flushed, no handler runs,
exactly as if the host died there. Without a crash point it works until the transaction
is in a final state and exits 0.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from shardvault.audit import AuditSigner
from shardvault.service.pipeline import PipelineRuntime, PipelineWorker
from shardvault.service.platform import Platform
from shardvault.service.signing import LocalCeremonyBackend
from shardvault.store import Database
from shardvault.store.models_vaults import TERMINAL_STATUSES, Transaction
from tests.service.pipeline_support import TEST_ONLY_PRIMES, open_custody


def main() -> None:
    config = json.loads(sys.argv[1])
    crash_at = config.get("crash_at")

    def hook(point: str) -> None:
        if point == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)

    database = Database(config["db_url"])
    platform = Platform(database, AuditSigner.load_or_create(Path(config["audit_key"])))
    backend = LocalCeremonyBackend(
        open_custody(Path(config["custody"])), test_only_primes=TEST_ONLY_PRIMES
    )
    runtime = PipelineRuntime(
        backend, lease_s=float(config["lease_s"]), confirmation_poll_s=0.05, fault_hook=hook
    )
    worker = PipelineWorker(platform, runtime)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        worker.run_once()
        with database.transaction() as session:
            tx = session.get(Transaction, config["tx_id"])
            if tx is not None and tx.status in TERMINAL_STATUSES:
                return
        time.sleep(0.05)
    sys.exit(3)


if __name__ == "__main__":
    main()
