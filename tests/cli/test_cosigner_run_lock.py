"""``shardvault cosigner run`` serves a data directory from one process only: two
processes with one identity would split the relay's messages between them."""

import fcntl
from pathlib import Path

from click.testing import CliRunner

from shardvault.cli.main import cli


def _run(data_dir: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        ["cosigner", "run", "--id", "1", "--data-dir", str(data_dir),
         "--coordinator", "http://127.0.0.1:9"],
    )  # fmt: skip
    return result.exit_code, result.output


def test_a_second_process_on_one_data_directory_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "cosigner"
    data_dir.mkdir()
    with (data_dir / "run.lock").open("ab") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, output = _run(data_dir)
        assert code != 0
        assert "another co-signer process is serving this data directory" in output
    # Once the first process is gone, the lock is free and the run gets further (here it
    # stops at the empty directory, which holds no co-signer).
    code, output = _run(data_dir)
    assert code != 0
    assert "another co-signer process" not in output
