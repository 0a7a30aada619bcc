"""``shardvault init``, ``server``, ``workspace show`` and ``audit verify`` end to end, on
SQLite and PostgreSQL (each starts from an empty database)."""

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from shardvault.api import create_app
from shardvault.cli.main import cli
from shardvault.service.platform import open_platform
from shardvault.store import Database
from tests.api.support import live_server


def _init(runner: CliRunner, tmp_path: Path, db_url: str, *extra: str) -> dict[str, str]:
    result = runner.invoke(
        cli,
        [
            "init",
            "--name", "acme",
            "--owner-name", "Olivia Owner",
            "--owner-email", "olivia@acme.example",
            "--key-out", str(tmp_path / "owner.pem"),
            "--data-dir", str(tmp_path / "data"),
            "--db", db_url,
            "--json",
            *extra,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_init_then_verify_locally_then_detect_tampering(tmp_path: Path, db_url: str) -> None:
    runner = CliRunner()
    created = _init(runner, tmp_path, db_url)
    key_file = Path(created["key_file"])
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in key_file.read_bytes()
    assert os.stat(tmp_path / "data" / "audit-signing.key").st_mode & 0o777 == 0o600
    assert "password" not in created["database"]

    args = ["audit", "verify", "--data-dir", str(tmp_path / "data"), "--db", db_url, "--json"]
    ok = runner.invoke(cli, args)
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout)
    assert report["valid"] is True
    assert report["chains"][0]["events"] == 3

    database = Database(db_url)
    with database.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET action = 'nothing' WHERE seq = 2"))
    database.dispose()
    broken = runner.invoke(cli, args)
    assert broken.exit_code == 1
    chain = json.loads(broken.stdout)["chains"][0]
    assert (chain["valid"], chain["broken_at_seq"], chain["problem"]) == (False, 2, "edited")
    human = runner.invoke(cli, args[:-1])
    assert "BROKEN at seq 2" in human.stdout


def test_init_refuses_an_existing_key_file_and_writes_nothing(tmp_path: Path, db_url: str) -> None:
    (tmp_path / "owner.pem").write_text("keep me")
    result = CliRunner().invoke(
        cli,
        ["init", "--name", "a", "--owner-name", "o", "--owner-email", "o@a.io",
         "--key-out", str(tmp_path / "owner.pem"), "--db", db_url,
         "--data-dir", str(tmp_path / "data")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "refusing to overwrite" in result.stderr
    assert (tmp_path / "owner.pem").read_text() == "keep me"


def test_init_with_bad_input_leaves_no_key_file(tmp_path: Path, db_url: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["init", "--name", "a", "--owner-name", "o", "--owner-email", "not-an-email",
         "--key-out", str(tmp_path / "owner.pem"), "--db", db_url,
         "--data-dir", str(tmp_path / "data")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "email" in result.stderr
    assert not (tmp_path / "owner.pem").exists()


def test_workspace_show_and_audit_verify_through_the_api(tmp_path: Path, db_url: str) -> None:
    runner = CliRunner()
    created = _init(runner, tmp_path, db_url, "--algorithm", "ES256")
    platform = open_platform(db_url, tmp_path / "data" / "audit-signing.key")
    try:
        with live_server(create_app(platform)) as url:
            api = [
                "--url",
                url,
                "--api-key",
                created["api_key_id"],
                "--key-file",
                created["key_file"],
            ]
            shown = runner.invoke(cli, ["workspace", "show", *api, "--json"])
            assert shown.exit_code == 0, shown.output
            assert json.loads(shown.stdout)["id"] == created["workspace_id"]
            verified = runner.invoke(cli, ["audit", "verify", *api, "--json"])
            assert verified.exit_code == 0, verified.output
            assert json.loads(verified.stdout)["chains"][0]["chain"] == created["workspace_id"]
            wrong = runner.invoke(
                cli, ["workspace", "show", "--url", url, "--api-key", "nope",
                      "--key-file", created["key_file"]]
            )  # fmt: skip
            assert wrong.exit_code == 1
            assert "401" in wrong.stderr
    finally:
        platform.database.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_server_command_serves_health_on_loopback(tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shardvault.cli.main", "server", "--port", str(port),
         "--data-dir", str(tmp_path), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=10)
    start = json.loads(stdout.decode().splitlines()[0])
    assert start["url"] == f"http://127.0.0.1:{port}"
    assert (tmp_path / "shardvault.db").exists()


def test_request_threads_default_to_few_on_sqlite_only() -> None:
    from shardvault.cli.server import SQLITE_REQUEST_THREADS, default_request_threads

    assert default_request_threads("sqlite") == SQLITE_REQUEST_THREADS == 8
    assert default_request_threads("postgresql") is None  # anyio's default


def test_the_pipeline_batch_option_matches_the_pipeline() -> None:
    from shardvault.cli.server import command
    from shardvault.service.pipeline import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE

    option = next(p for p in command.params if p.name == "pipeline_batch")
    assert option.default == DEFAULT_BATCH_SIZE
    assert isinstance(option.type, click.IntRange)
    assert (option.type.min, option.type.max) == (1, MAX_BATCH_SIZE)


def test_the_node_options_make_the_node_policy() -> None:
    from shardvault.cli._pipeline_options import node_policy

    default = node_policy((), rpc_loopback=True)
    assert default.check_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    assert default.never_link_local
    intranet = node_policy(("10.0.0.0/8, 192.168.7.0/24", "fd12::/16"), rpc_loopback=False)
    assert [str(n) for n in intranet.allowed_networks] == [
        "10.0.0.0/8",
        "192.168.7.0/24",
        "fd12::/16",
    ]
    assert not intranet.address_allowed(ipaddress.ip_address("127.0.0.1"))


def test_the_server_refuses_a_node_network_that_is_not_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["server", "--port", "0", "--data-dir", str(tmp_path), "--no-pipeline",
         "--no-webhook-dispatcher", "--allow-rpc-network", "not-a-network"],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "--allow-rpc-network" in result.output
    assert "not-a-network" in result.output


@pytest.mark.postgres
def test_a_database_that_refuses_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    url = "postgresql://no_such_role_here@127.0.0.1:5432/no_such_database"
    result = CliRunner().invoke(
        cli,
        ["init", "--name", "acme", "--owner-name", "O", "--owner-email", "o@acme.example",
         "--key-out", str(tmp_path / "owner.pem"), "--db", url],
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot use the database: ")
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert 'role "no_such_role_here" does not exist' in result.output
