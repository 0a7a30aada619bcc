"""A hardhat 2 dev node started by the test suite (see docs/environment.md, "hardhat"),
through :mod:`shardvault.devchain` (which ``make demo`` uses too).

``hardhat_node`` is a session-scoped fixture: it writes a minimal ``hardhat.config.js``
(chain id 31337; ``second_hardhat_node``: 31338, running beside it) into a temporary
directory, starts ``./node_modules/.bin/hardhat node`` directly (not through npx, whose
wrapper would orphan the node on SIGTERM) on 127.0.0.1 and a free port, polls
``eth_chainId`` until it answers, and SIGTERMs it at the end. It skips only when
node_modules lacks hardhat (``make test`` installs it first).
Other test packages import the fixture from here: ``from tests.chains.ethereum.hardhat
import hardhat_node``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shardvault.devchain import (
    HARDHAT_BIN,
    HARDHAT_CHAIN_ID,
    HardhatNode,
    start_hardhat,
    stop_hardhat,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
__all__ = [
    "HARDHAT_CHAIN_ID",
    "SECOND_CHAIN_ID",
    "TEST_ONLY_HARDHAT_FUNDED_KEY",
    "HardhatNode",
    "hardhat_node",
    "second_hardhat_node",
    "start_hardhat",
    "stop_hardhat",
]

# The first account of hardhat's default mnemonic ("test test ... junk"), funded with
# 10000 ETH on every hardhat node. A well-known, test-only key.
TEST_ONLY_HARDHAT_FUNDED_KEY = bytes.fromhex(
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
)


SECOND_CHAIN_ID = 31338
"""The chain id of :func:`second_hardhat_node`: one the well-known table does not list."""


def _node(chain_id: int) -> Iterator[HardhatNode]:
    if not HARDHAT_BIN.exists():
        pytest.skip("hardhat is not installed: run `make node_modules/.installed` (npm install)")
    with tempfile.TemporaryDirectory(prefix="sv-hardhat-") as tmp:
        process, node = start_hardhat(Path(tmp), chain_id=chain_id)
        try:
            yield node
        finally:
            stop_hardhat(process)


@pytest.fixture(scope="session")
def hardhat_node() -> Iterator[HardhatNode]:
    """A hardhat node for the whole session, stopped at the end."""
    yield from _node(HARDHAT_CHAIN_ID)


@pytest.fixture(scope="session")
def second_hardhat_node() -> Iterator[HardhatNode]:
    """A second hardhat node, of chain id :data:`SECOND_CHAIN_ID`, beside the first (the
    same fixture started again: its own process, port and chain)."""
    yield from _node(SECOND_CHAIN_ID)
