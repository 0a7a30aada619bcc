"""Signing digests of Ethereum transactions.

The digest a signer signs is keccak256 of the signing payload (see :mod:`.encode`):
EIP-155 section "Specification" for legacy transactions, EIP-2930 and EIP-1559
"Specification" (``keccak256(type ‖ rlp(payload))``) for typed ones. Message digests
(EIP-191, EIP-712) live in :mod:`.message` and :mod:`.typed_data`.
"""

from eth_hash.auto import keccak

from shardvault.chains.ethereum.encode import signing_payload
from shardvault.chains.ethereum.models import Transaction


def signing_hash(tx: Transaction) -> bytes:
    """The 32-byte digest to sign for ``tx``."""
    return bytes(keccak(signing_payload(tx)))
