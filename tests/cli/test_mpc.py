"""``shardvault mpc keygen`` and ``sign``: results verified by others' code, bad input refused.

Passphrases here are test-only values.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from shardvault.cli.main import cli
from shardvault.crypto.protocols.frost import SUITES
from tests.crypto.frost.conftest import verify_externally

PASS_ENV = {"SV_TEST_ONLY_PASSPHRASE": "test-only-passphrase"}


def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args), env=env if env is not None else PASS_ENV)


def keygen(out: Path, scheme: str, t: int = 2, n: int = 3):  # type: ignore[no-untyped-def]
    return run(
        "mpc", "keygen", "--scheme", scheme, "--min-signers", str(t), "--max-signers", str(n),
        "--out", str(out), "--passphrase-env", "SV_TEST_ONLY_PASSPHRASE",
    )  # fmt: skip


def sign(shares: Path, signers: str, message_hex: str, *extra: str, env=None):  # type: ignore[no-untyped-def]
    return run(
        "mpc", "sign", "--shares", str(shares), "--signers", signers, "--message-hex",
        message_hex, "--passphrase-env", "SV_TEST_ONLY_PASSPHRASE", *extra, env=env,
    )  # fmt: skip


def snapshot(directory: Path) -> dict[str, bytes]:
    if not directory.exists():
        return {}
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module", params=["eddsa-ed25519", "schnorr-bip340"])
def ceremony(request, tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp(request.param)
    result = keygen(out, request.param)
    assert result.exit_code == 0, result.output
    return request.param, out, json.loads(result.stdout)


def test_keygen_prints_the_promised_fields(ceremony) -> None:  # type: ignore[no-untyped-def]
    scheme, out, summary = ceremony
    assert summary["scheme"] == scheme
    assert summary["min_signers"] == 2
    assert summary["max_signers"] == 3
    assert summary["party_ids"] == [1, 2, 3]
    assert len(bytes.fromhex(summary["public_key"])) == 32
    assert sorted(p.name for p in out.iterdir()) == [f"party-{i}.share.json" for i in (1, 2, 3)]
    for path in out.iterdir():
        assert path.stat().st_mode & 0o077 == 0
        # The share is sealed: the public key is readable, the secret is not in clear.
        assert summary["public_key"] in path.read_text()


@pytest.mark.parametrize("signers", ["1,2", "1,3", "2,3", "3,1,2"])
def test_sign_verifies_externally(ceremony, signers: str) -> None:  # type: ignore[no-untyped-def]
    scheme, out, summary = ceremony
    message = b"shardvault cli test " + signers.encode()
    result = sign(out, signers, message.hex())
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["scheme"] == scheme
    assert printed["public_key"] == summary["public_key"]
    signature = bytes.fromhex(printed["signature"])
    assert len(signature) == 64
    verify_externally(SUITES[scheme], bytes.fromhex(summary["public_key"]), message, signature)


def test_taproot_tweaked_signing(tmp_path: Path) -> None:
    import coincurve

    assert keygen(tmp_path, "schnorr-bip340").exit_code == 0
    result = sign(tmp_path, "2,3", "aa" * 32, "--taproot-merkle-root", "")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    output_key = coincurve.PublicKeyXOnly(bytes.fromhex(printed["output_key"]))
    assert output_key.verify(bytes.fromhex(printed["signature"]), bytes(32 * [0xAA]))


def _refused(result, needle: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("t", "n", "needle"),
    [(3, 2, "--min-signers"), (0, 3, "--min-signers"), (1, 0, "--max-signers")],
    ids=["T>N", "T<1", "N<1"],
)
def test_keygen_refuses_bad_thresholds(tmp_path: Path, t: int, n: int, needle: str) -> None:
    out = tmp_path / "shares"
    _refused(keygen(out, "eddsa-ed25519", t, n), needle)
    assert not out.exists()


def test_keygen_refuses_to_overwrite(ceremony) -> None:  # type: ignore[no-untyped-def]
    scheme, out, _ = ceremony
    before = snapshot(out)
    _refused(keygen(out, scheme), "refusing to overwrite")
    assert snapshot(out) == before


def test_keygen_needs_the_passphrase(tmp_path: Path) -> None:
    result = run(
        "mpc", "keygen", "--scheme", "eddsa-ed25519", "--min-signers", "2", "--max-signers",
        "3", "--out", str(tmp_path / "x"), "--passphrase-env", "SV_UNSET_VARIABLE", env={},
    )  # fmt: skip
    _refused(result, "SV_UNSET_VARIABLE")
    assert not (tmp_path / "x").exists()


def test_sign_refusals_change_nothing(ceremony, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, out, _ = ceremony
    before = snapshot(out)
    _refused(sign(out, "1", "00"), "too few signers")
    _refused(sign(out, "1,7", "00"), "unknown party 7")
    _refused(sign(out, "1,1", "00"), "twice")
    _refused(sign(out, "1,x", "00"), "--signers")
    _refused(sign(out, "1,2", "zz"), "hexadecimal")
    wrong = {"SV_TEST_ONLY_PASSPHRASE": "not-the-passphrase"}
    _refused(sign(out, "1,2", "00", env=wrong), "wrong passphrase")
    _refused(sign(tmp_path / "missing", "1,2", "00"), "not a directory")
    assert snapshot(out) == before


@pytest.mark.parametrize(
    "mutation",
    ["ciphertext", "party_id", "public_key", "truncate", "garbage"],
)
def test_sign_refuses_tampered_share_files(ceremony, tmp_path: Path, mutation: str) -> None:  # type: ignore[no-untyped-def]
    _, out, _ = ceremony
    copy = tmp_path / "copy"
    copy.mkdir()
    for name, data in snapshot(out).items():
        (copy / name).write_bytes(data)
    target = copy / "party-2.share.json"
    fields = json.loads(target.read_text())
    if mutation == "ciphertext":
        raw = bytearray(fields["ciphertext"].encode())
        raw[10] = ord("A") if raw[10] != ord("A") else ord("B")
        fields["ciphertext"] = raw.decode()
        target.write_text(json.dumps(fields))
    elif mutation == "party_id":
        fields["party_id"] = 3
        target.write_text(json.dumps(fields))
    elif mutation == "public_key":
        fields["public_key"] = "00" * 32
        target.write_text(json.dumps(fields))
    elif mutation == "truncate":
        target.write_bytes(target.read_bytes()[:50])
    else:
        target.write_bytes(b"\x00\xff not json")
    before = snapshot(copy)
    result = sign(copy, "1,2", "00")
    assert result.exit_code != 0
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1
    assert snapshot(copy) == before


def test_usage_errors_are_one_line() -> None:
    # Through the real entry point, click's own usage errors are one line too.
    proc = subprocess.run(
        [sys.executable, "-m", "shardvault.cli.main", "mpc", "keygen", "--scheme", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("error:")
