"""The embedded co-signers are created by their own processes: ``cosigner init
--generate-passphrase-file`` and ``cosigner pin --passphrase-file``, side by side, in a
staging directory renamed into place once whole. A failed creation leaves nothing.
(tests/cli/test_server_embedded_secrets.py runs them inside a real server.)"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from shardvault.cosigner.state import read_public_identity
from shardvault.service.embedded_cosigners import CosignersUnavailable, EmbeddedCosigners
from tests.cosigner.support import ADMIN_SET

WORKSPACE = "ws_embedded"


def _fleet(home: Path, admins: dict[str, object] | None) -> EmbeddedCosigners:
    # Nothing listens on port 9: the started processes never connect.
    return EmbeddedCosigners(
        home, lambda workspace: admins, lambda: "http://127.0.0.1:9", start_timeout=0.2
    )


def test_a_workspace_without_an_admin_set_gets_no_cosigners(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path, None)
    with pytest.raises(CosignersUnavailable, match="propose its first policy"):
        fleet.relay(WORKSPACE)
    fleet.close()
    assert list(tmp_path.iterdir()) == []


def test_cosigners_are_created_whole_by_their_own_processes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    # What an interrupted creation left is cleared first.
    (home / f"{WORKSPACE}~creating" / "party-1").mkdir(parents=True)
    fleet = _fleet(home, ADMIN_SET)
    try:
        with pytest.raises(CosignersUnavailable, match="did not connect"):
            fleet.relay(WORKSPACE)
    finally:
        fleet.close()
    assert sorted(p.name for p in home.iterdir()) == [WORKSPACE]
    workspace = home / WORKSPACE
    assert stat.S_IMODE(workspace.stat().st_mode) == 0o700
    assert sorted(p.name for p in workspace.iterdir()) == ["party-1", "party-2", "party-3"]
    identities = {}
    for party in (1, 2, 3):
        party_dir = workspace / f"party-{party}"
        assert stat.S_IMODE(party_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((party_dir / "passphrase").stat().st_mode) == 0o600
        found, identities[party] = read_public_identity(party_dir)
        assert found == party
    passphrases = {(workspace / f"party-{p}" / "passphrase").read_bytes() for p in (1, 2, 3)}
    assert len(passphrases) == 3
    for party in (1, 2, 3):
        config = json.loads((workspace / f"party-{party}" / "cosigner.json").read_text())
        assert config["directory"] == {str(p): i.to_json() for p, i in identities.items()}


@pytest.mark.parametrize("workspace", ["..", ".", "a/b", ""])
def test_a_workspace_id_that_is_no_directory_name_is_refused(
    tmp_path: Path, workspace: str
) -> None:
    fleet = _fleet(tmp_path / "home", ADMIN_SET)
    with pytest.raises(CosignersUnavailable, match="malformed workspace id"):
        fleet.relay(workspace)
    fleet.close()
    assert list(tmp_path.iterdir()) == []


def test_a_failed_creation_leaves_nothing(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path, {"quorum": 3, "members": []})
    with pytest.raises(CosignersUnavailable) as refused:
        fleet.relay(WORKSPACE)
    fleet.close()
    # Each co-signer's own refusal is in the message.
    assert "co-signer 1: error: bad workspace or admin set" in str(refused.value)
    assert list(tmp_path.iterdir()) == []
