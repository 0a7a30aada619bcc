"""Fixtures of the compromised-server suite: the co-signer processes and a hardhat chain,
made once per module (each module installs the policy its attacks need)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shardvault.devchain import HardhatNode, start_hardhat, stop_hardhat
from tests.compromised.harness import CompromisedServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CompromisedServer]:
    harness = CompromisedServer(tmp_path_factory.mktemp("compromised"))
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HardhatNode]:
    process, node = start_hardhat(tmp_path_factory.mktemp("hardhat"))
    try:
        yield node
    finally:
        stop_hardhat(process)
