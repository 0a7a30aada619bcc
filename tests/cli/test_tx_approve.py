"""``shardvault tx approve`` shows the transfer it approves before signing, and a
server whose intent digest is not that transfer's gets a one-line error and no
approval (DESIGN.md invariant 13). The server is :mod:`tests.approval_stub`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from shardvault.cli import tx as tx_cli
from shardvault.cli.main import cli
from shardvault.policy.intent import intent_digest
from tests.approval_stub import (
    ALICE,
    MALLORY,
    SOURCE,
    TX_ID,
    StubServer,
    stub_client,
    stub_intent,
    stub_view,
)


def _approve(
    server: StubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    key_path = tmp_path / "approval.pem"
    key_path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    monkeypatch.setattr(tx_cli, "sdk_client", lambda *_args: stub_client(server))
    result = CliRunner().invoke(
        cli,
        [
            "tx",
            "approve",
            TX_ID,
            "--approver",
            "carol@acme.example",
            "--approval-key",
            str(key_path),
            "--url",
            "http://stub.invalid",
        ],
    )
    return result.exit_code, result.stdout, result.stderr


def test_approve_shows_the_transfer_then_signs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = StubServer(stub_view(intent_digest(stub_intent())))
    code, out, err = _approve(server, tmp_path, monkeypatch)
    assert code == 0, err
    assert f"approving transaction {TX_ID} in workspace ws-acme:" in err
    assert f"destination: {ALICE}" in err
    assert "amount:      1 ETH (1000000000000000000 base units)" in err
    assert "asset:       ETH" in err
    assert "network:     my-sepolia (sepolia)" in err
    assert f"source:      {SOURCE}" in err
    assert f"intent:      {intent_digest(stub_intent()).hex()}" in err
    [posted] = server.approvals
    assert abs(int(str(posted["signed_at"])) - time.time()) < 60  # this machine's clock
    assert f"transaction {TX_ID}" in out


def test_approve_refuses_a_digest_of_another_transfer_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = StubServer(stub_view(intent_digest(stub_intent(destination=MALLORY))))
    code, out, err = _approve(server, tmp_path, monkeypatch)
    assert code == 1
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("error: the server's intent_digest is not the digest")
    assert "refusing to sign" in line
    assert server.approvals == []
