"""``shardvault server``: run the API (uvicorn), and the options every local command shares.

Configuration comes from options or the environment: ``--data-dir`` /
``SHARDVAULT_HOME`` (default ``~/.shardvault``), ``--db`` / ``SHARDVAULT_DB`` (default a
SQLite file in the data dir), ``--audit-key`` / ``SHARDVAULT_AUDIT_KEY`` (default
``audit-signing.key`` in the data dir, created 0600 on first use).
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from shardvault.cli._output import emit_json, fail_on
from shardvault.cli._pipeline_options import open_pipeline, pipeline_options, start_worker
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


@click.command(name="server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--log-level", default="info", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Log as JSON lines.")
@server_options
@pipeline_options
@local_options
def command(
    host: str,
    port: int,
    log_level: str,
    as_json: bool,
    data_dir: Path,
    db_url: str | None,
    audit_key: Path | None,
    webhook_key: Path | None,
    allow_networks: tuple[str, ...],
    webhook_dispatcher: bool,
    run_pipeline: bool,
    test_only_primes: Path | None,
) -> None:
    """Migrate the database and serve the REST API under /v1 (and deliver webhooks)."""
    import uvicorn

    from shardvault.api import create_app
    from shardvault.observability import configure_logging
    from shardvault.service.platform import open_platform

    config = local_config(data_dir, db_url, audit_key)
    configure_logging(log_level, json_output=as_json)
    try:
        platform = open_platform(config.db_url, config.audit_key_path)
    except ShardvaultError as exc:
        fail_on(exc)
    webhooks = open_runtime(data_dir, webhook_key, allow_networks)
    pipeline = open_pipeline(data_dir, test_only_primes) if run_pipeline else None
    app = create_app(platform, webhook_runtime=webhooks, pipeline_runtime=pipeline)
    start = {
        "event": "starting",
        "url": f"http://{host}:{port}",
        "database": config.display_url,
        "audit_key_id": platform.audit_signer.key_id,
    }
    if as_json:
        emit_json(start)
    else:
        click.echo(f"shardvault API on {start['url']} (database {start['database']})")
    dispatcher = start_dispatcher(platform, webhooks) if webhook_dispatcher else None
    worker = start_worker(platform, pipeline) if pipeline is not None else None
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level.lower(), log_config=None)
    finally:
        if dispatcher is not None:
            dispatcher.close()
        if worker is not None:
            worker.close()
    platform.database.dispose()
