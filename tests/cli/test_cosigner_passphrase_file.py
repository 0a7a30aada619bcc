"""``shardvault cosigner`` with its passphrase in a file: ``init
--generate-passphrase-file`` makes one the caller never sees, ``--passphrase-file``
reads it (only from a file its owner alone can read), and it excludes
``--passphrase-env``. ``pin`` given a passphrase opens the node first."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from shardvault.cli.main import cli
from shardvault.cosigner.state import open_node, read_public_identity
from shardvault.custody.errors import WrongPassphraseError
from shardvault.custody.secret import SecretBytes
from tests.cosigner.support import ADMIN_SET, WORKSPACE


def _invoke(*arguments: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["cosigner", *arguments], env=env)


def _init(tmp_path: Path, party: int, *secret: str) -> Result:
    admins = tmp_path / "admins.json"
    admins.write_text(json.dumps(ADMIN_SET))
    return _invoke(
        "init", "--id", str(party), "--data-dir", str(tmp_path / f"n{party}"),
        "--workspace", WORKSPACE, "--admins", str(admins), "--dev-argon2", *secret,
    )  # fmt: skip


def _secret_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / f"secret-{len(list(tmp_path.glob('secret-*')))}"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_init_generates_a_passphrase_file_that_opens_the_node(tmp_path: Path) -> None:
    secret = tmp_path / "n1.passphrase"
    created = _init(tmp_path, 1, "--generate-passphrase-file", str(secret))
    assert created.exit_code == 0, created.output
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    value = secret.read_bytes()
    assert len(value) == 43
    # Only the public identity is printed; the secret is in the file alone.
    assert value not in created.output.encode()
    _party, public = read_public_identity(tmp_path / "n1")
    assert json.loads(created.output)["identity"] == public.to_json()
    open_node(tmp_path / "n1", SecretBytes(value)).close()


def test_a_generated_passphrase_never_replaces_a_file(tmp_path: Path) -> None:
    secret = _secret_file(tmp_path, "keep me")
    refused = _init(tmp_path, 1, "--generate-passphrase-file", str(secret))
    assert refused.exit_code != 0
    assert "already exists" in refused.output
    assert secret.read_text() == "keep me"
    assert not (tmp_path / "n1" / "cosigner.json").exists()


def test_init_on_an_existing_node_makes_no_secret(tmp_path: Path) -> None:
    first = _secret_file(tmp_path, "first passphrase\n")
    assert _init(tmp_path, 1, "--passphrase-file", str(first)).exit_code == 0
    again = _init(tmp_path, 1, "--generate-passphrase-file", str(tmp_path / "new"))
    assert again.exit_code != 0
    assert "already holds a co-signer" in again.output
    assert not (tmp_path / "new").exists()
    # One trailing line break is not part of the passphrase.
    open_node(tmp_path / "n1", SecretBytes(b"first passphrase")).close()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_passphrase_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    secret = _secret_file(tmp_path, "a passphrase", mode)
    refused = _init(tmp_path, 1, "--passphrase-file", str(secret))
    assert refused.exit_code != 0
    assert f"chmod 600 {secret}" in refused.output
    assert not (tmp_path / "n1").exists()


def test_passphrase_sources_exclude_each_other(tmp_path: Path) -> None:
    secret = _secret_file(tmp_path, "a passphrase")
    both = _init(tmp_path, 1, "--passphrase-file", str(secret), "--passphrase-env", "SV_X")
    assert both.exit_code != 0
    assert "exclude each other" in both.output
    generated = _init(
        tmp_path, 1, "--generate-passphrase-file", str(tmp_path / "g"), "--passphrase-file",
        str(secret),
    )  # fmt: skip
    assert generated.exit_code != 0
    assert "excludes" in generated.output
    run = _invoke(
        "run", "--id", "1", "--data-dir", str(tmp_path), "--coordinator", "http://127.0.0.1:9",
        "--passphrase-file", str(secret), "--passphrase-env", "SV_X",
    )  # fmt: skip
    assert run.exit_code != 0
    assert "exclude each other" in run.output


def test_empty_missing_and_linked_passphrase_files_are_refused(tmp_path: Path) -> None:
    empty = _secret_file(tmp_path, "\n")
    assert "is empty" in _init(tmp_path, 1, "--passphrase-file", str(empty)).output
    missing = _init(tmp_path, 1, "--passphrase-file", str(tmp_path / "none"))
    assert "cannot open the passphrase file" in missing.output
    link = tmp_path / "link"
    link.symlink_to(_secret_file(tmp_path, "a passphrase"))
    linked = _init(tmp_path, 1, "--passphrase-file", str(link))
    assert linked.exit_code != 0
    assert "cannot open the passphrase file" in linked.output


def test_pin_with_a_passphrase_opens_the_node_first(tmp_path: Path) -> None:
    secrets = {party: tmp_path / f"p{party}" for party in (1, 2)}
    outputs = {}
    for party, secret in secrets.items():
        created = _init(tmp_path, party, "--generate-passphrase-file", str(secret))
        assert created.exit_code == 0, created.output
        outputs[party] = json.loads(created.output)["identity"]
    directory = tmp_path / "directory.json"
    directory.write_text(json.dumps({str(p): identity for p, identity in outputs.items()}))
    # Party 2's passphrase does not open party 1: nothing is pinned.
    wrong = _invoke(
        "pin", "--data-dir", str(tmp_path / "n1"), "--directory", str(directory),
        "--passphrase-file", str(secrets[2]),
    )  # fmt: skip
    assert wrong.exit_code != 0
    with pytest.raises(WrongPassphraseError):
        open_node(tmp_path / "n1", SecretBytes(secrets[2].read_bytes()))
    config = json.loads((tmp_path / "n1" / "cosigner.json").read_text())
    assert sorted(config["directory"]) == ["1"]
    pinned = _invoke(
        "pin", "--data-dir", str(tmp_path / "n1"), "--directory", str(directory),
        "--passphrase-file", str(secrets[1]),
    )  # fmt: skip
    assert pinned.exit_code == 0, pinned.output
    assert json.loads(pinned.output) == {"pinned": [1, 2]}
    state = open_node(tmp_path / "n1", SecretBytes(secrets[1].read_bytes()))
    try:
        assert sorted(state.directory.entries) == [1, 2]
    finally:
        state.close()
