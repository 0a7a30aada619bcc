"""``shardvault recovery``: offline recovery keys, encrypted share backups, restore.

The recovery key pair is made on (and its private half stays on) an offline machine;
only the public key travels to the co-signer that exports its shares. Passphrases are
read from the environment variable named by ``--passphrase-env`` or prompted for.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from shardvault.cli._output import emit_json, fail_on
from shardvault.custody.backup import (
    export_party,
    generate_recovery_key,
    load_private_key,
    load_public_key,
    private_key_pem,
    public_key_pem,
    restore_bundle,
)
from shardvault.custody.config import custody_from_config, load_config_file
from shardvault.custody.errors import CustodyError
from shardvault.custody.secret import SecretBytes


@click.group(name="recovery")
def group() -> None:
    """Share backups to an offline recovery key, and restore."""


def _passphrase(env: str | None, confirm: bool) -> SecretBytes:
    if env:
        value = os.environ.get(env)
        if not value:
            raise click.BadParameter(f"environment variable {env} is not set")
        return SecretBytes(value.encode())
    entered = click.prompt("Recovery key passphrase", hide_input=True, confirmation_prompt=confirm)
    return SecretBytes(str(entered).encode())


@group.command(name="keygen")
@click.option("--kind", type=click.Choice(["x25519", "rsa"]), default="x25519", show_default=True)
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--passphrase-env", help="Environment variable holding the passphrase.")
def keygen(kind: str, out: Path, passphrase_env: str | None) -> None:
    """Make a recovery key pair in directory OUT (recovery.key is encrypted, 0600)."""
    key = generate_recovery_key(kind)
    out.mkdir(parents=True, exist_ok=True)
    with _passphrase(passphrase_env, confirm=True) as passphrase:
        pem = private_key_pem(key, passphrase)
    fd = os.open(out / "recovery.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    (out / "recovery.pub").write_bytes(public_key_pem(key))
    emit_json({"kind": kind, "private_key": str(out / "recovery.key"),
               "public_key": str(out / "recovery.pub")})  # fmt: skip


@group.command(name="export")
@click.option("--config", "config", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--workspace", required=True)
@click.option("--party", "party", required=True)
@click.option("--recipient", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def export(config: Path, workspace: str, party: str, recipient: Path, out: Path) -> None:
    """Export every share of PARTY in WORKSPACE, encrypted to the recovery public key."""
    try:
        custody = custody_from_config(load_config_file(config))
        bundle = export_party(custody, workspace, party, load_public_key(recipient.read_bytes()))
    except CustodyError as exc:
        fail_on(exc)
    out.write_bytes(bundle)
    emit_json({"bundle": str(out), "bytes": len(bundle), "workspace": workspace, "party": party})


@group.command(name="restore")
@click.option("--config", "config", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--bundle", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--key", "key_path", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--passphrase-env", help="Environment variable holding the passphrase.")
def restore(config: Path, bundle: Path, key_path: Path, passphrase_env: str | None) -> None:
    """Restore a bundle into the configured custody; bumps each presignature epoch."""
    try:
        with _passphrase(passphrase_env, confirm=False) as passphrase:
            key = load_private_key(key_path.read_bytes(), passphrase)
        custody = custody_from_config(load_config_file(config))
        restored = restore_bundle(custody, bundle.read_bytes(), key)
    except CustodyError as exc:
        fail_on(exc)
    emit_json(
        {
            "restored": [
                {"address": str(r.address), "revision": r.revision,
                 "presignature_epoch": r.presignature_epoch}
                for r in restored
            ]
        }
    )  # fmt: skip
