"""The command line's root: help and version."""

from click.testing import CliRunner

from shardvault import __version__
from shardvault.cli.main import cli


def test_help_lists_every_group() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for group in ("mpc", "chain", "policy", "attestation"):
        assert group in result.output


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output
