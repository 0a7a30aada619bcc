"""A co-signer's data directory and the ``shardvault cosigner`` set-up commands.

DESIGN.md invariant 2 for the node's own secrets: the identity keys are stored as
envelope-encrypted custody blobs, never in the clear; a wrong passphrase, a substituted
peer key or a stored bundle that does not verify against the pinned admins stops the
node from opening.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from shardvault.cli.main import cli
from shardvault.cosigner.config import sign_config
from shardvault.cosigner.errors import ConfigurationError
from shardvault.cosigner.state import (
    identity_address,
    init_node,
    open_node,
    pin_peers,
    read_public_identity,
)
from shardvault.crypto.channel import PartyIdentity, PublicIdentity
from shardvault.crypto.rng import system_random
from shardvault.custody.backends.local import DEVELOPMENT_COST
from shardvault.custody.errors import WrongPassphraseError
from shardvault.custody.secret import SecretBytes
from tests.cosigner.support import ADMIN_SET, PASSPHRASE, WORKSPACE, signed_bundle, unseal


def _secret(text=PASSPHRASE):
    return SecretBytes(text.encode())


@pytest.fixture
def node_dir(tmp_path):
    directory = tmp_path / "node"
    init_node(directory, 1, WORKSPACE, ADMIN_SET, _secret(), cost=DEVELOPMENT_COST)
    return directory


def test_identity_is_sealed_at_rest(node_dir):
    state = open_node(node_dir, _secret())
    try:
        seeds = state.identity.seeds()
        _, blob = state.custody.load_blob(identity_address(1))
        assert seeds[:32] not in blob
        assert seeds[32:] not in blob
        for path in node_dir.rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                assert seeds[:32] not in content
                assert seeds[:32].hex().encode() not in content
    finally:
        state.close()


def test_wrong_passphrase_is_refused(node_dir):
    with pytest.raises(WrongPassphraseError):
        open_node(node_dir, _secret("wrong"))


def test_init_twice_is_refused(node_dir):
    with pytest.raises(ConfigurationError):
        init_node(node_dir, 1, WORKSPACE, ADMIN_SET, _secret(), cost=DEVELOPMENT_COST)


def test_bad_admin_set_is_refused(tmp_path):
    with pytest.raises(ConfigurationError):
        init_node(tmp_path / "n", 1, WORKSPACE, {"quorum": 3, "members": []}, _secret())


def test_peer_key_substitution_is_refused(node_dir):
    identity = unseal(node_dir)
    peer = PartyIdentity.generate(2, system_random).public
    pin_peers(node_dir, {2: peer}, identity)
    pin_peers(node_dir, {2: peer}, identity)  # the same key again is fine
    with pytest.raises(ConfigurationError):
        pin_peers(node_dir, {2: PartyIdentity.generate(2, system_random).public}, identity)
    _, own = read_public_identity(node_dir)
    with pytest.raises(ConfigurationError):
        pin_peers(node_dir, {1: PartyIdentity.generate(1, system_random).public}, identity)
    assert read_public_identity(node_dir)[1] == own


def test_accepted_bundles_persist_and_a_tampered_file_is_refused(node_dir):
    state = open_node(node_dir, _secret())
    state.accept_bundle(signed_bundle())
    state.close()
    again = open_node(node_dir, _secret())
    assert again.chain.head is not None
    assert again.chain.head.version == 1
    again.close()
    path = node_dir / "policy" / "bundles.json"
    stored = json.loads(path.read_text())
    stored[0]["payload"]["policy"]["rules"][0]["action"] = "block"
    path.write_text(json.dumps(stored))
    with pytest.raises(ConfigurationError):
        open_node(node_dir, _secret())


def test_directory_without_own_identity_is_refused(node_dir):
    config_path = node_dir / "cosigner.json"
    config = json.loads(config_path.read_text())
    config["directory"] = {"1": PartyIdentity.generate(1, system_random).public.to_json()}
    # Signed by the node itself (as a bug in a writer would), so only this check stops it.
    config_path.write_text(json.dumps(sign_config(config, unseal(node_dir))))
    with pytest.raises(ConfigurationError, match="does not hold this node's own identity"):
        open_node(node_dir, _secret())


def test_malformed_configuration_is_refused(tmp_path):
    with pytest.raises(ConfigurationError):
        open_node(tmp_path, _secret())
    (tmp_path / "cosigner.json").write_text("[1, 2]")
    with pytest.raises(ConfigurationError):
        open_node(tmp_path, _secret())


def test_cli_init_identity_pin(tmp_path, monkeypatch):
    monkeypatch.setenv("SV_PASS", PASSPHRASE)
    admins = tmp_path / "admins.json"
    admins.write_text(json.dumps(ADMIN_SET))
    runner = CliRunner()
    outputs = {}
    for party in (1, 2):
        result = runner.invoke(
            cli,
            [
                "cosigner",
                "init",
                "--id",
                str(party),
                "--data-dir",
                str(tmp_path / f"n{party}"),
                "--workspace",
                WORKSPACE,
                "--admins",
                str(admins),
                "--passphrase-env",
                "SV_PASS",
                "--dev-argon2",
            ],
        )
        assert result.exit_code == 0, result.output
        outputs[party] = json.loads(result.output)
    shown = runner.invoke(cli, ["cosigner", "identity", "--data-dir", str(tmp_path / "n1")])
    assert json.loads(shown.output) == outputs[1]
    public = PublicIdentity.from_json(outputs[1]["identity"])
    assert outputs[1]["fingerprint"] == public.fingerprint()
    directory = tmp_path / "directory.json"
    directory.write_text(json.dumps({str(p): o["identity"] for p, o in outputs.items()}))
    pin = ["cosigner", "pin", "--data-dir", str(tmp_path / "n1"), "--directory", str(directory)]
    pinned = runner.invoke(cli, [*pin, "--passphrase-env", "SV_PASS"])
    assert json.loads(pinned.output) == {"pinned": [1, 2]}
    # Pinning signs the configuration again: it needs the passphrase.
    assert runner.invoke(cli, [*pin, "--passphrase-env", "SV_UNSET_VAR"]).exit_code != 0
    # The other node's key under party 1's id is a substitution.
    directory.write_text(json.dumps({"1": outputs[2]["identity"]}))
    refused = runner.invoke(cli, [*pin, "--passphrase-env", "SV_PASS"])
    assert refused.exit_code != 0
    missing = runner.invoke(
        cli,
        [
            "cosigner",
            "run",
            "--id",
            "1",
            "--data-dir",
            str(tmp_path / "n1"),
            "--coordinator",
            "http://127.0.0.1:9",
            "--passphrase-env",
            "SV_UNSET_VAR",
        ],
    )
    assert missing.exit_code != 0
