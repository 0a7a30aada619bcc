"""``shardvault vault`` and ``shardvault wallet``: MPC vaults, wallets and addresses,
through the API (the SDK signs every request).

An address is shown as verified only when at least ``--min-attestations`` (default
two, raised to the key's own ``min_signers``) of the co-signers pinned with
``--expect-cosigner PARTY=FINGERPRINT`` or ``--cosigners-file`` attest it
(:mod:`shardvault.sdk.addresses`). With pins, an address that is not is refused: one
line on stderr, exit 1, and the address is not printed where a script would take it.
Without pins the address is printed with a loud UNVERIFIED warning on stderr.
"""

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from shardvault.cli._output import emit_json, fail_on, progress_bar
from shardvault.cli._pins import cosigners_file, expected_cosigners
from shardvault.cli.workspace import api_call, api_options, sdk_client
from shardvault.errors import ShardvaultError
from shardvault.sdk import PinnedCosigners, require_verified
from shardvault.sdk.custody import Address, VaultCreation

F = TypeVar("F", bound=Callable[..., object])

UNPINNED_WARNING = (
    "WARNING: UNVERIFIED address: no co-signer is pinned (--expect-cosigner "
    "PARTY=FINGERPRINT or --cosigners-file), so only the server vouches for it"
)
"""What is printed beside an address no pinned co-signer was asked to vouch for."""


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
    vault = api_call(url, api_key, key_file, lambda client: client.get_vault(vault_id))
    if as_json:
        emit_json(vault.model_dump(mode="json"))
    else:
        click.echo(f"vault {vault.id} ({vault.name}): {[k.scheme for k in vault.keys]}")


@click.group(name="wallet")
def wallet_group() -> None:
    """Wallets (a vault's holding of one asset) and their addresses."""


def _pin_options(function: F) -> F:
    """``--expect-cosigner``, ``--cosigners-file``, ``--min-attestations``, ``--vault``."""
    function = click.option(
        "--expect-cosigner",
        "expect_cosigner",
        multiple=True,
        help="PARTY=FINGERPRINT of a co-signer whose attestations count, as read on its "
        "own host (repeatable).",
    )(function)
    function = click.option(
        "--cosigners-file",
        envvar="SHARDVAULT_COSIGNERS_FILE",
        show_envvar=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help='A JSON file {"<party>": "<fingerprint>", ...} of the co-signers to trust.',
    )(function)
    function = click.option(
        "--min-attestations",
        type=click.IntRange(2, 64),
        default=2,
        show_default=True,
        help="Pinned co-signers that must attest an address (the key's own threshold raises it).",
    )(function)
    return click.option(
        "--expect-vault",
        default=None,
        help="The vault the address must belong to (default: the wallet's, as the server says).",
    )(function)


def _pins(expect_cosigner: tuple[str, ...], cosigners: Path | None) -> PinnedCosigners | None:
    pinned = cosigners_file(cosigners) if cosigners is not None else {}
    pinned.update(expected_cosigners(expect_cosigner))
    return PinnedCosigners.of(pinned) if pinned else None


def _verify(
    address: Address, vault_id: str, pins: PinnedCosigners | None, min_attestations: int
) -> dict[str, object] | None:
    """The verification of ``address`` against ``pins`` (exits 1, in one line, when it
    is not verified); without pins, warns on stderr and answers ``None``."""
    if pins is None:
        click.echo(UNPINNED_WARNING, err=True)
        return None
    try:
        tally = require_verified(
            address, pins, vault_id=vault_id, min_signers=min_attestations
        ).tally
    except ShardvaultError as exc:
        fail_on(exc)
    return {
        "verified": True,
        "parties": list(tally.parties),
        "required": tally.required,
        "pinned": tally.pinned,
        "summary": tally.summary(),
    }


def _line(address: Address, verification: dict[str, object] | None) -> str:
    shown = f"{address.address}  {address.path}"
    return shown if verification is None else f"{shown}  {verification['summary']}"


@wallet_group.command(name="create")
@click.option("--vault", "vault_id", required=True, help="The vault's id.")
@click.option("--asset", required=True, help="The asset's symbol (e.g. ETH).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_pin_options
@api_options
def wallet_create(
    vault_id: str,
    asset: str,
    as_json: bool,
    expect_cosigner: tuple[str, ...],
    cosigners_file: Path | None,
    min_attestations: int,
    expect_vault: str | None,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """Add a wallet to a vault; prints its first address (verified with pins)."""
    pins = _pins(expect_cosigner, cosigners_file)
    wallet = api_call(
        url, api_key, key_file, lambda client: client.create_wallet(vault_id=vault_id, asset=asset)
    )
    first = wallet.addresses[0]
    verification = _verify(first, expect_vault or vault_id, pins, min_attestations)
    if as_json:
        emit_json({**wallet.model_dump(mode="json"), "verification": verification})
    else:
        click.echo(f"wallet {wallet.id}: {_line(first, verification)}")


@wallet_group.command(name="address")
@click.argument("wallet_id")
@click.option("--new", "new", is_flag=True, help="Derive the next address.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_pin_options
@api_options
def address(
    wallet_id: str,
    new: bool,
    as_json: bool,
    expect_cosigner: tuple[str, ...],
    cosigners_file: Path | None,
    min_attestations: int,
    expect_vault: str | None,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """Print the wallet's newest address (or derive a new one with --new), verified
    against the pinned co-signers."""
    pins = _pins(expect_cosigner, cosigners_file)
    client = sdk_client(url, api_key, key_file)
    try:
        with client:
            wallet = client.get_wallet(wallet_id)
            result = client.new_address(wallet_id) if new else wallet.addresses[-1]
    except ShardvaultError as exc:
        fail_on(exc)
    verification = _verify(result, expect_vault or wallet.vault_id, pins, min_attestations)
    if as_json:
        emit_json({**result.model_dump(mode="json"), "verification": verification})
    else:
        click.echo(_line(result, verification))
