"""The custody commands of the CLI against a live server (SQLite and PostgreSQL):
``vault create``, ``wallet create``, ``wallet address``, ``policy apply``, ``tx send``,
``tx show``, ``tx approve``, each with ``--json``; refused input prints one line and exits 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from fastapi import FastAPI

from shardvault.api import create_app
from shardvault.cli.main import cli
from shardvault.sdk import ShardvaultClient, generate_key_pair
from shardvault.service.pipeline import PipelineRuntime, PipelineWorker
from shardvault.service.platform import Platform
from tests.api.support import SwitchableApp, Tenant
from tests.chains.ethereum.hardhat import HardhatNode, hardhat_node
from tests.service.pipeline_support import ReusedKeygenBackend, fund, open_custody

__all__ = ["hardhat_node"]

RECIPIENT = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"


@pytest.fixture
def runtime(tmp_path: Path) -> PipelineRuntime:
    return PipelineRuntime(
        ReusedKeygenBackend(open_custody(tmp_path / "custody")), confirmation_poll_s=0.05
    )


@pytest.fixture
def url(
    platform: Platform, runtime: PipelineRuntime, _loopback: tuple[SwitchableApp, str]
) -> Iterator[str]:
    app: FastAPI = create_app(platform, pipeline_runtime=runtime)
    switch, base = _loopback
    switch.target = app
    try:
        yield base
    finally:
        switch.target = None


def _pem(key: Ed25519PrivateKey, path: Path) -> Path:
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return path


def _run(args: list[str], url: str, api_key: str, key_file: Path) -> dict[str, object]:
    result = CliRunner().invoke(
        cli,
        [*args, "--json", "--url", url, "--api-key", api_key, "--key-file", str(key_file)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(parsed, dict)
    return parsed


def test_vault_wallet_policy_and_transaction_commands(
    url: str,
    tenant: Tenant,
    platform: Platform,
    runtime: PipelineRuntime,
    hardhat_node: HardhatNode,
    tmp_path: Path,
) -> None:
    owner_pem = tmp_path / "owner.pem"
    approver_key = Ed25519PrivateKey.generate()
    admin_key = Ed25519PrivateKey.generate()
    with ShardvaultClient(url, tenant.owner) as owner:
        owner.configure_network(
            name="hardhat", kind="evm", chain_id=hardhat_node.chain_id, rpc_url=hardhat_node.url
        )
        owner.add_asset(symbol="ETH", network="hardhat")
        cli_private, cli_public = generate_key_pair("EdDSA")
        owner_pem.write_text(cli_private)
        owner_id = owner.create_api_key(
            user_id=tenant.owner_user_id, name="cli", public_key_pem=cli_public
        ).id
        private_pem, public_pem = generate_key_pair("EdDSA")
        user = owner.create_user(name="Carol", email="carol@acme.example", role="approver")
        carol = owner.create_api_key(user_id=user.id, name="k", public_key_pem=public_pem)
    carol_pem = tmp_path / "carol.pem"
    carol_pem.write_text(private_pem)

    vault = _run(["vault", "create", "--name", "cli-vault"], url, owner_id, owner_pem)
    wallet = _run(
        ["wallet", "create", "--vault", str(vault["id"]), "--asset", "ETH"],
        url,
        owner_id,
        owner_pem,
    )
    first = wallet["addresses"][0]  # type: ignore[index]
    second = _run(["wallet", "address", str(wallet["id"]), "--new"], url, owner_id, owner_pem)
    assert second["index"] == 1
    assert second["address"] != first["address"]
    fund(hardhat_node, first["address"])

    carol_public = approver_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        "format: shardvault.policy/v1\n"
        "version: 1\n"
        "reference_currency: USD\n"
        f"approvers: {{carol@acme.example: {{algorithm: ed25519, public_key: {carol_public}}}}}\n"
        "groups: {treasury: [carol@acme.example]}\n"
        "rules:\n"
        "  - name: hold\n"
        "    action: require_approvals\n"
        "    approvals: {groups: [{group: treasury, count: 1}], deadline: 1h}\n"
    )
    # The admins sign the asset registry too: hardhat and its ETH, as they wrote it.
    assets_file = tmp_path / "assets.yaml"
    assets_file.write_text(
        "format: shardvault.asset-registry/v1\n"
        "networks:\n"
        f"  - {{name: hardhat, chain: ethereum, chain_id: {hardhat_node.chain_id},\n"
        "     assets: [{id: ETH, native: true, decimals: 18}]}\n"
    )
    applied = _run(
        [
            "policy",
            "apply",
            str(policy_file),
            "--admin-key",
            f"admin={_pem(admin_key, tmp_path / 'admin.pem')}",
            # The hold rule's approvals depend on the initiator: the bundle lists the
            # server's API keys that may create transfers (the owner's), shown first.
            "--initiators-from-keys",
            "--yes",
            "--assets",
            str(assets_file),
        ],
        url,
        owner_id,
        owner_pem,
    )
    assert applied["status"] == "active"
    assert applied["version"] == 1

    sent = _run(
        ["tx", "send", "--wallet", str(wallet["id"]), "--to", RECIPIENT, "--amount", "0.1"],
        url,
        owner_id,
        owner_pem,
    )
    worker = PipelineWorker(platform, runtime)
    worker.drain(timeout_s=30)
    shown = _run(["tx", "show", str(sent["id"])], url, owner_id, owner_pem)
    assert shown["status"] == "pending_approval"
    approved = _run(
        [
            "tx",
            "approve",
            str(sent["id"]),
            "--approver",
            "carol@acme.example",
            "--approval-key",
            str(_pem(approver_key, tmp_path / "approval.pem")),
        ],
        url,
        carol.id,
        carol_pem,
    )
    assert approved["status"] == "approved"
    worker.drain(timeout_s=60)
    assert _run(["tx", "show", str(sent["id"])], url, owner_id, owner_pem)["status"] == "completed"

    # Refused input: one line on stderr, exit 1, nothing created.
    refused = CliRunner().invoke(
        cli,
        ["tx", "send", "--wallet", str(wallet["id"]), "--to", RECIPIENT.lower()[:-1],
         "--amount", "1", "--json", "--url", url, "--api-key", owner_id,
         "--key-file", str(owner_pem)],
    )  # fmt: skip
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: 400")
    assert refused.stderr.count("\n") == 1


def test_vault_create_draws_a_progress_bar_on_stderr(
    url: str, tenant: Tenant, tmp_path: Path
) -> None:
    owner_pem = tmp_path / "owner.pem"
    private_pem, public_pem = generate_key_pair("EdDSA")
    owner_pem.write_text(private_pem)
    with ShardvaultClient(url, tenant.owner) as owner:
        key_id = owner.create_api_key(
            user_id=tenant.owner_user_id, name="cli", public_key_pem=public_pem
        ).id
    result = CliRunner().invoke(
        cli,
        [
            "vault",
            "create",
            "--name",
            "barred",
            "--url",
            url,
            "--api-key",
            key_id,
            "--key-file",
            str(owner_pem),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "2-of-3 key generation..."
    assert lines[-1].startswith("2-of-3 key generation [" + "#" * 30 + "]")
    assert " done " in lines[-1]
    assert result.stdout.startswith("vault ")
