"""The asset registry the server proposes, and the policy's view of a transfer through it.

A policy bundle carries an asset registry (:mod:`shardvault.policy.registry`): the
networks, assets, decimals and static prices its co-signers take as signed facts. When
the admins give none with a proposal, the server builds one from the workspace's
networks and assets tables (:func:`registry_document`), named the way transfer intents
name them (:func:`~shardvault.service.transfer_intent.intent_network`); the admins see it
in the bundle they sign (``shardvault policy apply --assets``) and nothing in it counts
until they have.

The server evaluates the policy itself before asking the co-signers, on the same view
they will form: :func:`policy_view` resolves a transfer's network and asset through the
active bundle's registry, so a rule on ``USDC`` or on ``solana-devnet`` decides the same
way here and at every co-signer.
"""

from __future__ import annotations

import dataclasses

from shardvault.chains.ethereum import well_known
from shardvault.policy import (
    AssetRegistry,
    Chain,
    TransactionRequest,
    UnknownNetworkError,
    parse_registry,
    payload_asset,
)
from shardvault.policy.registry import REGISTRY_FORMAT
from shardvault.policy.request import Asset as PolicyAsset
from shardvault.service.evm_networks import native_symbol_of
from shardvault.service.transfer_intent import intent_network
from shardvault.service.uow import UnitOfWork
from shardvault.store.models_vaults import Asset, AssetKind, Network, NetworkKind
from shardvault.store.repositories_vaults import AssetRepository, NetworkRepository

CHAIN_OF: dict[NetworkKind, Chain] = {
    NetworkKind.EVM: Chain.ETHEREUM,
    NetworkKind.SOLANA: Chain.SOLANA,
    NetworkKind.BITCOIN: Chain.BITCOIN,
}
"""The registry's chain family of each kind of workspace network."""


def registry_document(uow: UnitOfWork, workspace_id: str) -> dict[str, object] | None:
    """The registry document of the workspace's tables: each network that has assets,
    under its intent name (an EVM chain id the well-known table does not list with its
    native symbol), with its assets by symbol, decimals, contract and static price;
    ``None`` when the workspace has no asset."""
    networks = {n.id: n for n in NetworkRepository(uow.session, workspace_id).list()}
    listed: dict[str, list[dict[str, object]]] = {}
    for asset in AssetRepository(uow.session, workspace_id).list():
        listed.setdefault(asset.network_id, []).append(_asset_entry(asset))
    if not listed:
        return None
    entries: list[dict[str, object]] = []
    for network_id, assets in listed.items():
        network = networks[network_id]
        entry: dict[str, object] = {
            "name": intent_network(network),
            "chain": CHAIN_OF[network.kind].value,
            "assets": assets,
        }
        if network.chain_id is not None:
            entry["chain_id"] = network.chain_id
            if well_known(network.chain_id) is None:
                # Written for the chain ids the table does not know (the registry
                # requires it there, and keeps the table's symbol for the others).
                entry["native_symbol"] = native_symbol_of(network) or "ETH"
        entries.append(entry)
    return {"format": REGISTRY_FORMAT, "networks": entries}


def _asset_entry(asset: Asset) -> dict[str, object]:
    entry: dict[str, object] = {"id": asset.symbol, "decimals": asset.decimals}
    if asset.kind is AssetKind.NATIVE:
        entry["native"] = True
    else:
        entry["contract"] = asset.contract
    if asset.price is not None:
        entry["price"] = asset.price
    return entry


def registry_from_tables(uow: UnitOfWork, workspace_id: str) -> AssetRegistry | None:
    """:func:`registry_document`, read as the co-signers will read it.

    Raises:
        PolicyDocumentError: the tables do not make a valid registry (two Solana or two
            Bitcoin networks, a Bitcoin network not named after one, two networks of one
            chain id), naming the path at fault.
    """
    document = registry_document(uow, workspace_id)
    return None if document is None else parse_registry(document)


def policy_view(
    registry: AssetRegistry | None, network: Network, asset: Asset, request: TransactionRequest
) -> TransactionRequest:
    """``request`` (a transfer of ``asset`` on ``network`` as the pipeline built it) with
    the network, asset id and decimals the signed ``registry`` gives them, as every
    co-signer will see them.

    Raises:
        UnknownNetworkError, UnknownAssetError: the registry does not list the network or
            the asset, or names this Solana or Bitcoin network otherwise than the
            workspace does (the co-signers would refuse the transfer).
    """
    chain = CHAIN_OF[network.kind]
    resolved = payload_asset(
        registry,
        chain,
        chain_id=network.chain_id,
        contract=None if asset.kind is AssetKind.NATIVE else asset.contract,
    )
    named = intent_network(network)
    if resolved.network != named:
        source = "no signed asset registry: the default" if registry is None else "the signed"
        raise UnknownNetworkError(
            f"{source} {chain.value} network is {resolved.network!r}, not {named!r}"
        )
    return dataclasses.replace(
        request,
        network=resolved.network,
        asset=PolicyAsset(resolved.id, resolved.decimals),
    )
