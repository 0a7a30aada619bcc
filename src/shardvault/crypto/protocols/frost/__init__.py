"""FROST threshold Schnorr signatures (RFC 9591) with a dealerless DKG.

Schemes: ``eddsa-ed25519`` (FROST(Ed25519, SHA-512), Solana), ``schnorr-bip340``
(FROST(secp256k1, SHA-256) with BIP340 signatures and the BIP341 tweak, Bitcoin Taproot),
and ``frost-secp256k1-sha256`` (RFC 9591's own secp256k1 suite, kept for its test vectors).
"""

from shardvault.crypto.protocols.frost.ciphersuite import (
    ED25519_SHA512,
    SECP256K1_BIP340,
    SECP256K1_SHA256,
    SUITES,
    Ciphersuite,
)
from shardvault.crypto.protocols.frost.dkg import DkgRound1, DkgRound2, DkgRound3
from shardvault.crypto.protocols.frost.keys import KeyPackage, PublicKeyPackage
from shardvault.crypto.protocols.frost.messages import (
    CommitmentMessage,
    DkgRound1Message,
    DkgRound2Message,
    DkgRound3Message,
    SignatureShareMessage,
)
from shardvault.crypto.protocols.frost.signing import Aggregator, SignRound1, SignRound2

__all__ = [
    "ED25519_SHA512",
    "SECP256K1_BIP340",
    "SECP256K1_SHA256",
    "SUITES",
    "Aggregator",
    "Ciphersuite",
    "CommitmentMessage",
    "DkgRound1",
    "DkgRound1Message",
    "DkgRound2",
    "DkgRound2Message",
    "DkgRound3",
    "DkgRound3Message",
    "KeyPackage",
    "PublicKeyPackage",
    "SignRound1",
    "SignRound2",
    "SignatureShareMessage",
]
