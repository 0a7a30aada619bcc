"""Two EVM chains at once, the second added at run time through the CLI and accepted by
the co-signers only once the admin quorum has signed a policy bundle whose asset
registry lists it (issue #20, "EVM networks as data").

Two hardhat nodes run side by side: chain 31337 (well known: ``hardhat``) and chain
31338, which no table in the code knows. The server is wired as ``shardvault server
--signer cosigners`` wires it (:func:`shardvault.cli._pipeline_options.open_pipeline`):
the API on loopback, a pipeline worker, and the workspace's three co-signers as real
``shardvault cosigner run`` processes. Everything the operator does goes through the
CLI; the admin set is two admins with a quorum of two.

1. hardhat (31337) is set up, the policy signed by both admins, a 2-of-3 vault made; a
   transfer on it is mined on chain 31337 (and not on 31338).
2. ``network add`` registers chain 31338 as ``devnet-b`` while the server runs. A
   transfer on it is blocked by the server, naming the chain id: its own evaluation
   reads the same signed registry as the co-signers.
3. The server's word is not enough: with that check of the server's taken out (the
   test replaces ``payload_asset`` where the server's evaluation reads it, as a
   compromised server would skip it), the transfer reaches the co-signers, and the one
   asked refuses it at every attempt (check ``network``: chain id 31338 is not in the
   signed asset registry); nothing is signed, nothing reaches chain 31338.
4. A bundle listing devnet-b signed by one admin (under the quorum) is not activated,
   and the co-signers refuse the transfer still.
5. Both admins sign it: a transfer on devnet-b is signed by the co-signers and mined on
   chain 31338 (its sender the devnet-b wallet's address; chain 31337 never saw it), and
   chain 31337 still works.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from shardvault.api import create_app
from shardvault.cli._pipeline_options import PipelineSetup, open_pipeline
from shardvault.cli.main import cli
from shardvault.policy import payload_asset
from shardvault.policy.registry import ResolvedAsset
from shardvault.service import asset_registry
from shardvault.service.pipeline import PipelineWorker
from shardvault.service.platform import Platform
from shardvault.store import Database, migrate
from tests.api.support import Tenant, bootstrap, live_server, make_platform
from tests.chains.ethereum.hardhat import (
    SECOND_CHAIN_ID,
    HardhatNode,
    hardhat_node,
    second_hardhat_node,
)
from tests.service.pipeline_support import TEST_ONLY_PRIMES

__all__ = ["hardhat_node", "second_hardhat_node"]

RECIPIENT = "0x976EA74026E726554dB657fA54763abd0C3a0aa9"
POLICY = (
    "format: shardvault.policy/v1\nversion: VERSION\nreference_currency: USD\nrules:\n"
    "  - {name: keygen, when: {operation: [key_generation]}, action: allow}\n"
    "  - {name: transfers, when: {operation: [transfer]}, action: allow}\n"
)


class Server:
    """The API, a pipeline worker and the embedded co-signers, on loopback."""

    def __init__(self, platform: Platform, root: Path) -> None:
        home = root / "cosigners"
        home.mkdir(mode=0o700)
        where: dict[str, str] = {}
        self.setup: PipelineSetup = open_pipeline(
            root / "data",
            TEST_ONLY_PRIMES,
            signer="cosigners",
            platform=platform,
            coordinator_url=lambda: where["url"],
            home=home,
        )
        runtime = self.setup.runtime
        assert runtime is not None
        runtime.confirmation_poll_s = 0.1
        runtime.broadcast_retry_s = 0.2  # a refused signature is tried again soon
        self.runtime = runtime
        self.app = create_app(
            platform,
            pipeline_runtime=runtime,
            signer_mode=self.setup.mode,
            extra_routers=self.setup.routers,
            cosigner_status=self.setup.status,
        )
        self.home = home
        self._where = where
        self._stop = threading.Event()
        self._worker = threading.Thread(
            target=PipelineWorker(platform, runtime).run, args=(self._stop,), daemon=True
        )

    def serve(self) -> Iterator[str]:
        with live_server(self.app) as url:
            self._where["url"] = url
            self._worker.start()
            try:
                yield url
            finally:
                self._stop.set()
                self._worker.join(timeout=30)
                self.setup.shutting_down()
        self.setup.close()
        self.runtime.close()


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    url = f"sqlite:///{tmp_path / 'shardvault.db'}"
    migrate(url)
    database = Database(url)
    try:
        yield make_platform(database)
    finally:
        database.dispose()


@pytest.fixture
def server(platform: Platform, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    running = Server(platform, tmp_path)
    for url in running.serve():
        yield running, url


class Cli:
    """The ``shardvault`` command line against the server, as the workspace's owner."""

    def __init__(self, url: str, tenant: Tenant, root: Path) -> None:
        key_file = root / "owner.pem"
        key_file.write_bytes(
            tenant.owner.private_key.private_bytes(
                Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
            )
        )
        self.api = ["--url", url, "--api-key", tenant.owner.api_key_id, "--key-file", str(key_file)]
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True, local: bool = False) -> dict[str, object]:
        result = self.runner.invoke(cli, [*args, *([] if local else self.api), "--json"])
        if ok:
            assert result.exit_code == 0, result.output
            answer: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
            return answer
        assert result.exit_code == 1, result.output
        return {"error": result.output}

    def send(self, wallet: str, amount: str) -> dict[str, object]:
        return self("tx", "send", "--wallet", wallet, "--to", RECIPIENT, "--amount", amount,
                    "--wait", "--timeout", "90")  # fmt: skip


def _mined(node: HardhatNode, tx_hash: object) -> dict[str, object] | None:
    found = node.rpc("eth_getTransactionByHash", [f"0x{tx_hash}"])
    return found if isinstance(found, dict) else None


def _nonce(node: HardhatNode, address: str) -> int:
    return int(str(node.rpc("eth_getTransactionCount", [address, "latest"])), 16)


@pytest.mark.slow
def test_a_second_chain_added_at_run_time_is_signed_for_only_once_the_quorum_lists_it(
    server: tuple[Server, str],
    platform: Platform,
    hardhat_node: HardhatNode,
    second_hardhat_node: HardhatNode,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    running, url = server
    tenant = bootstrap(platform, "acme")
    run = Cli(url, tenant, tmp_path)
    assert (hardhat_node.chain_id, second_hardhat_node.chain_id) == (31337, SECOND_CHAIN_ID)

    # 1. Chain 31337, a policy signed by both admins, a vault; a transfer mined there.
    admins = {}
    for name in ("admin-1", "admin-2"):
        admins[name] = run("keys", "generate", "--out", str(tmp_path / f"{name}.pem"), local=True)
    admin_set = tmp_path / "admins.json"
    admin_set.write_text(json.dumps({"quorum": 2, "members": [
        {"id": name, "algorithm": "ed25519", "public_key": made["public_key"]}
        for name, made in admins.items()
    ]}))  # fmt: skip

    def apply(version: int, *signers: str, ok: bool = True) -> dict[str, object]:
        policy = tmp_path / f"policy-{version}.yaml"
        policy.write_text(POLICY.replace("VERSION", str(version)))
        keys = [f"--admin-key={n}={tmp_path / f'{n}.pem'}" for n in signers]
        return run("policy", "apply", str(policy), "--admins", str(admin_set), *keys, "--yes",
                   ok=ok)  # fmt: skip

    run("network", "add", "--name", "hardhat", "--chain-id", "31337", "--rpc-url",
        hardhat_node.url)  # fmt: skip
    run("asset", "add", "--symbol", "ETH", "--network", "hardhat")
    first = apply(1, "admin-1", "admin-2")
    assert first["status"] == "active"
    vault = run("vault", "create", "--name", "treasury")
    eth = run("wallet", "create", "--vault", str(vault["id"]), "--asset", "ETH")
    eth_address = str(eth["addresses"][0]["address"])  # type: ignore[index]
    hardhat_node.fund(eth_address, 10**19)
    sent = run.send(str(eth["id"]), "0.5")
    assert sent["status"] == "completed", sent
    assert _mined(hardhat_node, sent["tx_hash"]) is not None
    assert _mined(second_hardhat_node, sent["tx_hash"]) is None

    # 2. Chain 31338 added while the server runs; the server blocks a transfer on it.
    added = run("network", "add", "--name", "devnet-b", "--chain-id", str(SECOND_CHAIN_ID),
                "--rpc-url", second_hardhat_node.url, "--confirmations", "1")  # fmt: skip
    assert (added["chain_id"], added["native_symbol"]) == (SECOND_CHAIN_ID, "ETH")
    run("asset", "add", "--symbol", "ETH-B", "--network", "devnet-b")
    devnet = run("wallet", "create", "--vault", str(vault["id"]), "--asset", "ETH-B")
    devnet_address = str(devnet["addresses"][0]["address"])  # type: ignore[index]
    second_hardhat_node.fund(devnet_address, 10**19)
    blocked = run.send(str(devnet["id"]), "0.25")
    assert blocked["status"] == "blocked"
    assert "chain id 31338 is not in the signed asset registry" in str(blocked["status_reason"])

    # 3. Without the server's check, the co-signers refuse it themselves.
    def the_servers_word(
        registry: object, chain: object, *, chain_id: int | None = None, contract: object = None
    ) -> ResolvedAsset:
        if chain_id == SECOND_CHAIN_ID:
            return ResolvedAsset("devnet-b", "ETH-B", 18, "ETH")
        return unpatched(registry, chain, chain_id=chain_id, contract=contract)  # type: ignore[arg-type]

    unpatched = payload_asset
    caplog.set_level(logging.WARNING, logger="shardvault.pipeline")

    def refused_by_the_cosigners() -> None:
        caplog.clear()
        with monkeypatch.context() as patch:
            patch.setattr(asset_registry, "payload_asset", the_servers_word)
            failed = run.send(str(devnet["id"]), "0.25")
        assert failed["status"] == "failed", failed
        assert failed["tx_hash"] is None
        refusals = [r.getMessage() for r in caplog.records if "attempt" in r.getMessage()]
        assert len(refusals) == 3, refusals
        refusing: set[str] = set()
        for refusal in refusals:
            # Each attempt stops at the first co-signer's refusal: its own check of the
            # payload's chain id against the registry it holds, signed by the quorum.
            found = re.findall(
                r"co-signer (\d) refused check=network reason=chain id 31338 is not in the "
                r"signed asset registry",
                refusal,
            )
            assert found, refusal
            refusing.update(found)
        for party in refusing:
            # The refusal is in that co-signer process's own log too.
            log = next(running.home.glob(f"*/party-{party}/cosigner.log")).read_text()
            assert "request refused" in log
        assert _nonce(second_hardhat_node, devnet_address) == 0

    refused_by_the_cosigners()

    # 4. One admin's signature is not the quorum's: nothing changes for the co-signers.
    under = apply(2, "admin-1", ok=False)
    assert "quorum" in str(under["error"])
    refused_by_the_cosigners()

    # 5. Both admins sign: the co-signers sign for chain 31338, and 31337 still works.
    second = apply(2, "admin-1", "admin-2")
    assert second["status"] == "active"
    listed = second["assets"]
    assert isinstance(listed, list)
    assert any(str(line).startswith("devnet-b (ethereum chain id 31338, native coin ETH)")
               for line in listed)  # fmt: skip
    done = run.send(str(devnet["id"]), "0.25")
    assert done["status"] == "completed", done
    mined = _mined(second_hardhat_node, done["tx_hash"])
    assert mined is not None
    assert int(str(mined["chainId"]), 16) == SECOND_CHAIN_ID
    assert str(mined["from"]).lower() == devnet_address.lower()
    assert _mined(hardhat_node, done["tx_hash"]) is None
    again = run.send(str(eth["id"]), "0.5")
    assert again["status"] == "completed", again
    assert _mined(hardhat_node, again["tx_hash"]) is not None
    # Three real co-signer processes did all of it.
    assert len(list(running.home.glob("*/party-*/cosigner.log"))) == 3
