"""``shardvault attestation verify`` on the real AWS Nitro documents.

Source: ``tests/vectors/aws-nitro/`` (evervault/attestation-doc-validation and
hf/nitrite samples, AWS Nitro Enclaves root G1); see test_nitro.py.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from shardvault.cli.main import cli
from tests.vectors import load_vector, vector_path

MANIFEST = load_vector("aws-nitro/attestation-samples.json")
SAMPLES = {s["name"]: s for s in MANIFEST["samples"]}


def _run(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["attestation", "verify", *args])
    return result.exit_code, json.loads(result.stdout)


def _file(name: str) -> str:
    return str(vector_path(f"aws-nitro/{SAMPLES[name]['file']}"))


def _at(name: str) -> str:
    return str(SAMPLES[name]["decoded"]["timestamp_ms"] // 1000)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_valid_at_its_timestamp(name: str) -> None:
    code, out = _run(_file(name), "--at", _at(name), "--allow-debug")
    assert code == 0
    decoded = SAMPLES[name]["decoded"]
    assert out["valid"] is True
    assert "reason" not in out
    assert out["module_id"] == decoded["module_id"]
    assert out["timestamp"] == decoded["timestamp_ms"]
    assert out["pcrs"] == decoded["pcrs"]
    assert out["public_key"] == decoded["public_key_hex"]


@pytest.mark.parametrize("name", list(SAMPLES))
def test_invalid_now_because_expired(name: str) -> None:
    code, out = _run(_file(name), "--allow-debug")
    assert code != 0
    assert out["valid"] is False
    assert out["reason"] == "expired"
    assert out["module_id"] == SAMPLES[name]["decoded"]["module_id"]


def test_pcr_mismatch_and_match() -> None:
    name = "evervault-2022-10-13-nondebug"
    pcrs = SAMPLES[name]["decoded"]["pcrs"]
    code, out = _run(_file(name), "--at", _at(name), "--pcr", f"0={pcrs['0']}",
                     "--pcr", f"8={pcrs['8']}")  # fmt: skip
    assert (code, out["valid"]) == (0, True)
    code, out = _run(_file(name), "--at", _at(name), "--pcr", f"0={'00' * 48}")
    assert code != 0
    assert (out["valid"], out["reason"]) == (False, "pcr-mismatch")


def test_debug_document_needs_allow_debug() -> None:
    name = "evervault-2022-10-12-debug"
    code, out = _run(_file(name), "--at", _at(name))
    assert code != 0
    assert out["reason"] == "debug-mode"
    code, out = _run(_file(name), "--at", _at(name), "--allow-debug")
    assert (code, out["valid"]) == (0, True)
    pcr0 = SAMPLES["evervault-2022-10-13-nondebug"]["decoded"]["pcrs"]["0"]
    code, out = _run(_file(name), "--at", _at(name), "--allow-debug", "--pcr", f"0={pcr0}")
    assert code != 0
    assert out["reason"] == "pcr-mismatch"


def test_raw_cbor_file_and_explicit_root(tmp_path: Path) -> None:
    name = "hf-nitrite-2021-10-28-debug"
    raw = tmp_path / "doc.cbor"
    raw.write_bytes(base64.b64decode(Path(_file(name)).read_text()))
    root = str(vector_path("aws-nitro/aws-nitro-enclaves-root-G1.pem"))
    code, out = _run(str(raw), "--root", root, "--at", _at(name), "--allow-debug")
    assert (code, out["valid"]) == (0, True)


def test_garbage_file_is_invalid_malformed(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x84\x01\x02")
    code, out = _run(str(bad))
    assert code != 0
    assert (out["valid"], out["reason"]) == (False, "malformed")


@pytest.mark.parametrize("pcr", ["x", "0=zz", "40=" + "00" * 48, "0=00"])
def test_bad_pcr_option_is_a_usage_error(pcr: str) -> None:
    result = CliRunner().invoke(
        cli, ["attestation", "verify", _file("evervault-2022-10-12-debug"), "--pcr", pcr]
    )
    assert result.exit_code == 2


def test_development_enclave_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["attestation", "dev-root", "--out", str(tmp_path / "root")])
    assert result.exit_code == 0, result.output
    nonce = "ab" * 16
    result = runner.invoke(
        cli,
        ["attestation", "dev-attest", "--root-dir", str(tmp_path / "root"),
         "--out", str(tmp_path / "doc.cbor"), "--nonce", nonce],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    pcrs = json.loads(result.stdout)["pcrs"]
    root = str(tmp_path / "root" / "root.pem")
    # The default (AWS) root refuses it; the development root needs its own flag.
    code, out = _run(str(tmp_path / "doc.cbor"))
    assert (code, out["reason"]) == (1, "untrusted-root")
    refused = CliRunner().invoke(
        cli, ["attestation", "verify", str(tmp_path / "doc.cbor"), "--root", root]
    )
    assert refused.exit_code == 2
    dev = ["--root", root, "--allow-development-root"]
    pcr_args = ["--pcr", f"0={pcrs['0']}", "--pcr", f"8={pcrs['8']}"]
    code, out = _run(str(tmp_path / "doc.cbor"), *dev, "--nonce", nonce, *pcr_args)
    assert (code, out["valid"], out["nonce"]) == (0, True, nonce)
    code, out = _run(str(tmp_path / "doc.cbor"), "--root", root, "--allow-development-root",
                     "--nonce", "cd" * 16)  # fmt: skip
    assert (code, out["reason"]) == (1, "nonce-mismatch")
