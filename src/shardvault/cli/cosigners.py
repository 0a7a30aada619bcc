"""``shardvault cosigners``: the server's side of remote co-signers, through the API.

``pairing-token`` makes a one-time token for one party id (give it to the co-signer's
operator, who runs ``shardvault cosigner pair`` on the co-signer's host); ``list`` shows
each paired co-signer's fingerprint (compare it with the one printed on the co-signer's
own host before signing a policy), whether the active policy's signed directory lists
it, and its live status; ``unpair`` forgets one. docs/cosigner.md, "Pairing".
"""

import time
from datetime import UTC, datetime
from pathlib import Path

import click

from shardvault.cli._output import emit_json
from shardvault.cli.workspace import api_call, api_options


@click.group(name="cosigners")
def group() -> None:
    """Remote co-signers paired with the workspace (server side)."""


@group.command(name="pairing-token")
@click.option("--party", type=click.IntRange(1, 65535), required=True)
@api_options
def pairing_token(party: int, url: str, api_key: str | None, key_file: Path | None) -> None:
    """Make a one-time token (30 minutes) that pairs one co-signer as PARTY."""
    token = api_call(
        url, api_key, key_file, lambda client: client.create_pairing_token(party=party)
    )
    emit_json(token.model_dump(mode="json"))


@group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@api_options
def list_cosigners(as_json: bool, url: str, api_key: str | None, key_file: Path | None) -> None:
    """Paired co-signers: fingerprint, signed-directory membership, liveness, version, and
    each one's pool of safe primes (ready of its size) as it last reported it."""
    listed = api_call(url, api_key, key_file, lambda client: client.list_cosigners())
    if as_json:
        emit_json(listed.model_dump(mode="json"))
        return
    for c in listed.data:
        status = c.status
        live = "connected" if status.get("connected") else "not connected"
        contact = status.get("last_contact")
        seen = (
            "last contact "
            + datetime.fromtimestamp(contact, UTC).isoformat(timespec="seconds")
            + f" ({max(time.time() - contact, 0):.0f} s ago)"
            if isinstance(contact, float | int)
            else "never seen"
        )
        signed = "in signed directory" if c.in_signed_directory else "NOT in signed directory"
        click.echo(
            f"co-signer {c.party} {c.label!r}: {c.fingerprint} | {signed} | {live}, {seen} | "
            f"version {status.get('version', c.version)}, unlock {status.get('unlock', '?')}, "
            f"attestation {status.get('attestation', '?')} | {_pool(status.get('prime_pool'))} | "
            f"{_aux(status.get('aux_pool'))}"
        )


def _pool(pool: object) -> str:
    """A co-signer's prime pool as it last reported it (docs/cosigner.md, "Prime pool")."""
    if not isinstance(pool, dict):
        return "prime pool unknown"
    text = (
        f"prime pool {pool.get('ready', '?')}/{pool.get('size', '?')} ready, "
        f"{pool.get('searching', 0)} searching, at most {pool.get('rate_per_min', '?')}/min"
    )
    if pool.get("test_only"):
        text += ", TEST-ONLY primes"
    if pool.get("error"):
        text += f", error: {pool['error']}"
    return text


def _aux(pool: object) -> str:
    """A co-signer's prepared aux-info sets as it last reported them (docs/cosigner.md,
    "Prepared aux info")."""
    if not isinstance(pool, dict):
        return "aux sets unknown"
    ready = pool.get("ready")
    sets = (
        ", ".join(f"{tag}: {n}" for tag, n in sorted(ready.items()))
        if isinstance(ready, dict) and ready
        else "none"
    )
    text = f"aux sets ready {sets} (at most {pool.get('max_per_set', '?')} per party set)"
    if pool.get("preparing"):
        text += f", {pool['preparing']} preparing"
    return text


@group.command(name="unpair")
@click.option("--party", type=click.IntRange(1, 65535), required=True)
@api_options
def unpair(party: int, url: str, api_key: str | None, key_file: Path | None) -> None:
    """Forget a paired co-signer (sign a policy without it to drop it from sessions)."""
    answer = api_call(url, api_key, key_file, lambda client: client.unpair_cosigner(party))
    emit_json(answer.model_dump(mode="json"))
