"""The passphrase-sealed local keyring: unsealing, tampering and locking."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from shardvault.custody.backends.local import DEVELOPMENT_COST, LocalBackend
from shardvault.custody.errors import (
    BackendUnavailableError,
    ConfigurationError,
    KeyNotFoundError,
    WrongPassphraseError,
)
from shardvault.custody.secret import SecretBytes

PASS = b"local passphrase"


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    with SecretBytes(PASS) as passphrase:
        return LocalBackend.initialize(tmp_path / "kr", passphrase, DEVELOPMENT_COST)


def _open(tmp_path: Path, kek: str, passphrase: bytes = PASS) -> LocalBackend:
    with SecretBytes(passphrase) as secret:
        return LocalBackend(tmp_path / "kr", secret, kek, DEVELOPMENT_COST)


def test_key_file_holds_no_key_in_clear(backend: LocalBackend, tmp_path: Path) -> None:
    path = tmp_path / "kr" / f"{backend.kek_id}.key"
    assert path.stat().st_mode & 0o777 == 0o600
    document = json.loads(path.read_text())
    assert document["kdf"]["name"] == "argon2id"
    master = backend._master(backend.kek_id).reveal()
    assert master not in path.read_bytes()
    assert master.hex() not in path.read_text()


def test_reopen_with_passphrase(backend: LocalBackend, tmp_path: Path) -> None:
    data_key, wrapped = backend.generate_data_key({"x": "y"})
    assert _open(tmp_path, backend.kek_id).unwrap(wrapped, {"x": "y"}).equals(data_key)
    with pytest.raises(WrongPassphraseError):
        _open(tmp_path, backend.kek_id, b"not it")


def test_renamed_key_file_does_not_unseal(backend: LocalBackend, tmp_path: Path) -> None:
    folder = tmp_path / "kr"
    os.link(folder / f"{backend.kek_id}.key", folder / "kek-renamed.key")
    with pytest.raises(WrongPassphraseError):
        _open(tmp_path, "kek-renamed")


@pytest.mark.parametrize(
    "content",
    [b"not json", b"{}", b'{"format": 9, "kdf": {"name": "argon2id"}}',
     b'{"format": 1, "kdf": {"name": "argon2id", "salt": "!!", "time_cost": 1, '
     b'"memory_cost": 8, "parallelism": 1}, "nonce": "", "sealed": ""}'],
)  # fmt: skip
def test_malformed_key_file_is_a_configuration_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "kr").mkdir()
    (tmp_path / "kr" / "kek-bad.key").write_bytes(content)
    with pytest.raises(ConfigurationError):
        _open(tmp_path, "kek-bad")


def test_missing_and_invalid_key_ids(backend: LocalBackend, tmp_path: Path) -> None:
    with pytest.raises(KeyNotFoundError):
        _open(tmp_path, "kek-missing")
    with pytest.raises(KeyNotFoundError):
        _open(tmp_path, "../../etc/passwd")


def test_lock_makes_it_unavailable(backend: LocalBackend) -> None:
    _, wrapped = backend.generate_data_key({})
    backend.lock()
    with pytest.raises(BackendUnavailableError):
        backend.unwrap(wrapped, {})
    with pytest.raises(BackendUnavailableError):
        backend.create_key()


def test_initialize_refuses_an_existing_keyring(backend: LocalBackend, tmp_path: Path) -> None:
    with SecretBytes(PASS) as passphrase, pytest.raises(ConfigurationError):
        LocalBackend.initialize(tmp_path / "kr", passphrase, DEVELOPMENT_COST)


def test_rotation_keys_share_the_passphrase(backend: LocalBackend, tmp_path: Path) -> None:
    second = backend.create_key()
    backend.use_key(second)
    data_key, wrapped = backend.generate_data_key({"a": "b"})
    assert wrapped.kek_id == second
    assert _open(tmp_path, second).unwrap(wrapped, {"a": "b"}).equals(data_key)
