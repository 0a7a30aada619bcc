"""``shardvault policy``: Transaction authorization policy: evaluate and replay."""

import click


@click.group(name="policy")
def group() -> None:
    """Transaction authorization policy: evaluate and replay."""
