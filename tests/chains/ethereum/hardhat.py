"""A hardhat 2 dev node started by the test suite (see ../shared/notes/ENVIRONMENT.md §3).

``hardhat_node`` is a session-scoped fixture: it writes a minimal ``hardhat.config.js``
(chain id 31337) into a temporary directory, starts ``./node_modules/.bin/hardhat node``
directly (not through npx, whose wrapper would orphan the node on SIGTERM) on 127.0.0.1
and a free port, polls ``eth_chainId`` until it answers, and SIGTERMs it at the end.
It skips only when node_modules lacks hardhat (``make test`` installs it first).
Other test packages import the fixture from here: ``from tests.chains.ethereum.hardhat
import hardhat_node``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
HARDHAT_BIN = REPO_ROOT / "node_modules" / ".bin" / "hardhat"
HARDHAT_CHAIN_ID = 31337

# The first account of hardhat's default mnemonic ("test test ... junk"), funded with
# 10000 ETH on every hardhat node. A well-known, test-only key.
TEST_ONLY_HARDHAT_FUNDED_KEY = bytes.fromhex(
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
)

_CONFIG = (
    "module.exports = { networks: { hardhat: { chainId: " + str(HARDHAT_CHAIN_ID) + " } } };\n"
)


@dataclass(frozen=True)
class HardhatNode:
    """A running node: its JSON-RPC URL and chain id."""

    url: str
    chain_id: int

    def rpc(self, method: str, params: list[object] | None = None) -> object:
        """A raw JSON-RPC call for test set-up (snapshots, mining)."""
        reply = httpx.post(
            self.url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []},
            timeout=10,
        ).json()
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_hardhat(workdir: Path) -> tuple[subprocess.Popen[bytes], HardhatNode]:
    """Start a hardhat node in ``workdir`` and wait until it answers (at most 30 s)."""
    (workdir / "hardhat.config.js").write_text(_CONFIG)
    # Hardhat refuses to run unless it resolves as a local install of the project it
    # runs in (HH12), so the scratch project links the repository's node_modules.
    (workdir / "node_modules").symlink_to(REPO_ROOT / "node_modules", target_is_directory=True)
    port = _free_port()
    env = dict(os.environ, HARDHAT_DISABLE_TELEMETRY_PROMPT="true")
    log = (workdir / "hardhat.log").open("wb")
    process = subprocess.Popen(
        [str(HARDHAT_BIN), "node", "--hostname", "127.0.0.1", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    node = HardhatNode(f"http://127.0.0.1:{port}", HARDHAT_CHAIN_ID)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"hardhat exited with {process.returncode}: {(workdir / 'hardhat.log').read_text()}"
            )
        try:
            if int(str(node.rpc("eth_chainId")), 16) == HARDHAT_CHAIN_ID:
                return process, node
        except (httpx.HTTPError, RuntimeError):
            time.sleep(0.1)
    stop_hardhat(process)
    raise RuntimeError("hardhat did not answer eth_chainId within 30 s")


def stop_hardhat(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the node and wait for it (SIGKILL after 10 s)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def hardhat_node() -> Iterator[HardhatNode]:
    """A hardhat node for the whole session, stopped at the end."""
    if not HARDHAT_BIN.exists():
        pytest.skip("hardhat is not installed: run `make node_modules/.installed` (npm install)")
    with tempfile.TemporaryDirectory(prefix="sv-hardhat-") as tmp:
        process, node = start_hardhat(Path(tmp))
        try:
            yield node
        finally:
            stop_hardhat(process)
