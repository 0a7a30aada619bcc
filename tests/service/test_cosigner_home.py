"""The embedded co-signers' home: outside the server's data directory, owner-only, and
the old layout (``DATA_DIR/cosigners/<workspace>``) moved into it or refused with the
commands that move it by hand."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

import pytest

from shardvault.service.cosigner_home import (
    CosignerHomeRefused,
    default_cosigner_home,
    prepare_cosigner_home,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _old_layout(data: Path, workspace: str) -> Path:
    """A workspace's co-signer directories as an earlier release left them."""
    workspace_dir = data / "cosigners" / workspace
    for party in (1, 2, 3):
        party_dir = workspace_dir / f"party-{party}"
        party_dir.mkdir(parents=True)
        (party_dir / "cosigner.json").write_text(f'{{"party": {party}}}')
        (party_dir / "passphrase").write_text(f"secret-{workspace}-{party}")
        (party_dir / "run.lock").touch()
    workspace_dir.chmod(0o755)
    return workspace_dir


def test_the_default_home_is_a_sibling_of_the_data_directory(tmp_path: Path) -> None:
    assert default_cosigner_home(tmp_path / "data") == tmp_path / "data-cosigners"
    assert default_cosigner_home(tmp_path / "data" / "") == tmp_path / "data-cosigners"
    home = prepare_cosigner_home(tmp_path / "data", None)
    assert home.path == tmp_path / "data-cosigners"
    assert home.moved == ()
    assert _mode(home.path) == 0o700


def test_a_home_is_created_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o002)
    try:
        home = prepare_cosigner_home(tmp_path / "data", tmp_path / "a" / "b" / "home")
    finally:
        os.umask(previous)
    assert _mode(home.path) == 0o700


@pytest.mark.parametrize("inside", ["", "cosigners", "x/y"])
def test_a_home_in_the_data_directory_is_refused(tmp_path: Path, inside: str) -> None:
    data = tmp_path / "data"
    with pytest.raises(CosignerHomeRefused, match="inside the server's data directory"):
        prepare_cosigner_home(data, data / inside)
    assert not (data / inside).exists() or inside == ""


def test_a_home_holding_the_data_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CosignerHomeRefused, match="is inside the co-signer home"):
        prepare_cosigner_home(tmp_path / "home" / "data", tmp_path / "home")


def test_a_symbolic_link_does_not_hide_a_home_in_the_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "inner").mkdir(parents=True)
    (tmp_path / "link").symlink_to(data / "inner")
    with pytest.raises(CosignerHomeRefused, match="inside the server's data directory"):
        prepare_cosigner_home(data, tmp_path / "link")


def test_an_existing_home_open_to_other_users_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    with pytest.raises(CosignerHomeRefused, match="chmod 700"):
        prepare_cosigner_home(tmp_path / "data", home)
    (tmp_path / "file").write_text("")
    with pytest.raises(CosignerHomeRefused):
        prepare_cosigner_home(tmp_path / "data", tmp_path / "file")


def test_the_old_layout_is_moved_out_of_the_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = _old_layout(data, "ws_one")
    _old_layout(data, "ws_two")
    home = prepare_cosigner_home(data, None)
    assert home.moved == ("ws_one", "ws_two")
    assert not (data / "cosigners").exists()
    for workspace in home.moved:
        moved = home.path / workspace
        assert _mode(moved) == 0o700
        for party in (1, 2, 3):
            party_dir = moved / f"party-{party}"
            assert _mode(party_dir) == 0o700
            assert _mode(party_dir / "passphrase") == 0o600
            assert (party_dir / "passphrase").read_text() == f"secret-{workspace}-{party}"
    assert not first.exists()
    # A second start finds nothing left to move.
    assert prepare_cosigner_home(data, None).moved == ()


def test_other_files_in_the_old_directory_stay(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _old_layout(data, "ws_one")
    (data / "cosigners" / "notes.txt").write_text("kept")
    assert prepare_cosigner_home(data, None).moved == ("ws_one",)
    assert (data / "cosigners" / "notes.txt").read_text() == "kept"


def test_a_name_taken_in_the_home_refuses_every_move(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _old_layout(data, "ws_a")
    _old_layout(data, "ws_b")
    home = tmp_path / "data-cosigners"
    (home / "ws_b").mkdir(parents=True)
    home.chmod(0o700)
    with pytest.raises(CosignerHomeRefused) as refused:
        prepare_cosigner_home(data, None)
    message = str(refused.value)
    assert "ws_b already exists" in message
    assert f"mv {data / 'cosigners'}/* {home}/" in message
    # Checked before anything moved: the old layout is whole.
    assert (data / "cosigners" / "ws_a" / "party-1" / "passphrase").exists()


def test_a_running_cosigner_refuses_the_move(tmp_path: Path) -> None:
    data = tmp_path / "data"
    workspace = _old_layout(data, "ws_one")
    with (workspace / "party-2" / "run.lock").open("ab") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        # flock locks belong to the open file: a second open in this process conflicts,
        # as a co-signer process's lock does.
        with pytest.raises(CosignerHomeRefused, match="still serves"):
            prepare_cosigner_home(data, None)
    assert workspace.exists()
    assert prepare_cosigner_home(data, None).moved == ("ws_one",)


def test_a_move_across_file_systems_is_refused_with_instructions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    workspace = _old_layout(data, "ws_one")

    def cross_device(source: object, target: object) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(os, "rename", cross_device)
    with pytest.raises(CosignerHomeRefused) as refused:
        prepare_cosigner_home(data, None)
    message = str(refused.value)
    assert "Invalid cross-device link" in message
    assert "move them by hand" in message
    assert "chmod -R go-rwx" in message
    assert workspace.exists()
