"""The co-signer's configuration is signed by its own identity, and its files are private.

``cosigner.json`` pins the admin set and the peers' identities (DESIGN.md invariants 4
and 5); whoever could rewrite it could swap either. It carries an Ed25519 signature by
the node's identity key (checked with PyNaCl here, independently of the node's code), so
``open_node`` refuses a changed, unsigned or re-signed-by-someone-else file, and every
writer signs again. Files are created 0600 and directories 0700 whatever the umask.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from nacl.signing import SigningKey, VerifyKey

from shardvault.cli.main import cli
from shardvault.cosigner.config import (
    CONFIG_DOMAIN,
    LEGACY_CONFIG_FORMAT,
    canonical_config,
    sign_config,
)
from shardvault.cosigner.errors import ConfigurationError
from shardvault.cosigner.state import (
    init_node,
    open_node,
    pin_peers,
    read_public_identity,
    seal_config,
)
from shardvault.crypto.channel import PartyIdentity
from shardvault.crypto.rng import system_random
from shardvault.custody.backends.local import DEVELOPMENT_COST
from shardvault.custody.secret import SecretBytes
from shardvault.policy import parse_request
from tests.cosigner.support import (
    ADMIN_SET,
    PASSPHRASE,
    WORKSPACE,
    make_nodes,
    metadata,
    signed_bundle,
    unseal,
)

PASSPHRASE_ENV = "SV_TEST_CONFIG_PASSPHRASE"


def _open(directory: Path):
    with SecretBytes(PASSPHRASE.encode()) as passphrase:
        return open_node(directory, passphrase)


def _config_path(directory: Path) -> Path:
    return directory / "cosigner.json"


def _load(directory: Path) -> dict:
    return json.loads(_config_path(directory).read_text())


def _store(directory: Path, config: dict) -> None:
    """Write ``config`` as an attacker with write access would (keeping the mode)."""
    path = _config_path(directory)
    path.write_text(json.dumps(config))
    path.chmod(0o600)


@pytest.fixture
def nodes(tmp_path) -> dict[int, Path]:
    return make_nodes(tmp_path, count=3)


def _refused(directory: Path, match: str) -> str:
    with pytest.raises(ConfigurationError, match=match) as info:
        _open(directory)
    message = str(info.value)
    assert str(_config_path(directory)) in message or "keyring" in message
    return message


def test_the_signature_verifies_independently_over_the_documented_bytes(nodes) -> None:
    config = _load(nodes[1])
    assert config["format"] == "shardvault.cosigner/v2"
    body = {k: v for k, v in config.items() if k != "signature"}
    signed = CONFIG_DOMAIN + json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")
    assert signed == canonical_config(config)
    _, public = read_public_identity(nodes[1])
    VerifyKey(public.signing_key).verify(signed, bytes.fromhex(config["signature"]))
    state = _open(nodes[1])
    assert sorted(state.directory.entries) == [1, 2, 3]
    state.close()


def test_a_tampered_admin_set_is_refused(nodes) -> None:
    config = _load(nodes[1])
    attacker = SigningKey.generate()
    config["admins"] = {
        "quorum": 1,
        "members": [
            {
                "id": "mallory",
                "algorithm": "ed25519",
                "public_key": bytes(attacker.verify_key).hex(),
            }
        ],
    }
    _store(nodes[1], config)
    _refused(nodes[1], "signature does not verify")


def test_a_tampered_peer_identity_is_refused(nodes) -> None:
    config = _load(nodes[1])
    config["directory"]["2"] = PartyIdentity.generate(2, system_random).public.to_json()
    _store(nodes[1], config)
    _refused(nodes[1], "signature does not verify")


def test_a_removed_signature_is_refused(nodes) -> None:
    config = _load(nodes[1])
    del config["signature"]
    _store(nodes[1], config)
    message = _refused(nodes[1], "signature does not verify")
    assert "no signature" in message


def test_a_configuration_signed_by_another_key_is_refused(nodes) -> None:
    """The file is checked under the identity unsealed from custody, not under any key
    the file names: another node's valid signature does not count."""
    config = _load(nodes[1])
    config["admins"]["quorum"] = 1
    _store(nodes[1], sign_config(config, PartyIdentity.generate(1, system_random)))
    _refused(nodes[1], "signature does not verify")


def test_a_repeated_key_in_the_file_is_refused(nodes) -> None:
    text = _config_path(nodes[1]).read_text()
    _config_path(nodes[1]).write_text(text.replace('"party": 1', '"party": 1, "party": 1', 1))
    with pytest.raises(ConfigurationError, match="cannot be read as JSON"):
        _open(nodes[1])


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o660, 0o602])
def test_a_configuration_others_can_access_is_refused(nodes, mode) -> None:
    _config_path(nodes[1]).chmod(mode)
    message = _refused(nodes[1], f"has mode {mode:04o}")
    assert str(_config_path(nodes[1])) in message


def test_a_keyring_file_others_can_access_is_refused(nodes) -> None:
    (key_file,) = (nodes[1] / "keyring").glob("*.key")
    key_file.chmod(0o644)
    with pytest.raises(ConfigurationError, match="has mode 0644") as info:
        _open(nodes[1])
    assert str(key_file) in str(info.value)


def test_an_honest_re_pin_signs_again_and_opens(nodes, tmp_path) -> None:
    newcomer = tmp_path / "cosigner-4"
    with SecretBytes(PASSPHRASE.encode()) as passphrase:
        public = init_node(newcomer, 4, WORKSPACE, ADMIN_SET, passphrase, cost=DEVELOPMENT_COST)
    before = _load(nodes[1])["signature"]
    pin_peers(nodes[1], {4: public}, unseal(nodes[1]))
    assert _load(nodes[1])["signature"] != before
    state = _open(nodes[1])
    assert state.directory.get(4) == public
    state.close()


def test_pinning_never_signs_a_changed_file(nodes) -> None:
    """A writer verifies before it signs, so a tampered file is not laundered."""
    config = _load(nodes[1])
    config["directory"]["3"] = PartyIdentity.generate(3, system_random).public.to_json()
    _store(nodes[1], config)
    newcomer = PartyIdentity.generate(4, system_random).public
    with pytest.raises(ConfigurationError, match="signature does not verify"):
        pin_peers(nodes[1], {4: newcomer}, unseal(nodes[1]))
    # Nor under another node's identity.
    with pytest.raises(ConfigurationError, match="signature does not verify"):
        pin_peers(nodes[2], {4: newcomer}, unseal(nodes[1]))


def test_files_are_private_whatever_the_umask(tmp_path) -> None:
    previous = os.umask(0)
    try:
        directory = make_nodes(tmp_path, count=1)[1]
        state = _open(directory)
        state.accept_bundle(signed_bundle())
        fields = {
            "digest": "00" * 32,
            "operation": "transfer",
            "network": "solana",
            "destination": "x",
            "asset": {"id": "SOL", "decimals": 9},
            "amount": "1",
            **metadata(),
        }
        state.record.append(
            state.identity,
            ids=None,
            intent_digest=None,
            replay_key=None,
            signer_key=bytes(32),
            payload_digest=bytes(32),
            now=0,
            request=parse_request(fields),
        )
        state.peers.acknowledge(2, 1)
        state.close()
        pin_peers(directory, {}, unseal(directory))
    finally:
        os.umask(previous)
    found = {p.relative_to(directory).as_posix(): p for p in directory.rglob("*")}
    assert {"cosigner.json", "policy/bundles.json", "signed.jsonl", "records/acks.json"} <= set(
        found
    )
    assert any(name.startswith("keyring/") for name in found)
    assert any(name.startswith("shares/") and found[name].is_file() for name in found)
    for name, path in [(".", directory), *found.items()]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (name, oct(mode))


def _legacy(directory: Path) -> dict:
    """What the previous release wrote: no signature, format v1, mode 0644."""
    config = _load(directory)
    del config["signature"]
    config["format"] = LEGACY_CONFIG_FORMAT
    path = _config_path(directory)
    path.write_text(json.dumps(config))
    path.chmod(0o644)
    (directory / "history.jsonl").write_text("")
    (directory / "history.jsonl").chmod(0o644)
    return config


def test_a_configuration_of_the_previous_release_is_refused_until_sealed(nodes) -> None:
    _legacy(nodes[1])
    message = _refused(nodes[1], "no configuration signature")
    assert f"shardvault cosigner seal-config --data-dir {nodes[1]}" in message
    # A writer refuses it too: it cannot be verified.
    with pytest.raises(ConfigurationError, match="seal-config"):
        pin_peers(nodes[1], {}, unseal(nodes[1]))
    shown = []
    summary = seal_config(nodes[1], unseal(nodes[1]), lambda s: shown.append(s) or True)
    assert shown == [summary]
    assert summary.fingerprints == {
        p: read_public_identity(d)[1].fingerprint() for p, d in nodes.items()
    }
    assert summary.admins.to_document()["quorum"] == ADMIN_SET["quorum"]
    assert stat.S_IMODE(_config_path(nodes[1]).stat().st_mode) == 0o600
    assert stat.S_IMODE((nodes[1] / "history.jsonl").stat().st_mode) == 0o600
    _open(nodes[1]).close()
    # Sealing is for unsigned files only: a signed one is never re-signed this way.
    with pytest.raises(ConfigurationError, match="already in the signed format"):
        seal_config(nodes[1], unseal(nodes[1]))


def test_sealing_declined_writes_nothing(nodes) -> None:
    _legacy(nodes[1])
    before = _config_path(nodes[1]).read_bytes()
    with pytest.raises(ConfigurationError, match="not confirmed"):
        seal_config(nodes[1], unseal(nodes[1]), lambda s: False)
    assert _config_path(nodes[1]).read_bytes() == before


def test_sealing_checks_the_directory_holds_this_node(nodes) -> None:
    config = _legacy(nodes[1])
    config["directory"]["1"] = PartyIdentity.generate(1, system_random).public.to_json()
    _config_path(nodes[1]).write_text(json.dumps(config))
    with pytest.raises(ConfigurationError, match="own identity"):
        seal_config(nodes[1], unseal(nodes[1]))


def _cli(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, ["cosigner", *args], input=stdin, catch_exceptions=False)


def test_cli_seal_config_shows_fingerprints_and_signs(nodes, monkeypatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    _legacy(nodes[1])
    args = ("seal-config", "--data-dir", str(nodes[1]), "--passphrase-env", PASSPHRASE_ENV)
    declined = _cli(*args, stdin="n\n")
    assert declined.exit_code != 0
    assert "not confirmed" in declined.stderr
    result = _cli(*args, stdin="y\n")
    assert result.exit_code == 0, result.output
    fingerprints = {str(p): read_public_identity(d)[1].fingerprint() for p, d in nodes.items()}
    for fingerprint in fingerprints.values():
        assert fingerprint in result.stderr
    assert "admin-1" in result.stderr
    answer = json.loads(result.stdout)
    assert answer["sealed"] is True
    assert answer["directory"] == fingerprints
    _open(nodes[1]).close()


def _run(directory: Path):
    return _cli(
        *("run", "--id", "1", "--data-dir", str(directory)),
        *("--coordinator", "http://127.0.0.1:9", "--passphrase-env", PASSPHRASE_ENV),
    )


@pytest.mark.parametrize("damage", ["admins", "peer", "signature", "mode", "legacy"])
def test_cli_run_refuses_a_tampered_data_directory_in_one_line(nodes, monkeypatch, damage) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    config = _load(nodes[1])
    if damage == "admins":
        config["admins"]["quorum"] = 1
        _store(nodes[1], config)
    elif damage == "peer":
        config["directory"]["3"] = PartyIdentity.generate(3, system_random).public.to_json()
        _store(nodes[1], config)
    elif damage == "signature":
        del config["signature"]
        _store(nodes[1], config)
    elif damage == "mode":
        _config_path(nodes[1]).chmod(0o644)
    else:
        _legacy(nodes[1])
    result = _run(nodes[1])
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert str(_config_path(nodes[1])) in lines[0]
    expected = {
        "mode": "has mode 0644",
        "legacy": "seal-config",
    }.get(damage, "signature does not verify")
    assert expected in lines[0]
    assert '"started"' not in result.stdout
