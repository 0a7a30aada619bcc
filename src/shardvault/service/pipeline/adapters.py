"""The chain adapters, chosen from the network's kind (data, not branches)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from shardvault.service.pipeline.bitcoin import BitcoinAdapter
from shardvault.service.pipeline.chain import ChainAdapter
from shardvault.service.pipeline.evm import EvmAdapter
from shardvault.service.pipeline.solana import SolanaAdapter
from shardvault.store.models_vaults import NetworkKind

ADAPTERS: Mapping[NetworkKind, ChainAdapter] = MappingProxyType(
    {
        NetworkKind.EVM: EvmAdapter(),
        NetworkKind.BITCOIN: BitcoinAdapter(),
        NetworkKind.SOLANA: SolanaAdapter(),
    }
)
"""One adapter per kind of network."""


def adapter_for(kind: NetworkKind) -> ChainAdapter:
    """The adapter of ``kind``'s networks."""
    return ADAPTERS[kind]
