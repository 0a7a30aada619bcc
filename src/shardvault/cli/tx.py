"""``shardvault tx send|approve|show|replace|replacements``: transactions through the API.

``tx approve`` signs the approval statement locally with the approver's Ed25519 key
(a PEM file), dated by this machine's clock (the approval's lifetime counts from it);
only the signature and that date go to the server. Before signing it prints (on
stderr) the transfer whose intent it signs, after the SDK has recomputed that intent's
digest from those very fields; a server digest that differs is a one-line error and
nothing is signed (DESIGN.md invariant 13).
"""

import time
from collections.abc import Callable
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from shardvault.cli._output import emit_json, fail, fail_on
from shardvault.cli.workspace import api_call, api_options, sdk_client
from shardvault.errors import ShardvaultError
from shardvault.policy.intent import TransferIntent, intent_digest
from shardvault.sdk.custody import FINAL_STATUSES, Transaction
from shardvault.sdk.replacements import Replacement


@click.group(name="tx")
def group() -> None:
    """Transactions: send, approve, show, replace (speed up or cancel a sent one)."""


def _print(tx: Transaction, as_json: bool) -> None:
    if as_json:
        emit_json(tx.model_dump(mode="json"))
        return
    click.echo(
        f"transaction {tx.id}: {tx.status}" + (f" ({tx.status_reason})" if tx.status_reason else "")
    )
    click.echo(f"  {tx.amount} {tx.asset} {tx.source_address} -> {tx.destination} on {tx.network}")
    if tx.approvals_needed:
        click.echo(f"  approvals needed: {tx.approvals_needed}")
    if tx.tx_hash:
        click.echo(
            f"  tx hash: 0x{tx.tx_hash} (nonce {tx.nonce}, {tx.confirmations} confirmations)"
        )


@group.command(name="send")
@click.option("--wallet", "wallet_id", required=True, help="The source wallet's id.")
@click.option("--to", "destination", required=True, help="The destination address.")
@click.option("--amount", required=True, help="Decimal amount in whole units (e.g. 0.5).")
@click.option("--note", default=None)
@click.option("--idempotency-key", default=None, help="Reuse to retry safely.")
@click.option("--wait", is_flag=True, help="Wait until the transaction is final or held.")
@click.option("--timeout", type=float, default=120.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@api_options
def send(
    wallet_id: str,
    destination: str,
    amount: str,
    note: str | None,
    idempotency_key: str | None,
    wait: bool,
    timeout: float,
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """Submit a transfer (the server's pipeline does the rest)."""
    client = sdk_client(url, api_key, key_file)
    try:
        with client:
            tx = client.create_transaction(
                wallet_id=wallet_id,
                destination=destination,
                amount=amount,
                note=note,
                idempotency_key=idempotency_key,
            )
            deadline = time.monotonic() + timeout
            while wait and tx.status not in FINAL_STATUSES and tx.status != "pending_approval":
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
                tx = client.get_transaction(tx.id)
    except ShardvaultError as exc:
        fail_on(exc)
    _print(tx, as_json)


def _approval_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        fail(f"{path}: not a readable PEM private key ({type(exc).__name__})")
    if not isinstance(key, Ed25519PrivateKey):
        fail(f"{path}: approval keys are Ed25519")
    return key


def _review(decision: str) -> Callable[[Transaction, TransferIntent], None]:
    """Print the transfer about to be approved or rejected, as its intent names it."""

    def show(tx: Transaction, intent: TransferIntent) -> None:
        def named(label: str, intent_name: str) -> str:
            return label if label == intent_name else f"{label} ({intent_name})"

        lines = [
            f"{decision} transaction {intent.transaction_id} in workspace {intent.workspace_id}:",
            f"  destination: {intent.destination}",
            f"  amount:      {tx.amount} {tx.asset} ({intent.amount} base units)",
            f"  asset:       {named(tx.asset, intent.asset)}",
            f"  network:     {named(tx.network, intent.network)}",
            f"  source:      {intent.source}",
            f"  intent:      {intent_digest(intent).hex()} (recomputed here)",
        ]
        for line in lines:
            click.echo(line, err=True)

    return show


@group.command(name="approve")
@click.argument("transaction_id")
@click.option("--approver", required=True, help="Your member id in the policy (your email).")
@click.option(
    "--approval-key",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Your Ed25519 approval key (PEM).",
)
@click.option("--reject", is_flag=True, help="Reject instead of approving.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@api_options
def approve(
    transaction_id: str,
    approver: str,
    approval_key: Path,
    reject: bool,
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """Approve (or reject) a transaction waiting for approvals: shows the transfer
    (destination, amount, asset, network, source), then signs the digest recomputed from
    those fields; refuses if the server's digest differs."""
    key = _approval_key(approval_key)
    client = sdk_client(url, api_key, key_file)
    try:
        with client:
            tx = client.approve_transaction(
                transaction_id,
                approver=approver,
                key=key,
                decision="reject" if reject else "approve",
                on_review=_review("rejecting" if reject else "approving"),
            )
    except (ShardvaultError, ValueError) as exc:
        fail(str(exc))
    _print(tx, as_json)


@group.command(name="show")
@click.argument("transaction_id")
@click.option("--wait", is_flag=True, help="Wait until the transaction is final.")
@click.option("--timeout", type=float, default=120.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@api_options
def show(
    transaction_id: str,
    wait: bool,
    timeout: float,
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """Show a transaction's state, policy decision, approvals and chain data (with
    --wait, once it is final: completed, failed, rejected, blocked or cancelled)."""
    client = sdk_client(url, api_key, key_file)
    try:
        with client:
            tx = client.get_transaction(transaction_id)
            deadline = time.monotonic() + timeout
            while wait and tx.status not in FINAL_STATUSES and time.monotonic() < deadline:
                time.sleep(0.5)
                tx = client.get_transaction(transaction_id)
    except ShardvaultError as exc:
        fail_on(exc)
    _print(tx, as_json)


def _print_replacement(replacement: Replacement) -> None:
    reason = f" ({replacement.status_reason})" if replacement.status_reason else ""
    click.echo(
        f"replacement {replacement.seq} ({replacement.mode}) of {replacement.transaction_id}: "
        f"{replacement.status}{reason}"
    )
    if replacement.tx_hash:
        click.echo(
            f"  tx hash: 0x{replacement.tx_hash} (replaces 0x{replacement.replaces_tx_hash})"
        )
    if replacement.fee:
        click.echo(f"  fee: {replacement.fee}")


REPLACEMENT_ENDS = frozenset({"sent", "mined", "superseded", "failed"})
"""Replacement states ``tx replace --wait`` stops at (the node has it, or it ended)."""


@group.command(name="replace")
@click.argument("transaction_id")
@click.option(
    "--mode",
    type=click.Choice(["speed-up", "cancel"]),
    default="speed-up",
    show_default=True,
    help="speed-up: the same transfer with a higher fee; cancel (EVM): a transfer of "
    "nothing to the source at the same nonce.",
)
@click.option("--idempotency-key", default=None, help="Reuse to retry safely.")
@click.option("--wait", is_flag=True, help="Wait until the node has it (or it failed).")
@click.option("--timeout", type=float, default=120.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@api_options
def replace(
    transaction_id: str,
    mode: str,
    idempotency_key: str | None,
    wait: bool,
    timeout: float,
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """Replace a transaction sent and not yet mined (confirming): sign it again at the
    same nonce (Bitcoin: the same coins) with a higher fee, or cancel it on chain. Only
    one version can ever be mined."""
    client = sdk_client(url, api_key, key_file)
    try:
        with client:
            replacement = client.replace_transaction(
                transaction_id,
                mode="cancel" if mode == "cancel" else "speed_up",
                idempotency_key=idempotency_key,
            )
            deadline = time.monotonic() + timeout
            while wait and replacement.status not in REPLACEMENT_ENDS:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
                found = [
                    r for r in client.list_replacements(transaction_id) if r.id == replacement.id
                ]
                replacement = found[0] if found else replacement
    except ShardvaultError as exc:
        fail_on(exc)
    if as_json:
        emit_json(replacement.model_dump(mode="json"))
    else:
        _print_replacement(replacement)


@group.command(name="replacements")
@click.argument("transaction_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object ({data: [...]}).")
@api_options
def replacements(
    transaction_id: str, as_json: bool, url: str, api_key: str | None, key_file: Path | None
) -> None:
    """A transaction's replacements, oldest first."""
    found = api_call(
        url, api_key, key_file, lambda client: client.list_replacements(transaction_id)
    )
    if as_json:
        emit_json({"data": [r.model_dump(mode="json") for r in found]})
        return
    if not found:
        click.echo(f"transaction {transaction_id} has no replacements")
    for replacement in found:
        _print_replacement(replacement)
