"""``shardvault init`` (a new workspace with its owner and owner key) and
``shardvault workspace show`` (through the API).

``init`` works on the database directly: it is how the first API key comes to exist. The
owner's private key is generated here and written to a new file with mode 0600; only its
public half is stored.
"""

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from shardvault.cli._output import emit_json, fail, fail_on
from shardvault.cli.server import local_config, local_options
from shardvault.errors import ShardvaultError

if TYPE_CHECKING:
    from shardvault.sdk import ShardvaultClient

T = TypeVar("T")


def api_options(function: click.decorators.FC) -> click.decorators.FC:
    """Add ``--url``, ``--api-key`` and ``--key-file`` (commands that go through the API)."""
    function = click.option(
        "--key-file",
        envvar="SHARDVAULT_KEY_FILE",
        show_envvar=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="The API key's private key file (PEM).",
    )(function)
    function = click.option(
        "--api-key", "api_key", envvar="SHARDVAULT_API_KEY", show_envvar=True, help="API key id."
    )(function)
    return click.option(
        "--url",
        envvar="SHARDVAULT_URL",
        show_envvar=True,
        default="http://127.0.0.1:8080",
        show_default=True,
        help="The server's base URL.",
    )(function)


def sdk_client(url: str, api_key: str | None, key_file: Path | None) -> "ShardvaultClient":
    """A synchronous SDK client for the options of :func:`api_options`."""
    from shardvault.sdk import ApiKeyCredentials, ShardvaultClient

    if not api_key or key_file is None:
        fail(
            "--api-key and --key-file (or SHARDVAULT_API_KEY and SHARDVAULT_KEY_FILE) are required"
        )
    try:
        credentials = ApiKeyCredentials.from_file(api_key, key_file)
    except ShardvaultError as exc:
        fail_on(exc)
    return ShardvaultClient(url, credentials)


def api_call(
    url: str, api_key: str | None, key_file: Path | None, call: "Callable[[ShardvaultClient], T]"
) -> T:
    """``call`` with an SDK client for the options of :func:`api_options`, closed after;
    a refusal or transport error is the command's one-line failure."""
    client = sdk_client(url, api_key, key_file)
    try:
        with client:
            return call(client)
    except ShardvaultError as exc:
        fail_on(exc)


@click.command(name="init")
@click.option("--name", required=True, help="The workspace's name.")
@click.option("--owner-name", required=True)
@click.option("--owner-email", required=True)
@click.option(
    "--key-out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the owner's private key (a new file, mode 0600).",
)
@click.option(
    "--algorithm", type=click.Choice(["EdDSA", "ES256"]), default="EdDSA", show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@local_options
def init(
    name: str,
    owner_name: str,
    owner_email: str,
    key_out: Path,
    algorithm: str,
    as_json: bool,
    data_dir: Path,
    db_url: str | None,
    audit_key: Path | None,
) -> None:
    """Create a workspace, its owner and the owner's API key (migrating the database first)."""
    from shardvault.audit import Actor
    from shardvault.sdk import generate_key_pair, write_private_key
    from shardvault.service.platform import open_platform
    from shardvault.service.workspaces import create_workspace
    from shardvault.store.models import KeyAlgorithm

    config = local_config(data_dir, db_url, audit_key)
    if key_out.exists():
        fail(f"{key_out} exists: refusing to overwrite a key file")
    try:
        platform = open_platform(config.db_url, config.audit_key_path)
    except ShardvaultError as exc:
        fail_on(exc)
    private_pem, public_pem = generate_key_pair("EdDSA" if algorithm == "EdDSA" else "ES256")
    try:
        write_private_key(key_out, private_pem)
        try:
            with platform.unit_of_work() as uow:
                workspace, owner, key = create_workspace(
                    uow,
                    name=name,
                    owner_name=owner_name,
                    owner_email=owner_email,
                    owner_key_algorithm=KeyAlgorithm(algorithm),
                    owner_public_key_pem=public_pem,
                    actor=Actor.cli(),
                )
        except ShardvaultError:
            with contextlib.suppress(OSError):
                key_out.unlink()
            raise
    except ShardvaultError as exc:
        fail_on(exc)
    finally:
        platform.database.dispose()
    result = {
        "workspace_id": workspace.id,
        "workspace_name": workspace.name,
        "user_id": owner.id,
        "api_key_id": key.id,
        "algorithm": algorithm,
        "key_file": str(key_out),
        "database": config.display_url,
        "audit_key_id": platform.audit_signer.key_id,
    }
    if as_json:
        emit_json(result)
    else:
        click.echo(f"workspace {workspace.name} ({workspace.id})")
        click.echo(f"owner API key {key.id}, private key in {key_out} (mode 0600)")


@click.group(name="workspace")
def group() -> None:
    """The workspace of an API key (through the API)."""


@group.command(name="show")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@api_options
def show(as_json: bool, url: str, api_key: str | None, key_file: Path | None) -> None:
    """Show the workspace the API key belongs to."""
    workspace = api_call(url, api_key, key_file, lambda client: client.get_workspace())
    if as_json:
        emit_json(workspace.model_dump(mode="json"))
    else:
        click.echo(f"{workspace.name} ({workspace.id}), created {workspace.created_at:%Y-%m-%d}")
