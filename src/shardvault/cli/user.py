"""``shardvault user add``: a member of the workspace and their first API key, through
the API (owners and admins).

The API key's private key is made on this machine and written to a new file readable
by its owner only (mode 0600); only its public half is sent. Hand the file to the
member (or run the command on their machine with an owner's key). The member's email is
their id in policies: the approver an approval statement names, the initiator rules
see.
"""

import contextlib
from pathlib import Path

import click

from shardvault.cli._output import emit_json, fail, fail_on
from shardvault.cli.workspace import api_options, sdk_client
from shardvault.errors import ShardvaultError

ROLES = ("admin", "signer", "approver", "viewer", "auditor")
"""The roles ``user add`` gives (an owner exists once, made by ``shardvault init``)."""


@click.group(name="user")
def group() -> None:
    """Members of the workspace and their API keys."""


@group.command(name="add")
@click.option("--name", required=True, help="The member's name.")
@click.option("--email", required=True, help="The member's email: their id in policies.")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option(
    "--key-out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the member's API key (a new file, mode 0600).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@api_options
def add(
    name: str,
    email: str,
    role: str,
    key_out: Path,
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """Add a member with an API key of their own."""
    from shardvault.sdk import generate_key_pair, write_private_key

    if key_out.exists():
        fail(f"{key_out} exists: refusing to overwrite a key file")
    client = sdk_client(url, api_key, key_file)
    private_pem, public_pem = generate_key_pair("EdDSA")
    try:
        write_private_key(key_out, private_pem)
        try:
            with client:
                user = client.create_user(name=name, email=email, role=role)  # type: ignore[arg-type]
                key = client.create_api_key(user_id=user.id, name=email, public_key_pem=public_pem)
        except ShardvaultError:
            with contextlib.suppress(OSError):
                key_out.unlink()
            raise
    except ShardvaultError as exc:
        fail_on(exc)
    result = {
        "user_id": user.id,
        "email": user.email,
        "role": user.role,
        "api_key_id": key.id,
        "key_file": str(key_out),
    }
    if as_json:
        emit_json(result)
    else:
        click.echo(f"user {user.id} ({user.email}, {user.role})")
        click.echo(f"API key {key.id}, private key in {key_out} (mode 0600)")
