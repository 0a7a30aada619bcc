"""``shardvault network add|list`` and ``shardvault asset add|list``: the chains a
workspace uses and the assets on them, through the API (the SDK signs every request).

An EVM network is any chain id, with its nodes (``--rpc-url``, repeatable: tried in
order when one cannot be reached), an optional private ``--broadcast-url`` (the only
endpoint given signed transactions), its native symbol, confirmation depth and fee
model. The co-signers accept it once the admin quorum has signed a policy bundle whose
asset registry lists it (``shardvault policy apply``; docs/transactions.md, "Networks
and their nodes").
"""

from pathlib import Path

import click

from shardvault.cli._output import emit_json
from shardvault.cli.workspace import api_call, api_options
from shardvault.sdk.custody import Asset, Network


@click.group(name="network")
def group() -> None:
    """Networks: EVM chains (any chain id), Bitcoin, Solana."""


def _confirmations(count: int) -> str:
    return f"{count} confirmation" + ("" if count == 1 else "s")


def _network_line(network: Network) -> str:
    if network.kind != "evm":
        return f"{network.name}: {network.kind}, nodes {', '.join(network.rpc_urls) or 'none'}"
    private = f", private broadcast {network.broadcast_url}" if network.broadcast_url else ""
    return (
        f"{network.name}: evm chain id {network.chain_id}, native {network.native_symbol}, "
        f"{_confirmations(network.required_confirmations)}, {network.fee_model}, nodes "
        f"{', '.join(network.rpc_urls) or 'none'}{private}"
    )


@group.command(name="add")
@click.option("--name", required=True, help="The network's name (lowercase, digits, . _ -).")
@click.option(
    "--kind", type=click.Choice(["evm", "bitcoin", "solana"]), default="evm", show_default=True
)
@click.option("--chain-id", type=int, default=None, help="An EVM network's EIP-155 chain id.")
@click.option(
    "--rpc-url",
    "rpc_urls",
    multiple=True,
    help="A node's JSON-RPC URL (repeatable for an EVM network: tried in order).",
)
@click.option(
    "--broadcast-url",
    default=None,
    help="A private endpoint that alone receives signed EVM transactions.",
)
@click.option(
    "--native-symbol",
    default=None,
    help="An EVM network's native coin (default: a well-known chain id's, else ETH).",
)
@click.option(
    "--confirmations",
    "required_confirmations",
    type=click.IntRange(1, 1000),
    default=1,
    show_default=True,
    help="Blocks on top of a transfer's before it is completed.",
)
@click.option(
    "--fee-model",
    type=click.Choice(["eip1559", "legacy"]),
    default=None,
    help="An EVM network's fee model (eip1559; legacy is refused: not supported).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@api_options
def add(
    name: str,
    kind: str,
    chain_id: int | None,
    rpc_urls: tuple[str, ...],
    broadcast_url: str | None,
    native_symbol: str | None,
    required_confirmations: int,
    fee_model: str | None,
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """Add a network (owners and admins)."""
    network = api_call(
        url,
        api_key,
        key_file,
        lambda client: client.configure_network(
            name=name,
            kind=kind,
            chain_id=chain_id,
            rpc_urls=list(rpc_urls) or None,
            broadcast_url=broadcast_url,
            native_symbol=native_symbol,
            required_confirmations=required_confirmations,
            fee_model=fee_model,
        ),
    )
    if as_json:
        emit_json(network.model_dump(mode="json"))
    else:
        click.echo(f"network {network.id} {_network_line(network)}")


@group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@api_options
def list_networks(as_json: bool, url: str, api_key: str | None, key_file: Path | None) -> None:
    """The workspace's networks."""
    networks = api_call(url, api_key, key_file, lambda client: client.list_networks())
    if as_json:
        emit_json({"data": [n.model_dump(mode="json") for n in networks]})
        return
    for network in networks:
        click.echo(_network_line(network))


@click.group(name="asset")
def asset_group() -> None:
    """Assets: a network's native coin or an ERC-20 token on it."""


def _asset_line(asset: Asset) -> str:
    what = "native" if asset.kind == "native" else f"{asset.kind} {asset.contract}"
    price = f", static price {asset.price}" if asset.price is not None else ""
    return f"{asset.symbol} on {asset.network}: {what}, {asset.decimals} decimals{price}"


@asset_group.command(name="add")
@click.option("--symbol", required=True, help="The asset's symbol in this workspace (unique).")
@click.option("--network", required=True, help="The network's name.")
@click.option("--kind", type=click.Choice(["native", "erc20"]), default="native", show_default=True)
@click.option("--contract", default=None, help="An ERC-20 token's contract address.")
@click.option("--decimals", type=int, default=None, help="An ERC-20 token's decimals.")
@click.option(
    "--price",
    default=None,
    help="A static price of one unit in the policy's currency (signed with the next policy).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@api_options
def asset_add(
    symbol: str,
    network: str,
    kind: str,
    contract: str | None,
    decimals: int | None,
    price: str | None,
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """Add an asset (owners and admins)."""
    asset = api_call(
        url,
        api_key,
        key_file,
        lambda client: client.add_asset(
            symbol=symbol,
            network=network,
            kind=kind,
            contract=contract,
            decimals=decimals,
            price=price,
        ),
    )
    if as_json:
        emit_json(asset.model_dump(mode="json"))
    else:
        click.echo(f"asset {asset.id} {_asset_line(asset)}")


@asset_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@api_options
def asset_list(as_json: bool, url: str, api_key: str | None, key_file: Path | None) -> None:
    """The workspace's assets."""
    assets = api_call(url, api_key, key_file, lambda client: client.list_assets())
    if as_json:
        emit_json({"data": [a.model_dump(mode="json") for a in assets]})
        return
    for asset in assets:
        click.echo(_asset_line(asset))
