"""``shardvault mpc``: local threshold-key ceremonies (keygen, sign, derive, refresh)."""

import click


@click.group(name="mpc")
def group() -> None:
    """Local threshold-key ceremonies: key generation, signing, derivation, refresh."""
