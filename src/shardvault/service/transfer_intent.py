"""A transfer's intent: what approvers sign and every co-signer recomputes.

The intent names the workspace, the transaction, the network, the source, the
destination, the asset and the amount in base units, as a co-signer reads them from the
payload it signs (docs/cosigner.md, "Approvals over a transfer's intent"); its digest is
defined once, in :func:`shardvault.policy.intent.intent_digest`.
"""

from __future__ import annotations

from shardvault.chains.ethereum import parse_address, well_known
from shardvault.policy.intent import TransferIntent
from shardvault.policy.intent import intent_digest as policy_intent_digest
from shardvault.service.evm_networks import native_symbol_of
from shardvault.store.models_vaults import (
    Asset,
    AssetKind,
    Network,
    NetworkKind,
    Transaction,
    WalletAddress,
)


def intent_digest(
    *,
    workspace_id: str,
    transaction_id: str,
    network: str,
    source: str,
    destination: str,
    asset: str,
    amount_base_units: int,
) -> bytes:
    """The digest approvers sign (module docstring), defined once in
    :func:`shardvault.policy.intent.intent_digest`, which co-signers recompute."""
    return policy_intent_digest(
        TransferIntent(
            workspace_id=workspace_id,
            transaction_id=transaction_id,
            network=network,
            source=source,
            destination=destination,
            asset=asset,
            amount=amount_base_units,
        )
    )


def transfer_intent(
    row: Transaction, network: Network, asset: Asset, source: WalletAddress
) -> TransferIntent:
    """The intent of the transfer ``row`` (its digest is ``row.intent_digest``)."""
    return TransferIntent(
        workspace_id=row.workspace_id,
        transaction_id=row.id,
        network=intent_network(network),
        source=source.address,
        destination=row.destination,
        asset=intent_asset(network, asset),
        amount=int(row.amount_base_units),
    )


def intent_network(network: Network) -> str:
    """The network as a transfer's intent and its policy request name it: for a
    well-known EVM chain id, the table's name for it (what a co-signer reads from the
    payload, whatever the workspace calls it), else the workspace's name for it (the
    name the asset registry it proposes gives that chain id; Solana and Bitcoin payloads
    do not name their network, the co-signer is told it in the request metadata)."""
    if network.kind is NetworkKind.EVM:
        known = well_known(network.chain_id)
        if known is not None:
            return known.name
    return network.name


def intent_asset(network: Network, asset: Asset) -> str:
    """The asset as a transfer's intent and its policy request name it: an ERC-20 token
    by its checksummed contract address, a native asset by its symbol (an EVM network's
    native symbol, as the signed registry gives it to the co-signers)."""
    if network.kind is NetworkKind.EVM:
        if asset.kind is AssetKind.NATIVE:
            return native_symbol_of(network) or asset.symbol
        if asset.contract is not None:
            return parse_address(asset.contract).checksummed
    return asset.symbol
