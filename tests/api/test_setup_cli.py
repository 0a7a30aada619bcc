"""The set-up commands of the CLI against a live server (SQLite and PostgreSQL):
``keys generate`` (an admin or approver key, the private half 0600, the public half's
hex printed), ``network add|list``, ``asset add|list`` and ``user add``; refused input is
one line on stderr and exit 1, with nothing stored."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from shardvault.cli.main import cli
from shardvault.sdk import ApiKeyCredentials, ShardvaultClient
from tests.api.support import Tenant


@pytest.fixture
def api(server_url: str, tenant: Tenant, tmp_path: Path) -> list[str]:
    key_file = tmp_path / "owner.pem"
    key_file.write_bytes(
        tenant.owner.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    return ["--url", server_url, "--api-key", tenant.owner.api_key_id, "--key-file", str(key_file)]


def test_keys_generate_writes_the_private_key_0600_and_prints_the_public_hex(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    out = tmp_path / "carol.pem"
    made = runner.invoke(cli, ["keys", "generate", "--out", str(out)])
    assert made.exit_code == 0, made.output
    public = made.stdout.strip()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    key = load_pem_private_key(out.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    assert key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex() == public
    assert len(public) == 64
    # Never over an existing file (a key that may be in use).
    again = runner.invoke(cli, ["keys", "generate", "--out", str(out), "--json"])
    assert again.exit_code == 1
    assert again.output.count("\n") == 1
    assert "cannot create key file" in again.output
    assert load_pem_private_key(out.read_bytes(), password=None).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw
    ).hex() == public  # fmt: skip
    other = runner.invoke(cli, ["keys", "generate", "--out", str(tmp_path / "a.pem"), "--json"])
    assert json.loads(other.stdout)["algorithm"] == "ed25519"


def test_networks_and_assets_from_the_command_line(api: list[str]) -> None:
    runner = CliRunner()
    added = runner.invoke(
        cli,
        ["network", "add", "--name", "devnet-b", "--chain-id", "31338",
         "--rpc-url", "http://127.0.0.1:9545", "--rpc-url", "https://rpc.example/v1",
         "--broadcast-url", "https://private.example/rpc", "--native-symbol", "DEV",
         "--confirmations", "2", *api, "--json"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    network = json.loads(added.stdout)
    assert network["rpc_urls"] == ["http://127.0.0.1:9545", "https://rpc.example/v1"]
    assert (network["chain_id"], network["native_symbol"], network["fee_model"]) == (
        31338,
        "DEV",
        "eip1559",
    )
    assert network["broadcast_url"] == "https://private.example/rpc"
    assert network["required_confirmations"] == 2
    refusals = [
        (["--chain-id", "56", "--fee-model", "legacy"], "EIP-1559 (type 2) transactions only"),
        (["--chain-id", "1", "--rpc-url", "http://169.254.169.254/"], "rpc_url"),
        (
            [
                "--chain-id",
                "1",
                "--rpc-url",
                "http://127.0.0.1:1",
                "--rpc-url",
                "http://[fe80::1]/",
            ],
            "rpc_urls[1]",
        ),
        (["--chain-id", "424242", "--name", "ethereum"], "names another network"),
    ]
    for args, words in refusals:
        name = ["--name", "x"] if "--name" not in args else []
        refused = runner.invoke(cli, ["network", "add", *name, *args, *api])
        assert refused.exit_code == 1, refused.output
        assert refused.output.count("\n") == 1
        assert words in refused.output
    asset = runner.invoke(
        cli, ["asset", "add", "--symbol", "DEV", "--network", "devnet-b", "--price", "2", *api]
    )
    assert asset.exit_code == 0, asset.output
    assert "DEV on devnet-b: native, 18 decimals, static price 2" in asset.output
    listed = runner.invoke(cli, ["network", "list", *api])
    assert listed.stdout.splitlines() == [
        "devnet-b: evm chain id 31338, native DEV, 2 confirmations, eip1559, nodes "
        "http://127.0.0.1:9545, https://rpc.example/v1, private broadcast "
        "https://private.example/rpc"
    ]
    assets = json.loads(runner.invoke(cli, ["asset", "list", *api, "--json"]).stdout)
    assert [(a["symbol"], a["network"], a["price"]) for a in assets["data"]] == [
        ("DEV", "devnet-b", "2")
    ]


def test_user_add_makes_a_member_with_an_api_key_of_their_own(
    api: list[str], server_url: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    key_out = tmp_path / "carol-api.pem"
    added = runner.invoke(
        cli,
        ["user", "add", "--name", "Carol", "--email", "carol@acme.example", "--role",
         "approver", "--key-out", str(key_out), *api, "--json"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    made = json.loads(added.stdout)
    assert (made["email"], made["role"]) == ("carol@acme.example", "approver")
    assert stat.S_IMODE(key_out.stat().st_mode) == 0o600
    with ShardvaultClient(
        server_url, ApiKeyCredentials.from_file(made["api_key_id"], key_out)
    ) as c:
        assert c.get_workspace().name == "acme"
    # The same email again: refused in one line, and the new key file is not left.
    second = tmp_path / "carol-2.pem"
    again = runner.invoke(
        cli,
        ["user", "add", "--name", "Carol", "--email", "carol@acme.example", "--role",
         "approver", "--key-out", str(second), *api],
    )  # fmt: skip
    assert again.exit_code == 1
    assert again.output.count("\n") == 1
    assert not second.exists()
