"""Co-signer processes and the relay they poll, on loopback: what the compromised-server
suite and the co-signer benchmarks share.

:class:`LoopbackRelay` serves a :class:`~shardvault.cosigner.relay_core.RelayCore` from a
thread of this process (plain HTTP, or TLS with a certificate the co-signers pin);
:func:`start_cosigners` starts ``shardvault cosigner run`` processes against it and waits
until each says it runs; :func:`stop_processes` stops them.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

import uvicorn

from shardvault.cosigner.relay_app import create_relay_app
from shardvault.cosigner.relay_core import RelayCore
from tests.tls_support import LOOPBACK, TlsFiles


class LoopbackRelay:
    """``core`` served on 127.0.0.1 at an ephemeral port (``url``) until :meth:`close`."""

    def __init__(self, core: RelayCore, tls: TlsFiles | None = None, loop: str = "auto") -> None:
        self.core = core
        self.tls = tls
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so
        # (accepted sockets inherit the listening socket's protocol number).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind((LOOPBACK, 0))
        self._sock = sock
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{LOOPBACK}:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            create_relay_app(core),
            log_level="warning",
            lifespan="off",
            loop=loop,
            ssl_certfile=str(tls.cert) if tls else None,
            ssl_keyfile=str(tls.key) if tls else None,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        while not self.server.started:
            if not self._thread.is_alive():
                sock.close()
                raise RuntimeError(f"the relay at {self.url} did not start")
            time.sleep(0.02)

    def close(self) -> None:
        """Close the relay's queues and stop serving."""
        self.core.close()
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


def start_cosigners(
    relay: LoopbackRelay,
    dirs: Mapping[int, Path],
    *,
    passphrase_env: str,
    env: Mapping[str, str],
    log: IO[str],
    args: Sequence[str] = (),
) -> dict[int, subprocess.Popen[str]]:
    """Start ``shardvault cosigner run`` for each party's data directory in ``dirs``
    against ``relay`` (pinning its certificate when it has TLS), in the environment
    ``env`` (which holds the passphrase under ``passphrase_env``), with ``args`` added;
    answers the processes once each printed its first line.

    Raises:
        RuntimeError: a co-signer exited before it ran (its reason is in ``log``).
    """
    pinned = ["--server-cert", str(relay.tls.cert)] if relay.tls else []
    processes = {}
    for party, directory in dirs.items():
        processes[party] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shardvault.cli.main",
                "cosigner",
                "run",
                "--id",
                str(party),
                "--data-dir",
                str(directory),
                "--coordinator",
                relay.url,
                *pinned,
                "--passphrase-env",
                passphrase_env,
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            env=dict(env),
            text=True,
        )
    for process in processes.values():
        assert process.stdout is not None
        if not process.stdout.readline():
            stop_processes(processes.values())
            raise RuntimeError(f"a co-signer did not start: see {log.name}")
    return processes


def stop_processes(processes: Iterable[subprocess.Popen[str]]) -> None:
    """Stop every process (SIGTERM, then SIGKILL after 10 s) and close its stdout."""
    running = list(processes)
    for process in running:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in running:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
