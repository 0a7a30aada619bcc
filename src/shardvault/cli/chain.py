"""``shardvault chain``: Chain tools: decode transactions, PSBTs and messages."""

import click


@click.group(name="chain")
def group() -> None:
    """Chain tools: decode transactions, PSBTs and messages."""
