"""The command line of the asset registry and signed prices: ``policy apply --assets``
signs a registry only as the admins wrote it, and ``prices sign`` / ``submit`` / ``list``
carry reports from a price key (kept on the signer's machine) to the server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shardvault.cli.main import cli
from shardvault.policy import parse_bundle, parse_price_report, parse_registry, verify_price_report
from shardvault.sdk import ShardvaultClient
from tests.api.support import Tenant

ORACLE = Ed25519PrivateKey.from_private_bytes(bytes(range(4, 36)))
"""A TEST-ONLY price key."""


def _pem(key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _registry(eth_price: str) -> dict[str, object]:
    oracle = ORACLE.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    return {
        "format": "shardvault.asset-registry/v1",
        "networks": [
            {
                "name": "hardhat",
                "chain": "ethereum",
                "chain_id": 31337,
                "assets": [{"id": "ETH", "native": True, "decimals": 18, "price": eth_price}],
            }
        ],
        "price_keys": [{"id": "oracle", "algorithm": "ed25519", "public_key": oracle}],
        "max_price_age": 300,
    }


@pytest.fixture
def api(server_url: str, tenant: Tenant, tmp_path: Path) -> list[str]:
    with ShardvaultClient(server_url, tenant.owner) as owner:
        owner.configure_network(name="hardhat", kind="evm", chain_id=31337)
        owner.add_asset(symbol="ETH", network="hardhat", price="3000")
    key_file = tmp_path / "owner.pem"
    key_file.write_bytes(
        tenant.owner.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ["--url", server_url, "--api-key", tenant.owner.api_key_id, "--key-file", str(key_file)]


def test_policy_apply_signs_a_registry_only_as_the_admins_wrote_it(
    api: list[str], tmp_path: Path, server_url: str, tenant: Tenant
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "format: shardvault.policy/v1\nversion: 1\nreference_currency: USD\n"
        "rules: [{name: allow-all, action: allow}]\n"
    )
    admin = _pem(Ed25519PrivateKey.generate(), tmp_path / "admin.pem")
    base = ["policy", "apply", str(policy), "--admin-key", f"admin={admin}", *api, "--json"]
    runner = CliRunner()
    # Without --assets: the server built a registry from its tables; it is shown, and
    # signed only when the admin says so.
    refused = runner.invoke(cli, base, input="n\n")
    assert refused.exit_code == 1
    assert "hardhat (ethereum chain id 31337): ETH (native, 18 decimals, 3000)" in refused.output
    assert "not signing" in refused.output
    with ShardvaultClient(server_url, tenant.owner) as owner:
        assert all(p.status != "active" for p in owner.list_policies().data)
    # The admins' file sets its own price: the proposal carries exactly it.
    mine = tmp_path / "assets.json"
    mine.write_text(json.dumps(_registry("2999.5")))
    applied = runner.invoke(cli, [*base, "--assets", str(mine)])
    assert applied.exit_code == 0, applied.output
    answer = json.loads(applied.stdout)
    assert answer["status"] == "active"
    assert any("ETH (native, 18 decimals, 2999.5)" in line for line in answer["assets"])
    assert any("price keys" in line and "oracle" in line for line in answer["assets"])
    # A registry file that does not parse is refused before anything is sent.
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**_registry("1"), "max_price_age": 0}))
    bad = runner.invoke(cli, [*base, "--assets", str(broken)])
    assert bad.exit_code == 1
    assert "max_price_age" in bad.output


def test_policy_apply_shows_the_registry_the_server_built_and_signs_it_when_told(
    api: list[str], tmp_path: Path, server_url: str, tenant: Tenant
) -> None:
    runner = CliRunner()
    added = runner.invoke(
        cli,
        ["network", "add", "--name", "devnet-b", "--chain-id", "31338", "--native-symbol",
         "DEV", "--rpc-url", "http://127.0.0.1:9545", *api, "--json"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    asset = runner.invoke(cli, ["asset", "add", "--symbol", "DEV", "--network", "devnet-b", *api])
    assert asset.exit_code == 0, asset.output
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "format: shardvault.policy/v1\nversion: 1\nreference_currency: USD\n"
        "rules: [{name: allow-all, action: allow}]\n"
    )
    admin = _pem(Ed25519PrivateKey.generate(), tmp_path / "admin.pem")
    base = ["policy", "apply", str(policy), "--admin-key", f"admin={admin}", *api, "--json"]
    applied = runner.invoke(cli, base, input="y\n")
    assert applied.exit_code == 0, applied.output
    assert "devnet-b (ethereum chain id 31338, native coin DEV): DEV (native" in applied.output
    with ShardvaultClient(server_url, tenant.owner) as owner:
        active = [p for p in owner.list_policies().data if p.status == "active"]
    assert len(active) == 1
    assert active[0].bundle is not None
    registry = parse_bundle(active[0].bundle).assets
    assert registry is not None
    devnet = registry.network("devnet-b")
    assert devnet is not None
    assert (devnet.chain_id, devnet.native_symbol) == (31338, "DEV")


def test_prices_sign_submit_and_list(api: list[str], tmp_path: Path) -> None:
    runner = CliRunner()
    assets = tmp_path / "assets.json"
    assets.write_text(json.dumps(_registry("3000")))
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "format: shardvault.policy/v1\nversion: 1\nreference_currency: USD\n"
        "rules: [{name: allow-all, action: allow}]\n"
    )
    admin = _pem(Ed25519PrivateKey.generate(), tmp_path / "admin.pem")
    applied = runner.invoke(
        cli,
        ["policy", "apply", str(policy), "--admin-key", f"admin={admin}",
         "--assets", str(assets), *api, "--json"],
    )  # fmt: skip
    assert applied.exit_code == 0, applied.output
    key = _pem(ORACLE, tmp_path / "oracle.pem")
    now = int(time.time())
    signed = runner.invoke(
        cli,
        ["prices", "sign", "--key", str(key), "--signer", "oracle", "--asset", "hardhat/ETH",
         "--price", "3100.5", "--observed-at", str(now)],
    )  # fmt: skip
    assert signed.exit_code == 0, signed.output
    report = json.loads(signed.stdout)
    checked = verify_price_report(
        parse_price_report(report), parse_registry(_registry("3000")), currency="USD", now=now
    )
    assert (checked.network, checked.asset, checked.price_text) == ("hardhat", "ETH", "3100.5")
    report_file = tmp_path / "report.json"
    report_file.write_text(signed.stdout)
    submitted = runner.invoke(cli, ["prices", "submit", str(report_file), *api])
    assert submitted.exit_code == 0, submitted.output
    assert json.loads(submitted.stdout)["data"][0]["price"] == "3100.5"
    listed = runner.invoke(cli, ["prices", "list", *api])
    assert [r["signer"] for r in json.loads(listed.stdout)["data"]] == ["oracle"]
    # The same report again is not newer: one line on stderr, exit 1.
    again = runner.invoke(cli, ["prices", "submit", str(report_file), *api])
    assert again.exit_code == 1
    assert "only a newer one replaces it" in again.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--asset", "ETH"], "expected NETWORK/ID"),
        (["--asset", "hardhat/ETH", "--price", "1e3"], "decimal string"),
    ],
)
def test_prices_sign_refuses_bad_input_in_one_line(
    tmp_path: Path, args: list[str], words: str
) -> None:
    key = _pem(ORACLE, tmp_path / "oracle.pem")
    base = ["prices", "sign", "--key", str(key), "--signer", "oracle", "--price", "1"]
    result = CliRunner().invoke(cli, [*base, *args])
    assert result.exit_code == 1
    assert words in result.output


def test_prices_sign_refuses_a_key_that_is_not_a_price_key(tmp_path: Path) -> None:
    key = _pem(ec.generate_private_key(ec.SECP256K1()), tmp_path / "k1.pem")
    result = CliRunner().invoke(
        cli,
        ["prices", "sign", "--key", str(key), "--signer", "oracle", "--asset", "hardhat/ETH",
         "--price", "1"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Ed25519 or ECDSA on P-256" in result.output
