"""The co-signer node: unlocks its shares after attestation, checks each request itself,
and runs protocol rounds."""
