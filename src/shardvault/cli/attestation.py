"""``shardvault attestation``: Enclave attestation documents: verify."""

import click


@click.group(name="attestation")
def group() -> None:
    """Enclave attestation documents: verify."""
