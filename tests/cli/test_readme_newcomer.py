"""The README's path to a first transfer on one's own server, run as written.

The test takes the fenced block under "Your own server: a first transfer, command by
command" from README.md and runs it with bash (``set -euo pipefail`` in front), so the
README cannot drift from the code. What differs from a newcomer's machine is given from
outside the block, never by editing a command: HOME is a scratch directory (the data
directory and co-signer home are ``~/.shardvault*``), the server's port and the CLI's
URL come from SHARDVAULT_PORT and SHARDVAULT_URL, ECDSA key generation uses the
TEST-ONLY primes fixture (SHARDVAULT_UNSAFE_TEST_ONLY_PRIMES), ``y`` answers the two
questions of ``policy apply``, and the one line that names the node,
``export RPC_URL=...``, names the session's hardhat node. The server the block starts
in the background, with its three co-signer processes, is stopped with the process group
the test started.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chains.ethereum.hardhat import HardhatNode, hardhat_node
from tests.cli.process_support import cosigner_pids
from tests.service.pipeline_support import TEST_ONLY_PRIMES
from tests.waiting import eventually

__all__ = ["hardhat_node"]

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "## Your own server: a first transfer, command by command"
NODE_LINE = "export RPC_URL=http://127.0.0.1:8545"


def readme_block() -> str:
    """The first ``sh`` block after :data:`HEADING` in README.md."""
    text = README.read_text()
    assert HEADING in text, "the README lost its newcomer section"
    section = text.split(HEADING, 1)[1]
    found = re.search(r"^```sh\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert found is not None, "no sh block under the newcomer heading"
    return found.group(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_block_is_every_step_of_the_path() -> None:
    block = readme_block()
    for step in (
        "shardvault init",
        "shardvault server",
        "shardvault network add",
        "shardvault asset add",
        "shardvault keys generate",
        "shardvault policy apply",
        "shardvault vault create",
        "shardvault wallet create",
        "shardvault tx send",
        "shardvault tx approve",
    ):
        assert step in block, step
    assert block.count(NODE_LINE) == 1


@pytest.mark.slow
def test_the_readme_path_reaches_a_mined_transfer(
    hardhat_node: HardhatNode, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir(mode=0o700)
    work.mkdir()
    script = tmp_path / "newcomer.sh"
    block = readme_block().replace(NODE_LINE, f"export RPC_URL={hardhat_node.url}")
    script.write_text("set -euo pipefail\n" + block)
    port = _free_port()
    venv_bin = str(Path(sys.executable).parent)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SHARDVAULT_") or key == "SHARDVAULT_NODE_MODULES"
    }
    env.update(
        HOME=str(home),
        PATH=f"{venv_bin}:{env.get('PATH', '/usr/bin:/bin')}",
        SHARDVAULT_PORT=str(port),
        SHARDVAULT_URL=f"http://127.0.0.1:{port}",
        SHARDVAULT_UNSAFE_TEST_ONLY_PRIMES=str(TEST_ONLY_PRIMES),
    )
    output = tmp_path / "output.txt"
    with output.open("wb") as out:
        process = subprocess.Popen(
            ["bash", str(script)],
            cwd=work,
            env=env,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            process.communicate(input=b"y\ny\n", timeout=300)
        finally:
            # The server the block left running (and its co-signers) are in the
            # process group this test started.
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            process.wait(timeout=30)
    shown = output.read_text(errors="replace")
    cosigner_home = home / ".shardvault-cosigners"
    assert eventually(lambda: cosigner_pids(cosigner_home) == [], timeout=30), shown[-3000:]
    assert process.returncode == 0, shown[-5000:]
    # policy apply showed what the admin signs: the network, its coin and the initiators.
    assert "hardhat (ethereum chain id 31337): ETH (native, 18 decimals, 3000)" in shown
    assert "the bundle lists these initiator keys" in shown
    # The approval was given on the transfer Carol's client showed.
    assert "approving transaction" in shown
    last = shown.strip().splitlines()[-3:]
    status = next(line for line in last if line.startswith("transaction "))
    assert status.endswith(": completed"), shown[-3000:]
    tx_hash = re.search(r"tx hash: 0x([0-9a-f]{64})", shown)
    assert tx_hash is not None
    receipt = hardhat_node.rpc("eth_getTransactionReceipt", ["0x" + tx_hash.group(1)])
    assert isinstance(receipt, dict)
    assert receipt["status"] == "0x1"
    wallet = json.loads((work / "wallet.json").read_text())
    assert receipt["from"].lower() == wallet["addresses"][0]["address"].lower()
    # Every private key the block made is its owner's alone.
    for name in ("owner.pem", "admin.pem", "carol-approval.pem", "carol-api.pem"):
        assert (work / name).stat().st_mode & 0o777 == 0o600, name
