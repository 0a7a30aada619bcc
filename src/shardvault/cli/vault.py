"""``shardvault vault`` and ``shardvault wallet``: MPC vaults, wallets and addresses,
through the API (the SDK signs every request)."""

from pathlib import Path

import click

from shardvault.cli._output import emit_json, fail_on, progress_bar
from shardvault.cli.workspace import api_options, sdk_client
from shardvault.errors import ShardvaultError
from shardvault.sdk.custody import VaultCreation


@click.group(name="vault")
def group() -> None:
    """MPC vaults (one distributed key generation per signature scheme)."""


@group.command(name="create")
@click.option("--name", required=True, help="The vault's name (lowercase, digits, . _ -).")
@click.option(
    "--scheme",
    "schemes",
    multiple=True,
    type=click.Choice(["ecdsa-secp256k1", "eddsa-ed25519", "schnorr-bip340"]),
    help="A scheme to generate a key for (repeatable; default ecdsa-secp256k1).",
)
@click.option("--min-signers", type=int, default=2, show_default=True)
@click.option("--max-signers", type=int, default=3, show_default=True)
@click.option("--idempotency-key", default=None, help="Reuse to retry safely.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@api_options
def create(
    name: str,
    schemes: tuple[str, ...],
    min_signers: int,
    max_signers: int,
    idempotency_key: str | None,
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """Create a vault; key generation runs on the server's signing backend (slow)."""
    client = sdk_client(url, api_key, key_file)
    try:
        label = f"{min_signers}-of-{max_signers} key generation"
        with client, progress_bar(label, enabled=not as_json) as update:
            steps = [1]

            def show(creation: VaultCreation) -> None:
                running = next(
                    (p.scheme for p in creation.schemes if p.steps_done < p.steps_total), ""
                )
                steps[0] = creation.steps_total
                update(creation.steps_done, creation.steps_total, running)

            vault = client.create_vault(
                name=name,
                schemes=list(schemes) or None,
                min_signers=min_signers,
                max_signers=max_signers,
                idempotency_key=idempotency_key,
                on_progress=None if as_json else show,
            )
            update(steps[0], steps[0], "done")
    except ShardvaultError as exc:
        fail_on(exc)
    if as_json:
        emit_json(vault.model_dump(mode="json"))
        return
    click.echo(f"vault {vault.id} ({vault.name}, account {vault.number})")
    for key in vault.keys:
        click.echo(f"  {key.scheme}: {key.public_key} ({key.min_signers}-of-{key.max_signers})")
    for warning in sorted({key.warning for key in vault.keys if key.warning}):
        click.echo(f"WARNING: {warning}", err=True)


@group.command(name="show")
@click.argument("vault_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@api_options
def show(
    vault_id: str, as_json: bool, url: str, api_key: str | None, key_file: Path | None
) -> None:
    """Show a vault and its root public keys."""
    client = sdk_client(url, api_key, key_file)
    try:
        with client:
            vault = client.get_vault(vault_id)
    except ShardvaultError as exc:
        fail_on(exc)
    if as_json:
        emit_json(vault.model_dump(mode="json"))
    else:
        click.echo(f"vault {vault.id} ({vault.name}): {[k.scheme for k in vault.keys]}")


@click.group(name="wallet")
def wallet_group() -> None:
    """Wallets (a vault's holding of one asset) and their addresses."""


@wallet_group.command(name="create")
@click.option("--vault", "vault_id", required=True, help="The vault's id.")
@click.option("--asset", required=True, help="The asset's symbol (e.g. ETH).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@api_options
def wallet_create(
    vault_id: str,
    asset: str,
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """Add a wallet to a vault; prints its first address."""
    client = sdk_client(url, api_key, key_file)
    try:
        with client:
            wallet = client.create_wallet(vault_id=vault_id, asset=asset)
    except ShardvaultError as exc:
        fail_on(exc)
    if as_json:
        emit_json(wallet.model_dump(mode="json"))
    else:
        click.echo(f"wallet {wallet.id}: {wallet.addresses[0].address}")


@wallet_group.command(name="address")
@click.argument("wallet_id")
@click.option("--new", "new", is_flag=True, help="Derive the next address.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@api_options
def address(
    wallet_id: str,
    new: bool,
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """Print the wallet's newest address (or derive a new one with --new)."""
    client = sdk_client(url, api_key, key_file)
    try:
        with client:
            if new:
                result = client.new_address(wallet_id)
            else:
                result = client.get_wallet(wallet_id).addresses[-1]
    except ShardvaultError as exc:
        fail_on(exc)
    if as_json:
        emit_json(result.model_dump(mode="json"))
    else:
        click.echo(f"{result.address}  {result.path}")
