"""``shardvault server`` options for the transaction pipeline, and its worker thread.

The embedded default: key shares in ``DATA_DIR/custody`` (a local keyring sealed with the
passphrase in ``SHARDVAULT_KEYRING_PASSPHRASE``, and a local share store), signed by the
:class:`~shardvault.service.signing.LocalCeremonyBackend` (every party in the server
process: a development backend, see docs/transactions.md), and one pipeline worker
thread. Without the passphrase the server runs without a signing backend: vault creation
answers 503 and submitted transactions wait in the queue.
"""

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from shardvault.service.pipeline import PipelineRuntime, PipelineWorker
    from shardvault.service.platform import Platform

F = TypeVar("F", bound=Callable[..., Any])

PASSPHRASE_ENV = "SHARDVAULT_KEYRING_PASSPHRASE"  # noqa: S105 (a variable name)
"""The environment variable holding the local keyring's passphrase."""

PRESIGNATURE_POOL = 4
"""Presignatures kept ready per (key, address) that has signed (in memory only)."""


def pipeline_options(function: F) -> F:
    """Add ``--pipeline/--no-pipeline`` and ``--unsafe-test-only-primes``."""
    function = click.option(
        "--unsafe-test-only-primes",
        "test_only_primes",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="TEST ONLY: published safe primes for ECDSA key generation (insecure keys).",
    )(function)
    return click.option(
        "--pipeline/--no-pipeline",
        "run_pipeline",
        default=True,
        show_default=True,
        help=f"Sign and send transactions in this process (needs {PASSPHRASE_ENV}).",
    )(function)


def open_pipeline(data_dir: Path, test_only_primes: Path | None) -> "PipelineRuntime | None":
    """The embedded pipeline runtime, or ``None`` without a keyring passphrase."""
    passphrase = os.environ.get(PASSPHRASE_ENV)
    if not passphrase:
        return None
    from shardvault.custody import LocalShareStore, SecretBytes, ShareCustody
    from shardvault.custody.backends.local import LocalBackend
    from shardvault.service.pipeline import PipelineRuntime
    from shardvault.service.signing import LocalCeremonyBackend

    keyring = data_dir / "custody" / "keyring"
    secret = SecretBytes(passphrase.encode())
    existing = sorted(keyring.glob("*.key")) if keyring.exists() else []
    if existing:
        kek = LocalBackend(keyring, secret, existing[0].stem)
    else:
        kek = LocalBackend.initialize(keyring, secret)
    custody = ShareCustody(kek, LocalShareStore(data_dir / "custody" / "shares"))
    signer = LocalCeremonyBackend(
        custody, test_only_primes=test_only_primes, presignature_pool=PRESIGNATURE_POOL
    )
    return PipelineRuntime(signer)


class WorkerThread:
    """A :class:`PipelineWorker` running in a daemon thread until :meth:`close`."""

    def __init__(self, worker: "PipelineWorker") -> None:
        self._worker = worker
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=worker.run, args=(self._stop,), name="pipeline-worker", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        close = getattr(self._worker.runtime.backend, "close", None)
        if callable(close):
            close()


def start_worker(platform: "Platform", runtime: "PipelineRuntime") -> WorkerThread:
    """Start one pipeline worker for this server."""
    from shardvault.service.pipeline import PipelineWorker

    return WorkerThread(PipelineWorker(platform, runtime))
