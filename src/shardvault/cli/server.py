"""``shardvault server``: run the API (uvicorn), and the options every local command shares.

Configuration comes from options or the environment: ``--data-dir`` /
``SHARDVAULT_HOME`` (default ``~/.shardvault``), ``--db`` / ``SHARDVAULT_DB`` (default a
SQLite file in the data dir), ``--audit-key`` / ``SHARDVAULT_AUDIT_KEY`` (default
``audit-signing.key`` in the data dir, created 0600 on first use). The embedded
co-signers keep their directories outside the data dir: ``--cosigner-home`` /
``SHARDVAULT_COSIGNER_HOME`` (default ``<DATA_DIR>-cosigners``).
"""

import faulthandler
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from shardvault.cli._output import emit_json, fail, fail_on
from shardvault.cli._pipeline_options import (
    cosigner_home,
    node_options,
    node_policy,
    open_pipeline,
    pipeline_options,
    start_worker,
)
from shardvault.cli._profile import profile_option
from shardvault.cli._webhook_options import open_runtime, server_options, start_dispatcher
from shardvault.errors import ShardvaultError
from shardvault.store import default_database_url, normalize_url

F = TypeVar("F", bound=Callable[..., Any])

AUDIT_KEY_FILE = "audit-signing.key"


@dataclass(frozen=True, slots=True)
class LocalConfig:
    """Where the local database and the audit key are."""

    data_dir: Path
    db_url: str
    audit_key_path: Path

    @property
    def display_url(self) -> str:
        return normalize_url(self.db_url).render_as_string(hide_password=True)


def local_options(function: F) -> F:
    """Add ``--data-dir``, ``--db`` and ``--audit-key`` to a command."""
    function = click.option(
        "--audit-key",
        "audit_key",
        envvar="SHARDVAULT_AUDIT_KEY",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The server's audit signing key file (default: DATA_DIR/audit-signing.key).",
    )(function)
    function = click.option(
        "--db",
        "db_url",
        envvar="SHARDVAULT_DB",
        help="Database URL: sqlite:///path or postgresql://... (default: SQLite in DATA_DIR).",
    )(function)
    function = click.option(
        "--data-dir",
        "data_dir",
        envvar="SHARDVAULT_HOME",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path.home() / ".shardvault",
        show_default=True,
        help="Where the default database and the audit key live.",
    )(function)
    return function


def local_config(data_dir: Path, db_url: str | None, audit_key: Path | None) -> LocalConfig:
    """Resolve the shared options into a :class:`LocalConfig`."""
    return LocalConfig(
        data_dir=data_dir,
        db_url=db_url or default_database_url(data_dir),
        audit_key_path=audit_key or data_dir / AUDIT_KEY_FILE,
    )


def _http_server(
    on_shutdown: Callable[[], None] | None, config: Any, request_threads: int | None = None
) -> Any:
    """A ``uvicorn.Server`` that calls ``on_shutdown`` as its shutdown begins and runs
    the API's synchronous work in at most ``request_threads`` threads (``None``: anyio's
    default, 40)."""
    import anyio.to_thread
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            if request_threads is not None:
                limiter = anyio.to_thread.current_default_thread_limiter()
                limiter.total_tokens = request_threads
            await super().startup(sockets=sockets)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            if on_shutdown is not None:
                on_shutdown()
            await super().shutdown(sockets=sockets)

    return Server(config)


def production_refusals(*, signer: str, tls: bool, test_only_primes: Path | None) -> list[str]:
    """Why a server may not start in the production profile (empty: it may).

    DESIGN.md invariant 10: nothing the server's OS user can read opens a share, so no
    signer that keeps shares or their unlock secrets on this host; no published
    test-only primes; and co-signers reach it over TLS only.
    """
    from shardvault.cli._pipeline_options import DEVELOPMENT_SIGNERS
    from shardvault.cosigner.node import TEST_ONLY_PRIMES_ENV

    reasons = []
    if signer in DEVELOPMENT_SIGNERS:
        reasons.append(f"--signer {signer} keeps every share on this host (use --signer remote)")
    if not tls:
        reasons.append("plain HTTP: co-signers and clients need TLS (--tls-cert, --tls-key)")
    if test_only_primes is not None or os.environ.get(TEST_ONLY_PRIMES_ENV):
        reasons.append("test-only Paillier primes are configured")
    return reasons


SQLITE_REQUEST_THREADS = 8
"""Request threads on SQLite. In the co-signer bench (docs/performance.md), 8 instead of
anyio's 40 took bursts from a median of 69 to 79 signed/s and the server's CPU per
transfer from 12.5 to 10.2 ms: fewer threads hand the interpreter to each other."""


def default_request_threads(dialect: str) -> int | None:
    """The default of ``--request-threads``: :data:`SQLITE_REQUEST_THREADS` on SQLite;
    anyio's own (40) on PostgreSQL, where each statement waits on the network and
    concurrency pays (not measured with fewer)."""
    return SQLITE_REQUEST_THREADS if dialect == "sqlite" else None


@click.command(name="server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    envvar="SHARDVAULT_PORT",
    show_envvar=True,
    type=click.IntRange(0, 65535),
    help="0: any free.",
)
@click.option("--log-level", default="info", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Log as JSON lines.")
@click.option(
    "--request-threads",
    type=click.IntRange(2, 1000),
    default=None,
    help="Threads the API's requests run in [default: 8 on SQLite, 40 on PostgreSQL]. "
    "Python runs one thread at a time and SQLite hands it over at every statement, so "
    "more threads cost CPU.",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Serve HTTPS with this certificate (PEM); co-signers pin it (--server-cert).",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The private key of --tls-cert (PEM).",
)
@profile_option(
    "production refuses the development signers (co-signers on this host, or every "
    "party in this process), test-only primes and plain HTTP (docs/deployment.md)."
)
@server_options
@pipeline_options
@node_options
@local_options
def command(
    host: str,
    port: int,
    log_level: str,
    as_json: bool,
    request_threads: int | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    profile: str,
    data_dir: Path,
    db_url: str | None,
    audit_key: Path | None,
    webhook_key: Path | None,
    allow_networks: tuple[str, ...],
    webhook_dispatcher: bool,
    run_pipeline: bool,
    signer: str,
    cosigner_home_option: Path | None,
    presignature_pool: int,
    pipeline_workers: int,
    pipeline_batch: int,
    max_unconfirmed: float,
    test_only_primes: Path | None,
    cosigner_stall_after: float,
    allow_rpc_networks: tuple[str, ...],
    rpc_loopback: bool,
) -> None:
    """Migrate the database and serve the REST API under /v1 (and deliver webhooks).

    With the default ``--signer cosigners``, each workspace's three co-signers run as
    separate local processes started when the workspace first needs them, with their
    directories under ``--cosigner-home``; they connect back to this server (no port of
    their own) and are stopped with it. Both signers are development modes (one host
    holds every key share): the server logs a warning and ``/v1/health`` reports it.
    """
    import uvicorn

    from shardvault.api import create_app
    from shardvault.observability import configure_logging
    from shardvault.service.platform import open_platform

    if (tls_cert is None) != (tls_key is None):
        fail("--tls-cert and --tls-key go together")
    if tls_cert is not None and signer == "cosigners":
        fail(
            "the embedded co-signers reach this server over plain HTTP on loopback: serve "
            "TLS with --signer remote (co-signers on their own hosts)"
        )
    if profile == "production":
        refusals = production_refusals(
            signer=signer, tls=tls_cert is not None, test_only_primes=test_only_primes
        )
        if refusals:
            fail("the production profile refuses to start: " + "; ".join(refusals))
    config = local_config(data_dir, db_url, audit_key)
    configure_logging(log_level, json_output=as_json)
    # Checked (and the old layout moved out of the data dir) before anything is opened.
    home = (
        cosigner_home(data_dir, cosigner_home_option)
        if run_pipeline and signer == "cosigners"
        else None
    )
    try:
        platform = open_platform(config.db_url, config.audit_key_path)
    except ShardvaultError as exc:
        fail_on(exc)
    # Bind (and listen) first, so the URL announced and handed to the co-signers is the
    # real one even with --port 0. IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only
    # on sockets that say so, and without it responses wait ~40 ms for a delayed ACK.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror}")
    listener.listen(2048)
    bound_port = listener.getsockname()[1]
    url = f"{'https' if tls_cert else 'http'}://{host}:{bound_port}"
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    coordinator = f"http://{local}:{bound_port}"
    webhooks = open_runtime(data_dir, webhook_key, allow_networks)
    try:
        rpc_policy = node_policy(allow_rpc_networks, rpc_loopback)
    except ShardvaultError as exc:
        listener.close()
        fail_on(exc)
    setup = (
        open_pipeline(
            data_dir,
            test_only_primes,
            signer=signer,
            platform=platform,
            coordinator_url=lambda: coordinator,
            presignature_pool=presignature_pool,
            stall_after=cosigner_stall_after,
            home=home,
            rpc_policy=rpc_policy,
        )
        if run_pipeline
        else None
    )
    runtime = setup.runtime if setup is not None else None
    mode = setup.mode if setup is not None else None
    if mode is not None and mode.warning:
        logging.getLogger("shardvault.server").warning(mode.warning)
    app = create_app(
        platform,
        webhook_runtime=webhooks,
        pipeline_runtime=runtime,
        signer_mode=mode,
        extra_routers=setup.routers if setup is not None else (),
        cosigner_status=setup.status if setup is not None else None,
        rpc_policy=rpc_policy,
    )
    start = {
        "event": "starting",
        "url": url,
        "database": config.display_url,
        "audit_key_id": platform.audit_signer.key_id,
        "signer": signer if runtime is not None else None,
        "profile": profile,
    }
    if as_json:
        emit_json(start)
    else:
        click.echo(f"shardvault API on {start['url']} (database {start['database']})")
    sys.stdout.flush()
    dispatcher = start_dispatcher(platform, webhooks) if webhook_dispatcher else None
    creations = app.state.vault_creations
    if creations is not None:
        # Vault creations a previous run of the server left unfinished run again.
        creations.resume()
    if runtime is not None:
        runtime.max_unconfirmed_s = max_unconfirmed or None
    worker = (
        start_worker(platform, runtime, pipeline_workers, pipeline_batch)
        if runtime is not None
        else None
    )
    # uvicorn re-raises the signal that stopped it once it has shut down; with the default
    # SIGTERM action that would kill this process before the co-signers and workers are
    # stopped below, so SIGTERM gets a handler that lets the clean-up run.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    # SIGUSR1 prints every thread's stack to stderr (a stuck shutdown, a slow request).
    faulthandler.register(signal.SIGUSR1)
    try:
        server = _http_server(
            setup.shutting_down if setup is not None else None,
            uvicorn.Config(
                app,
                log_level=log_level.lower(),
                log_config=None,
                lifespan="off",
                # httptools and uvloop are dependencies (uvicorn falls back to h11 and
                # asyncio when they are missing).
                http="auto",
                loop="auto",
                # A request still open this long after shutdown begins is cancelled.
                timeout_graceful_shutdown=2,
                ssl_certfile=str(tls_cert) if tls_cert else None,
                ssl_keyfile=str(tls_key) if tls_key else None,
            ),
            request_threads or default_request_threads(platform.database.dialect),
        )
        server.run(sockets=[listener])
    finally:
        # The co-signers first: closing their relays wakes every worker waiting on them.
        if setup is not None:
            setup.close()
        if worker is not None:
            worker.close()
        if runtime is not None:
            runtime.close()
        if dispatcher is not None:
            dispatcher.close()
        listener.close()
    platform.database.dispose()
