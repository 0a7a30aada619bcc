"""Fixtures of the Ethereum chain tests: the hardhat node lives in :mod:`.hardhat`."""

from tests.chains.ethereum.hardhat import hardhat_node

__all__ = ["hardhat_node"]
