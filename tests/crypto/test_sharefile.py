"""Passphrase-sealed share files: Argon2id for new files, scrypt files still open, and KDF
parameters from a file bounded before any work (issue #19)."""

import json
import secrets
from pathlib import Path

import pytest

from shardvault.crypto import sharefile
from shardvault.crypto.sharefile import (
    ShareFileError,
    ShareFileHeader,
    ShareFileParameterError,
    open_sealed,
    read_header,
    seal,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HEADER = ShareFileHeader("schnorr-bip340", 1, 2, 3, "02" + "ab" * 32)
SECRET = b"TEST-ONLY share bytes"
PASSPHRASE = b"test-only passphrase"


@pytest.fixture(scope="module")
def sealed() -> bytes:
    return seal(HEADER, SECRET, PASSPHRASE, secrets.token_bytes)


def _edit(data: bytes, **kdf: object) -> bytes:
    fields = json.loads(data)
    fields["kdf"].update(kdf)
    fields["kdf"] = {k: v for k, v in fields["kdf"].items() if v is not _DROP}
    return json.dumps(fields).encode()


class _Drop:
    """A field to remove from the file (named in test ids, the same in every process)."""

    def __repr__(self) -> str:
        return "<dropped>"


_DROP = _Drop()


def test_round_trip_uses_argon2id_at_the_owasp_setting(sealed: bytes) -> None:
    header, secret = open_sealed(sealed, PASSPHRASE)
    assert (header, secret) == (HEADER, SECRET)
    kdf = json.loads(sealed)["kdf"]
    assert kdf["name"] == "argon2id"
    assert (kdf["version"], kdf["memory_kib"], kdf["iterations"], kdf["lanes"]) == (
        0x13,
        47_104,
        1,
        1,
    )
    assert len(bytes.fromhex(kdf["salt"])) == 16
    assert SECRET not in sealed
    # A second file of the same share has its own salt and nonce.
    other = seal(HEADER, SECRET, PASSPHRASE, secrets.token_bytes)
    assert json.loads(other)["kdf"]["salt"] != kdf["salt"]
    assert json.loads(other)["ciphertext"] != json.loads(sealed)["ciphertext"]


def test_a_scrypt_file_of_an_earlier_release_still_opens() -> None:
    # Written by the scrypt code of the release before Argon2id (test-only passphrase and
    # contents, no key share).
    data = (FIXTURES / "test_only_share_file_scrypt.json").read_bytes()
    assert json.loads(data)["kdf"]["name"] == "scrypt"
    header, secret = open_sealed(data, PASSPHRASE)
    assert header == ShareFileHeader("eddsa-ed25519", 2, 2, 3, "11" * 32)
    assert secret == b"TEST-ONLY share bytes, not a key"
    with pytest.raises(ShareFileError, match="wrong passphrase"):
        open_sealed(data, b"not the passphrase")


def test_wrong_passphrase_is_refused(sealed: bytes) -> None:
    with pytest.raises(ShareFileError, match="wrong passphrase") as info:
        open_sealed(sealed, b"not the passphrase")
    assert not isinstance(info.value, ShareFileParameterError)


@pytest.mark.parametrize(
    "edit",
    [
        {"party_id": 3},
        {"public_key": "03" + "ab" * 32},
        {"min_signers": 3},
        {"scheme": "eddsa-ed25519"},
        {"kdf": "memory"},
        {"kdf": "salt"},
    ],
    ids=["party", "public-key", "threshold", "scheme", "kdf-memory", "kdf-salt"],
)
def test_tampered_header_or_parameters_do_not_open(sealed: bytes, edit: dict) -> None:  # type: ignore[type-arg]
    fields = json.loads(sealed)
    if edit.get("kdf") == "memory":
        fields["kdf"]["memory_kib"] = 19_456  # in range, but not what the file was sealed with
    elif edit.get("kdf") == "salt":
        fields["kdf"]["salt"] = "00" * 16
    else:
        fields.update(edit)
    with pytest.raises(ShareFileError, match="wrong passphrase or the file was altered"):
        open_sealed(json.dumps(fields).encode(), PASSPHRASE)


@pytest.mark.parametrize(
    ("kdf", "match"),
    [
        ({"memory_kib": 64 * 1024 * 1024}, "memory_kib"),  # 64 GiB
        ({"memory_kib": 1024 * 1024 + 1}, "memory_kib"),
        ({"memory_kib": 1024}, "memory_kib"),
        ({"iterations": 0}, "iterations"),
        ({"iterations": 1_000_000}, "iterations"),
        ({"lanes": 0}, "lanes"),
        ({"lanes": 1024}, "lanes"),
        ({"memory_kib": "47104"}, "integer"),
        ({"iterations": True}, "integer"),
        ({"memory_kib": 47104.0}, "integer"),
        ({"version": 0x10}, "version"),
        ({"salt": "00"}, "salt"),
        ({"salt": "zz" * 16}, "salt"),
        ({"lanes": _DROP}, "missing or unknown"),
        ({"extra": 1}, "missing or unknown"),
        ({"name": "pbkdf2"}, "unknown KDF"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_kdf_parameters_out_of_range_are_refused_before_any_work(
    sealed: bytes, kdf: dict, match: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[type-arg]
    def no_kdf(*args: object, **kwargs: object) -> None:
        raise AssertionError("a key was derived from out-of-range parameters")

    monkeypatch.setattr(sharefile, "Argon2id", no_kdf)
    monkeypatch.setattr(sharefile, "Scrypt", no_kdf)
    with pytest.raises(ShareFileParameterError, match=match):
        open_sealed(_edit(sealed, **kdf), PASSPHRASE)


@pytest.mark.parametrize(
    ("kdf", "match"),
    [
        ({"n": 2**30}, "scrypt N"),
        ({"n": 2**15 + 1}, "scrypt N"),
        ({"n": True}, "scrypt N"),
        ({"r": 1024}, "r = 1024"),
        ({"p": 64}, "p = 64"),
        ({"p": _DROP}, "missing or unknown"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_scrypt_parameters_out_of_range_are_refused(
    kdf: dict, match: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[type-arg]
    def no_kdf(*args: object, **kwargs: object) -> None:
        raise AssertionError("a key was derived from out-of-range parameters")

    monkeypatch.setattr(sharefile, "Scrypt", no_kdf)
    data = (FIXTURES / "test_only_share_file_scrypt.json").read_bytes()
    with pytest.raises(ShareFileParameterError, match=match):
        open_sealed(_edit(data, **kdf), PASSPHRASE)


def test_header_reads_without_the_passphrase(sealed: bytes) -> None:
    header, fields = read_header(sealed)
    assert header == HEADER
    assert fields["aead"] == "chacha20-poly1305"


@pytest.mark.parametrize(
    "data",
    [b"not json", b"[]", json.dumps({"format": "shardvault-share/99"}).encode(), b"{" * 2_000_000],
    ids=["not-json", "list", "format", "too-large"],
)
def test_malformed_files_raise_the_typed_error(data: bytes) -> None:
    with pytest.raises(ShareFileError):
        open_sealed(data, PASSPHRASE)
