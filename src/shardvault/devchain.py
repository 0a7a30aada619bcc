"""A local hardhat 2 development chain, for ``make demo`` and the test suite.

:func:`start_hardhat` writes a minimal ``hardhat.config.js`` (chain id 31337, or the one
given: two nodes of different chain ids can run at once) into a scratch directory, links
the repository's ``node_modules`` there (hardhat refuses to run unless it resolves as a
local install of the project it runs in, error HH12), starts
``node_modules/.bin/hardhat node`` directly (npx's wrapper would orphan the node on
SIGTERM) on 127.0.0.1 and a free port, and polls ``eth_chainId`` until it answers.
:func:`stop_hardhat` stops it. ``make test`` and ``make demo`` install hardhat with npm
first (package.json pins it). Development and tests only: the node's accounts are
hardhat's well-known, publicly known keys.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The source checkout (``src/shardvault/devchain.py`` lives two levels below it)."""

NODE_MODULES = Path(os.environ.get("SHARDVAULT_NODE_MODULES", REPO_ROOT / "node_modules"))
HARDHAT_BIN = NODE_MODULES / ".bin" / "hardhat"
HARDHAT_CHAIN_ID = 31337


def _config(chain_id: int) -> str:
    return "module.exports = { networks: { hardhat: { chainId: " + str(chain_id) + " } } };\n"


class DevChainError(RuntimeError):
    """The development chain could not be started or answered an error."""


@dataclass(frozen=True)
class HardhatNode:
    """A running node: its JSON-RPC URL and chain id."""

    url: str
    chain_id: int

    def rpc(self, method: str, params: list[object] | None = None) -> object:
        """A raw JSON-RPC call (set-up, snapshots, mining, dev-account transfers)."""
        reply = httpx.post(
            self.url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []},
            timeout=10,
        ).json()
        if "error" in reply:
            raise DevChainError(f"{method}: {reply['error']}")
        return reply["result"]

    def fund(self, address: str, wei: int) -> str:
        """Send ``wei`` from hardhat's first (unlocked, publicly known) dev account to
        ``address``; answers the transaction hash once it is mined (automine)."""
        accounts = self.rpc("eth_accounts")
        assert isinstance(accounts, list)
        tx_hash = self.rpc(
            "eth_sendTransaction", [{"from": accounts[0], "to": address, "value": hex(wei)}]
        )
        if self.rpc("eth_getTransactionReceipt", [tx_hash]) is None:
            raise DevChainError("the funding transaction was not mined")
        return str(tx_hash)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_hardhat(
    workdir: Path, timeout: float = 30.0, chain_id: int = HARDHAT_CHAIN_ID
) -> tuple[subprocess.Popen[bytes], HardhatNode]:
    """Start a hardhat node of ``chain_id`` in ``workdir`` and wait until it answers.

    Raises:
        DevChainError: hardhat is not installed, exited, or did not answer in time.
    """
    if not HARDHAT_BIN.exists():
        raise DevChainError(f"hardhat is not installed ({HARDHAT_BIN}): run npm install")
    (workdir / "hardhat.config.js").write_text(_config(chain_id))
    (workdir / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    port = _free_port()
    env = dict(os.environ, HARDHAT_DISABLE_TELEMETRY_PROMPT="true")
    log = (workdir / "hardhat.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 (our own command)
        [str(HARDHAT_BIN), "node", "--hostname", "127.0.0.1", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    node = HardhatNode(f"http://127.0.0.1:{port}", chain_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DevChainError(
                f"hardhat exited with {process.returncode}: {(workdir / 'hardhat.log').read_text()}"
            )
        try:
            if int(str(node.rpc("eth_chainId")), 16) == chain_id:
                return process, node
        except (httpx.HTTPError, DevChainError):
            time.sleep(0.1)
    stop_hardhat(process)
    raise DevChainError(f"hardhat did not answer eth_chainId within {timeout:.0f} s")


def stop_hardhat(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the node and wait for it (SIGKILL after 10 s)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
