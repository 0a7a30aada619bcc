"""``shardvault server`` with its embedded pipeline: a real server process (SQLite in its
data directory) creates a 2-of-3 vault, and a transfer sent with the CLI is signed,
broadcast to hardhat and completed without anything else running. With the default
signer the keys are generated and used by three co-signer processes the server starts
(each checks the request against the signed policy itself); with ``local-ceremony`` by
every party inside the server (a local keyring sealed with SHARDVAULT_KEYRING_PASSPHRASE).
Both use the TEST-ONLY primes fixture. Stops the server with SIGTERM, which stops the
co-signers too. The co-signers' directories are in the default co-signer home, beside
the data directory (``<data>-cosigners``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from shardvault.cli.main import cli
from shardvault.cosigner.state import read_public_identity
from shardvault.sdk import ApiKeyCredentials, ShardvaultClient
from tests.chains.ethereum.hardhat import HardhatNode, hardhat_node
from tests.cli.process_support import cosigner_pids
from tests.service.pipeline_support import TEST_ONLY_PRIMES, fund

__all__ = ["hardhat_node"]

RECIPIENT = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(data: Path, port: int, signer: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, SHARDVAULT_KEYRING_PASSPHRASE="test-only passphrase")
    process = subprocess.Popen(
        [sys.executable, "-m", "shardvault.cli.main", "server", "--port", str(port),
         "--data-dir", str(data), "--unsafe-test-only-primes", str(TEST_ONLY_PRIMES), "--json",
         "--signer", signer],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1)
            return process
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.1)


def _send(runner: CliRunner, wallet: str, api: list[str]) -> dict[str, object]:
    sent = runner.invoke(
        cli,
        ["tx", "send", "--wallet", wallet, "--to", RECIPIENT, "--amount", "0.75",
         "--wait", "--timeout", "60", *api, "--json"],
    )  # fmt: skip
    assert sent.exit_code == 0, sent.output
    tx: dict[str, object] = json.loads(sent.stdout)
    assert tx["status"] == "completed", tx
    return tx


@pytest.mark.slow
@pytest.mark.parametrize("signer", ["cosigners", "local-ceremony"])
def test_server_signs_and_sends_a_transfer(
    tmp_path: Path, hardhat_node: HardhatNode, signer: str
) -> None:
    runner = CliRunner()
    data = tmp_path / "data"
    home = tmp_path / "data-cosigners"
    created = runner.invoke(
        cli,
        ["init", "--name", "acme", "--owner-name", "Olivia", "--owner-email", "o@acme.example",
         "--key-out", str(tmp_path / "owner.pem"), "--data-dir", str(data), "--json"],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    owner = json.loads(created.stdout)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = _start_server(data, port, signer)
    try:
        credentials = ApiKeyCredentials.from_file(owner["api_key_id"], tmp_path / "owner.pem")
        with ShardvaultClient(url, credentials) as client:
            client.configure_network(
                name="hardhat", kind="evm", chain_id=hardhat_node.chain_id, rpc_url=hardhat_node.url
            )
            client.add_asset(symbol="ETH", network="hardhat")
        api = [
            "--url",
            url,
            "--api-key",
            owner["api_key_id"],
            "--key-file",
            str(tmp_path / "owner.pem"),
        ]
        admin = tmp_path / "admin.pem"
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
        )

        admin.write_bytes(
            Ed25519PrivateKey.generate().private_bytes(
                Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
            )
        )
        policy = tmp_path / "policy.yaml"
        policy.write_text(
            "format: shardvault.policy/v1\nversion: 1\nreference_currency: USD\n"
            "rules: [{name: allow-all, action: allow}]\n"
        )
        assets = tmp_path / "assets.json"
        assets.write_text(
            json.dumps(
                {
                    "format": "shardvault.asset-registry/v1",
                    "networks": [
                        {
                            "name": "hardhat",
                            "chain": "ethereum",
                            "chain_id": hardhat_node.chain_id,
                            "assets": [{"id": "ETH", "native": True, "decimals": 18}],
                        }
                    ],
                }
            )
        )
        applied = runner.invoke(
            cli,
            ["policy", "apply", str(policy), "--admin-key", f"admin={admin}",
             "--assets", str(assets), *api, "--json"],
        )  # fmt: skip
        assert applied.exit_code == 0, applied.output
        vault = runner.invoke(cli, ["vault", "create", "--name", "ops", *api, "--json"])
        assert vault.exit_code == 0, vault.output
        vault_id = json.loads(vault.stdout)["id"]
        wallet = runner.invoke(
            cli, ["wallet", "create", "--vault", vault_id, "--asset", "ETH", *api, "--json"]
        )
        assert wallet.exit_code == 0, wallet.output
        wallet_doc = json.loads(wallet.stdout)
        if signer == "cosigners":
            # Each co-signer process attested the address; the CLI verifies it against
            # the fingerprints read from the co-signers' own directories.
            pins = []
            for party_dir in sorted(home.glob("*/party-*")):
                party, identity = read_public_identity(party_dir)
                pins += ["--expect-cosigner", f"{party}={identity.fingerprint()}"]
            assert len(pins) == 6
            shown = runner.invoke(cli, ["wallet", "address", wallet_doc["id"], *pins, *api])
            assert shown.exit_code == 0, shown.output
            assert shown.stdout.strip().endswith("verified (3 of 3 co-signers)")
        else:
            assert wallet_doc["addresses"][0]["attestations"] == []
        fund(hardhat_node, wallet_doc["addresses"][0]["address"])
        tx = _send(runner, wallet_doc["id"], api)
        mined = hardhat_node.rpc("eth_getTransactionByHash", ["0x" + str(tx["tx_hash"])])
        assert isinstance(mined, dict)
        assert mined["from"].lower() == wallet_doc["addresses"][0]["address"].lower()
        if signer == "cosigners":
            # The server dies without stopping anything: its co-signers notice and stop
            # (no orphan keeps polling), and a restarted server starts them again.
            assert len(cosigner_pids(home)) == 3
            process.kill()
            process.communicate(timeout=30)
            deadline = time.monotonic() + 20
            while cosigner_pids(home) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert cosigner_pids(home) == []
            process = _start_server(data, port, signer)
            again = _send(runner, wallet_doc["id"], api)
            assert again["tx_hash"] != tx["tx_hash"]
            assert len(cosigner_pids(home)) == 3
    finally:
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            _out, err = process.communicate(timeout=30)
            stopped_in = time.monotonic() - stopping
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGUSR1)
            time.sleep(1)
            process.kill()
            _out, err = process.communicate(timeout=30)
            raise AssertionError(err.decode(errors="replace")[-6000:]) from None
    # Every co-signer the server started stopped with it.
    for log in home.glob("*/party-*/cosigner.log"):
        assert b'"event": "stopped"' in log.read_bytes() or b'"stopped"' in log.read_bytes(), (
            log.read_text(errors="replace")[-2000:]
        )
    if signer == "cosigners":
        assert len(list(home.glob("*/party-*/cosigner.log"))) == 3, err[-3000:]
    # The co-signers' long polls are woken as shutdown begins: none holds it until its
    # grace period ends and is cancelled (which uvicorn logs as an application error).
    assert b"Exception in ASGI application" not in err, err.decode(errors="replace")[-3000:]
    assert b"graceful shutdown exceeded" not in err
    assert stopped_in < 15
