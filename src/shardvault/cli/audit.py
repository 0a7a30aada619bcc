"""``shardvault audit verify``: check the hash-chained audit log.

Through the API (the default; needs an API key with audit access) it verifies the key's
workspace chain. With ``--local`` it opens the database itself and verifies every chain,
trusting the audit key file's public half and any ``--trust`` public keys (hex), which
is how an auditor checks a database copy offline. Exits 1 when a chain is broken and
names the chain, sequence number and event.
"""

from pathlib import Path

import click

from shardvault.cli._output import emit_json, fail_on
from shardvault.cli.server import local_config, local_options
from shardvault.cli.workspace import api_call, api_options
from shardvault.errors import ShardvaultError


@click.group(name="audit")
def group() -> None:
    """The hash-chained audit log."""


def _report(chains: list[dict[str, object]], as_json: bool) -> None:
    valid = all(bool(c["valid"]) for c in chains)
    if as_json:
        emit_json({"valid": valid, "chains": chains})
    else:
        for chain in chains:
            if chain["valid"]:
                click.echo(f"chain {chain['chain']}: ok, {chain['events']} events")
            else:
                click.echo(
                    f"chain {chain['chain']}: BROKEN at seq {chain['broken_at_seq']}"
                    f" (event {chain['broken_event_id']}): {chain['problem']}: {chain['detail']}"
                )
    if not valid:
        raise SystemExit(1)


@group.command(name="verify")
@click.option("--local", "local", is_flag=True, help="Open the database directly (--db).")
@click.option("--trust", multiple=True, help="Also accept this audit public key (hex).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@api_options
@local_options
def verify(
    local: bool,
    trust: tuple[str, ...],
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
    data_dir: Path,
    db_url: str | None,
    audit_key: Path | None,
) -> None:
    """Verify the audit chain(s); exit 1 and say where if one is broken."""
    if local or db_url:
        _report(_verify_locally(data_dir, db_url, audit_key, trust), as_json)
        return
    outcome = api_call(url, api_key, key_file, lambda client: client.verify_audit())
    _report([outcome.model_dump(mode="json")], as_json)


def _verify_locally(
    data_dir: Path, db_url: str | None, audit_key: Path | None, trust: tuple[str, ...]
) -> list[dict[str, object]]:
    from dataclasses import asdict

    from nacl.signing import VerifyKey

    from shardvault.audit import AuditKeyring, AuditSigner, all_chains
    from shardvault.service.audit_trail import verify_one
    from shardvault.service.platform import Platform
    from shardvault.store import Database, ensure_current

    config = local_config(data_dir, db_url, audit_key)
    try:
        keys = [VerifyKey(bytes.fromhex(h)) for h in trust]
    except ValueError:
        raise click.BadParameter("--trust takes hex Ed25519 public keys") from None
    try:
        if config.audit_key_path.exists() or not keys:
            keys.append(AuditSigner.load(config.audit_key_path).verify_key)
        database = Database(config.db_url)
        try:
            ensure_current(database.engine)
            # Verification only reads; the signer is never used to write here.
            platform = Platform(database, AuditSigner.generate())
            keyring = AuditKeyring(keys)
            with platform.unit_of_work() as uow:
                chains = all_chains(uow.session)
                return [asdict(verify_one(uow, chain, keyring)) for chain in chains]
        finally:
            database.dispose()
    except ShardvaultError as exc:
        fail_on(exc)
