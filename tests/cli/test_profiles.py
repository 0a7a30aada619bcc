"""The production profile refuses what keeps a share, or its unlock secret, within the
server's reach (DESIGN.md invariant 10), and a co-signer refuses to run in it without
pinned TLS, with test-only primes or with development attestation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from shardvault.cli.main import cli
from shardvault.cli.server import production_refusals
from shardvault.cosigner.node import TEST_ONLY_PRIMES_ENV
from tests.service.pipeline_support import TEST_ONLY_PRIMES


@pytest.mark.parametrize(
    ("signer", "tls", "primes", "reasons"),
    [
        ("remote", True, None, []),
        ("cosigners", True, None, ["--signer cosigners keeps every share on this host"]),
        ("local-ceremony", True, None, ["--signer local-ceremony keeps every share"]),
        ("remote", False, None, ["plain HTTP"]),
        ("remote", True, TEST_ONLY_PRIMES, ["test-only Paillier primes"]),
    ],
)
def test_server_production_refusals(
    signer: str, tls: bool, primes: Path | None, reasons: list[str]
) -> None:
    found = production_refusals(signer=signer, tls=tls, test_only_primes=primes)
    assert len(found) == len(reasons)
    for reason, text in zip(reasons, found, strict=True):
        assert reason in text


def test_server_refuses_to_start_in_production_with_the_embedded_signer(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["server", "--profile", "production", "--data-dir", str(tmp_path), "--port", "0"],
    )
    assert result.exit_code == 1
    assert "production profile refuses to start" in result.output
    assert "--signer cosigners" in result.output
    assert "plain HTTP" in result.output
    assert not (tmp_path / "shardvault.db").exists()  # refused before anything was made


def test_cosigner_refuses_production_without_pinned_tls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TEST_ONLY_PRIMES_ENV, str(TEST_ONLY_PRIMES))
    from tests.cosigner.support import make_nodes

    data = make_nodes(tmp_path, 2)[1]
    result = CliRunner().invoke(
        cli,
        ["cosigner", "run", "--id", "1", "--data-dir", str(data), "--server",
         "http://127.0.0.1:9", "--profile", "production"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "production profile refuses to run" in result.output
    for reason in ("not https", "--server-cert", TEST_ONLY_PRIMES_ENV):
        assert reason in result.output
    both = CliRunner().invoke(
        cli,
        ["cosigner", "run", "--id", "1", "--data-dir", str(tmp_path), "--server", "https://x",
         "--coordinator", "https://y"],
    )  # fmt: skip
    assert both.exit_code == 1
    assert "exactly one of --server and --coordinator" in both.output


def test_cosigner_refuses_the_test_only_primes_variable_without_the_flag(tmp_path: Path) -> None:
    """The variable alone (a development profile, nothing else wrong) does not make a
    co-signer generate ECDSA keys from published primes: it refuses to start, naming the
    explicit flag."""
    from tests.cosigner.support import PASSPHRASE, make_nodes

    data = make_nodes(tmp_path, 2)[1]
    env = {**os.environ, TEST_ONLY_PRIMES_ENV: str(TEST_ONLY_PRIMES), "SV_TEST_PASS": PASSPHRASE}
    command = [sys.executable, "-m", "shardvault.cli.main", "cosigner", "run", "--id", "1",
               "--data-dir", str(data), "--coordinator", "http://127.0.0.1:9",
               "--passphrase-env", "SV_TEST_PASS"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=15)
    assert done.returncode == 1
    assert "--unsafe-test-only-primes" in done.stderr + done.stdout


def test_cosigner_refuses_the_test_only_primes_flag_in_production(tmp_path: Path) -> None:
    from tests.cosigner.support import make_nodes

    data = make_nodes(tmp_path, 2)[1]
    result = CliRunner().invoke(
        cli,
        ["cosigner", "run", "--id", "1", "--data-dir", str(data), "--server",
         "https://127.0.0.1:9", "--profile", "production",
         "--unsafe-test-only-primes", str(TEST_ONLY_PRIMES)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "production profile refuses to run" in result.output
    assert "--unsafe-test-only-primes" in result.output
