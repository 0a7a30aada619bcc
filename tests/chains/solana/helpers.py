"""Test-only Ed25519 keys for the Solana tests (derived from public labels; no value)."""

import hashlib

from nacl.signing import SigningKey

from shardvault.chains.solana import Pubkey


def make_signing_key(label: str) -> tuple[SigningKey, Pubkey]:
    """A TEST-ONLY Ed25519 key: its seed is SHA256 of a public label."""
    key = SigningKey(hashlib.sha256(b"shardvault test-only solana " + label.encode()).digest())
    return key, Pubkey(bytes(key.verify_key))
