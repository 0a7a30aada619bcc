"""``shardvault recovery keygen/export/restore`` and custody built from configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from shardvault.cli.main import cli
from shardvault.custody.backends import backend_from_config
from shardvault.custody.backends.local import DEVELOPMENT_COST, LocalBackend
from shardvault.custody.config import custody_from_config, load_config_file, store_from_config
from shardvault.custody.envelope import ShareAddress, ShareSlot
from shardvault.custody.errors import ConfigurationError
from shardvault.custody.secret import SecretBytes

ADDRESS = ShareAddress("ws1", "vault-a", "key-1", "party-1")


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SV_TEST_KEYRING", "keyring passphrase")
    monkeypatch.setenv("SV_TEST_RECOVERY", "recovery passphrase")
    with SecretBytes(b"keyring passphrase") as passphrase:
        backend = LocalBackend.initialize(tmp_path / "keyring", passphrase, DEVELOPMENT_COST)
    config = {
        "backend": {
            "type": "local",
            "directory": str(tmp_path / "keyring"),
            "key_id": backend.kek_id,
            "passphrase_env": "SV_TEST_KEYRING",
            "argon2": {"time_cost": 1, "memory_cost": 8192, "parallelism": 1},
        },
        "store": {"type": "local", "directory": str(tmp_path / "store")},
    }
    path = tmp_path / "custody.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_keygen_export_restore(config_file: Path, tmp_path: Path) -> None:
    custody = custody_from_config(load_config_file(config_file))
    custody.store_share(ShareSlot(ADDRESS, 1), SecretBytes(b"S" * 32), 0, presignature_epoch=2)
    runner = CliRunner()
    keys = tmp_path / "offline"
    result = runner.invoke(
        cli, ["recovery", "keygen", "--out", str(keys), "--passphrase-env", "SV_TEST_RECOVERY"]
    )
    assert result.exit_code == 0, result.output
    assert (keys / "recovery.key").stat().st_mode & 0o777 == 0o600
    bundle = tmp_path / "party-1.svbk"
    result = runner.invoke(
        cli,
        ["recovery", "export", "--config", str(config_file), "--workspace", "ws1",
         "--party", "party-1", "--recipient", str(keys / "recovery.pub"), "--out", str(bundle)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert b"S" * 32 not in bundle.read_bytes()
    result = runner.invoke(
        cli,
        ["recovery", "restore", "--config", str(config_file), "--bundle", str(bundle),
         "--key", str(keys / "recovery.key"), "--passphrase-env", "SV_TEST_RECOVERY"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["restored"] == [{"address": str(ADDRESS), "revision": 2, "presignature_epoch": 3}]
    with custody.load_share(ADDRESS) as opened:
        assert opened.share.equals(b"S" * 32)


def test_restore_with_wrong_passphrase_fails_cleanly(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    runner.invoke(
        cli,
        [
            "recovery",
            "keygen",
            "--out",
            str(tmp_path / "k"),
            "--passphrase-env",
            "SV_TEST_RECOVERY",
        ],
    )
    (tmp_path / "b").write_bytes(b"SVBK")
    monkeypatch.setenv("SV_TEST_RECOVERY", "wrong")
    result = runner.invoke(
        cli,
        ["recovery", "restore", "--config", str(config_file), "--bundle", str(tmp_path / "b"),
         "--key", str(tmp_path / "k" / "recovery.key"), "--passphrase-env", "SV_TEST_RECOVERY"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "wrong passphrase" in result.stderr
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    "config",
    [
        {"type": "nope"},
        {"type": "local"},
        {"type": "local", "directory": "/x", "key_id": "k", "passphrase_env": "SV_UNSET_VAR"},
        {"type": "aws-kms", "key_id": "k"},
        {"type": "aws-kms", "key_id": "k", "region": "us-east-1", "max_attempts": 0},
        {"type": "pkcs11", "library": "/x.so", "token_label": "t", "key_id": "k"},
    ],
)
def test_backend_config_errors_are_typed(config: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        backend_from_config(config)


@pytest.mark.parametrize(
    "config", [{"type": "ftp"}, {"type": "local"}, {"type": "s3", "bucket": "b"}]
)
def test_store_config_errors_are_typed(config: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        store_from_config(config)


def test_custody_config_needs_both_parts(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        custody_from_config({"backend": {}})
    (tmp_path / "c.yaml").write_text("- a list\n")
    with pytest.raises(ConfigurationError):
        load_config_file(tmp_path / "c.yaml")
    with pytest.raises(ConfigurationError):
        load_config_file(tmp_path / "missing.yaml")


def test_kms_and_pkcs11_from_config(
    moto_server: str, softhsm: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    kms = backend_from_config(
        {"type": "aws-kms", "key_id": "unset", "region": "us-east-1", "endpoint_url": moto_server}
    )
    kms.use_key(kms.create_key())
    data_key, wrapped = kms.generate_data_key({"a": "b"})
    assert kms.unwrap(wrapped, {"a": "b"}).equals(data_key)
    monkeypatch.setenv("SV_TEST_PIN", softhsm["pin"])
    hsm = backend_from_config(
        {"type": "pkcs11", "library": softhsm["library"], "token_label": softhsm["token_label"],
         "pin_env": "SV_TEST_PIN", "key_id": "unset"}
    )  # fmt: skip
    hsm.use_key(hsm.create_key())
    data_key, wrapped = hsm.generate_data_key({"a": "b"})
    assert hsm.unwrap(wrapped, {"a": "b"}).equals(data_key)


def test_attestation_from_config(tmp_path: Path) -> None:
    from shardvault.custody.attestation.devenclave import DevelopmentRoot
    from shardvault.custody.attestation.nitro import NitroVerifier
    from shardvault.custody.config import attestation_from_config

    pcr0 = "f4" * 48
    verifier, policy = attestation_from_config({"pcrs": {"0": pcr0}})
    assert isinstance(verifier, NitroVerifier)
    assert policy.expected == {0: bytes.fromhex(pcr0)}
    assert not policy.allow_debug
    root = DevelopmentRoot.generate()
    root.save(tmp_path)
    dev = {"root": str(tmp_path / "root.pem"), "pcrs": {0: pcr0}}
    with pytest.raises(ConfigurationError, match="development root"):
        attestation_from_config(dev)
    attestation_from_config({**dev, "allow_development_root": True})
    for bad in (
        {},
        {"pcrs": {"0": "zz"}},
        {"pcrs": {"0": "00"}},
        {"pcrs": {"0": pcr0}, "max_age_seconds": 0},
        {"pcrs": {"0": pcr0}, "allow_debug": "yes"},
        {"root": str(tmp_path / "missing.pem"), "pcrs": {"0": pcr0}},
        {"root": 5, "pcrs": {"0": pcr0}},
    ):
        with pytest.raises(ConfigurationError):
            attestation_from_config(bad)
