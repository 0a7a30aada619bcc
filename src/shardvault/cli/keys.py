"""``shardvault keys generate``: an Ed25519 key pair for an admin (who signs policy
bundles) or an approver (who signs approvals), made on this machine.

The private key goes to a new file readable by its owner only (mode 0600, PKCS#8 PEM:
what ``policy apply --admin-key`` and ``tx approve --approval-key`` read); the public
key is printed as the hex that policies take (an approver's ``public_key``, an admin
set's member). Nothing is sent anywhere.
"""

from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from shardvault.cli._output import emit_json, fail_on
from shardvault.errors import ShardvaultError


@click.group(name="keys")
def group() -> None:
    """Admin and approver keys (Ed25519), made and kept on this machine."""


@group.command(name="generate")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key (a new file, mode 0600).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def generate(out: Path, as_json: bool) -> None:
    """Make an Ed25519 key pair: the private key to --out, the public key's hex (what
    a policy names) on stdout."""
    from shardvault.sdk import write_private_key

    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    try:
        write_private_key(out, private_pem)
    except ShardvaultError as exc:
        fail_on(exc)
    if as_json:
        emit_json({"algorithm": "ed25519", "public_key": public, "key_file": str(out)})
        return
    click.echo(public)
    click.echo(f"private key in {out} (mode 0600); the line above is its public key", err=True)
