"""Well-known EVM networks by chain id (EIP-155 chain ids, as listed in
ethereum-lists/chains), with their native asset's symbol.

The table is a set of defaults, not a limit: any valid chain id can be a network, once
the admin quorum lists it in the signed asset registry (:mod:`shardvault.policy.registry`).
What the table fixes is the *name* of a well-known chain id (chain 1 is ``ethereum``,
whoever registers it) and its native symbol, and, where no signed registry exists, which
chain ids co-signers accept at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from shardvault.chains.errors import UnsupportedError
from shardvault.chains.ethereum.models import check_chain_id


@dataclass(frozen=True, slots=True)
class EvmNetwork:
    """An EVM chain: its EIP-155 id, a name and its native asset (18 decimals on all)."""

    chain_id: int
    name: str
    native_symbol: str = "ETH"


KNOWN_NETWORKS: Mapping[int, EvmNetwork] = MappingProxyType(
    {
        n.chain_id: n
        for n in (
            EvmNetwork(1, "ethereum"),
            EvmNetwork(11155111, "sepolia"),
            EvmNetwork(17000, "holesky"),
            EvmNetwork(560048, "hoodi"),
            EvmNetwork(10, "optimism"),
            EvmNetwork(8453, "base"),
            EvmNetwork(42161, "arbitrum-one"),
            EvmNetwork(137, "polygon", "POL"),
            EvmNetwork(56, "bnb-smart-chain", "BNB"),
            EvmNetwork(43114, "avalanche-c", "AVAX"),
            EvmNetwork(31337, "hardhat"),
            EvmNetwork(1337, "local-dev"),
            EvmNetwork(131277322940537, "eth-tester"),
        )
    }
)
"""Networks recognised by default."""


def well_known(chain_id: int | None) -> EvmNetwork | None:
    """The well-known network of ``chain_id``, if the table lists it."""
    return None if chain_id is None else KNOWN_NETWORKS.get(chain_id)


WELL_KNOWN_NAMES = frozenset(network.name for network in KNOWN_NETWORKS.values())
"""The names of the well-known chain ids, which no other chain id may take."""


def network_for(chain_id: int, networks: Mapping[int, EvmNetwork] = KNOWN_NETWORKS) -> EvmNetwork:
    """Look up a chain id in ``networks``.

    Raises:
        InvalidFieldError: the chain id is not a valid EIP-155 id.
        UnsupportedError: the chain id is valid but not in ``networks``.
    """
    check_chain_id(chain_id)
    network = networks.get(chain_id)
    if network is None:
        raise UnsupportedError(f"{chain_id} is not a known EVM network", field="chain_id")
    return network
