"""``shardvault server --cosigner-home`` (``SHARDVAULT_COSIGNER_HOME``): a home in the
data directory, or around it, is refused before anything is opened; co-signer
directories an earlier release left in ``DATA_DIR/cosigners`` are moved out at start."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path


def _server(data: Path, *options: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shardvault.cli.main", "server", "--port", "0", "--json",
         "--data-dir", str(data), *options],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_a_home_inside_the_data_directory_is_refused_at_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    refused = _server(data, "--cosigner-home", str(data / "cosigners"))
    _out, err = refused.communicate(timeout=60)
    assert refused.returncode == 1
    assert "inside the server's data directory" in err
    # Refused before the database, the audit key or the home were made.
    assert not data.exists()


def test_a_home_around_the_data_directory_is_refused(tmp_path: Path) -> None:
    refused = _server(
        tmp_path / "home" / "data", env={"SHARDVAULT_COSIGNER_HOME": str(tmp_path / "home")}
    )
    _out, err = refused.communicate(timeout=60)
    assert refused.returncode == 1
    assert "is inside the co-signer home" in err


def test_the_server_moves_the_old_layout_out_of_its_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old = data / "cosigners" / "ws_old" / "party-1"
    old.mkdir(parents=True)
    (old / "passphrase").write_text("from an earlier release")
    home = tmp_path / "elsewhere"
    process = _server(data, "--cosigner-home", str(home))
    try:
        assert process.stdout is not None
        started = process.stdout.readline()
        assert json.loads(started)["event"] == "starting"
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    assert not (data / "cosigners").exists()
    moved = home / "ws_old" / "party-1" / "passphrase"
    assert moved.read_text() == "from an earlier release"
    assert stat.S_IMODE(moved.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert "moved the co-signers of workspace ws_old" in err
