"""Entry point of the ``shardvault`` command.

Each command group lives in its own module and is attached here. Local tools (key
ceremonies, decoders, policy evaluation, attestation checks) call the pure layers
directly; server commands go through the SDK.
"""

import sys

import click

from shardvault import __version__
from shardvault.cli import (
    attestation,
    audit,
    chain,
    cosigner,
    cosigners,
    keys,
    mpc,
    network,
    policy,
    policy_apply,
    prices,
    recovery,
    server,
    tx,
    user,
    vault,
    webhook,
    workspace,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shardvault")
def cli() -> None:
    """shardvault: self-hosted digital-asset custody with threshold (MPC) keys."""


cli.add_command(mpc.group)
cli.add_command(chain.group)
cli.add_command(policy.group)
cli.add_command(attestation.group)
cli.add_command(recovery.group)
cli.add_command(cosigner.group)
cli.add_command(cosigners.group)
cli.add_command(workspace.init)
cli.add_command(workspace.group)
cli.add_command(user.group)
cli.add_command(keys.group)
cli.add_command(network.group)
cli.add_command(network.asset_group)
cli.add_command(server.command)
cli.add_command(audit.group)
cli.add_command(vault.group)
cli.add_command(vault.wallet_group)
cli.add_command(tx.group)
policy.group.add_command(policy_apply.command)
cli.add_command(prices.group)
cli.add_command(webhook.group)


def main() -> None:
    """Run the command line; exit codes: 0 success, 1 refused input, 2 usage error.

    Errors, click's usage errors included, are reported as one line on stderr.
    """
    try:
        result = cli.main(prog_name="shardvault", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
