"""``attest_address`` requests as a coordinator sends them, and the checks a test makes
of an attestation without the project's code: the address recomputed from the attested
key with eth-keys, python-bitcointx or solders, the signature verified with PyNaCl.
Used by tests/cosigner/test_address_attestation.py (in-process nodes) and
tests/compromised/test_attested_addresses.py (co-signer processes)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

from bitcointx import ChainParams
from bitcointx.core.key import CPubKey, XOnlyPubKey
from bitcointx.wallet import P2TRCoinAddress, P2WPKHCoinAddress
from eth_keys import keys as eth_keys
from nacl.signing import VerifyKey
from solders.pubkey import Pubkey as SoldersPubkey

from tests.cosigner.support import VAULT

STATEMENT_DOMAIN = b"shardvault/cosigner/address-attestation/v1\x00"
"""docs/cosigner.md: what an attestation's signature covers starts with this."""


def attestation_request(key_id: str, path: str, encoding: str, **extra: Any) -> dict[str, Any]:
    """An ``attest_address`` request for ``key_id`` of the test vault; ``extra`` adds
    fields (such as an ``address`` the co-signer must refuse)."""
    return {
        "kind": "attest_address",
        "request_id": f"attest-{secrets.token_hex(4)}",
        "vault": VAULT,
        "key_id": key_id,
        "path": path,
        "encoding": encoding,
        **extra,
    }


def independent_address(encoding: str, public_key: bytes) -> str:
    """``public_key`` in ``encoding`` (ethereum, solana, bitcoin-p2wpkh:regtest or
    bitcoin-p2tr:regtest), by eth-keys, solders or python-bitcointx."""
    if encoding == "ethereum":
        return str(eth_keys.PublicKey.from_compressed_bytes(public_key).to_checksum_address())
    if encoding == "solana":
        return str(SoldersPubkey(public_key))
    with ChainParams("bitcoin/regtest"):
        if encoding == "bitcoin-p2wpkh:regtest":
            return str(P2WPKHCoinAddress.from_pubkey(CPubKey(public_key)))
        return str(P2TRCoinAddress.from_pubkey(XOnlyPubKey(public_key)))


def verify_statement_signature(attestation: Mapping[str, Any], signing_key: bytes) -> None:
    """PyNaCl over the domain and the canonical JSON of the statement (keys sorted, no
    spaces, ASCII), under the identity's ``signing_key``.

    Raises:
        nacl.exceptions.BadSignatureError: the signature does not verify.
    """
    message = STATEMENT_DOMAIN + json.dumps(
        attestation["statement"], sort_keys=True, separators=(",", ":")
    ).encode("ascii")
    VerifyKey(signing_key).verify(message, bytes.fromhex(attestation["signature"]))
