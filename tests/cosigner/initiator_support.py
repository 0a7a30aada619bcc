"""Initiators' own signed API requests, as the co-signer tests forward them.

Alice and Bob hold TEST-ONLY API keys (Ed25519, seeds are SHA-256 of a label) that the
bundle's initiators section lists; the server's key is one the admins never listed (a
server that adds a key for a user in its own database). A signed request is what the SDK
sends for ``POST /v1/transactions``: a JWT over method, URI, nonce, times, key id and the
body's SHA-256, and the body itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping, MutableMapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shardvault.chains import solana
from shardvault.chains.amounts import format_decimal_amount
from shardvault.sdk.auth import ApiKeyCredentials

CREATE_PATH = "/v1/transactions"


def _test_only_key(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(f"TEST-ONLY api key {label}".encode()).digest()
    )


ALICE = ApiKeyCredentials("key-alice", _test_only_key("alice"))
BOB = ApiKeyCredentials("key-bob", _test_only_key("bob"))
SERVER_KEY_FOR_ALICE = ApiKeyCredentials("key-alice-2", _test_only_key("server"))
"""A key the server registered for alice on its own: the admins never listed it."""
SERVER_KEY_FOR_BOB = ApiKeyCredentials("key-bob-2", _test_only_key("server-bob"))
"""The same for bob."""


def _public_hex(credentials: ApiKeyCredentials) -> str:
    return credentials.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def initiators_section(**members: ApiKeyCredentials) -> dict[str, object]:
    """The bundle's initiators section: user ``name`` signs with ``credentials``."""
    return {
        "members": [
            {
                "initiator": {"type": "user", "id": name},
                "keys": [
                    {"id": c.api_key_id, "algorithm": "ed25519", "public_key": _public_hex(c)}
                ],
            }
            for name, c in members.items()
        ]
    }


INITIATORS = initiators_section(alice=ALICE, bob=BOB)


def create_body(
    destination: str, amount: str, *, wallet_id: str = "wallet-sol", source_index: int = 0
) -> bytes:
    """The body the SDK sends to create a transfer (compact JSON)."""
    document = {
        "wallet_id": wallet_id,
        "destination": destination,
        "amount": amount,
        "source_index": source_index,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def signed_request(
    credentials: ApiKeyCredentials,
    body: bytes,
    *,
    issued_at: int | None = None,
    method: str = "POST",
    uri: str = CREATE_PATH,
) -> dict[str, str]:
    """The forwarded form of a signed create request: ``{token, body}`` (body base64)."""
    token = credentials.sign_request(
        method, uri, body, now=time.time() if issued_at is None else issued_at
    )
    return {"token": token, "body": base64.b64encode(body).decode()}


def issued_at(request: Mapping[str, str]) -> int:
    """The ``iat`` claim of a forwarded request (read without verifying: test helper)."""
    payload = request["token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return int(claims["iat"])


def forward(
    body: MutableMapping[str, object],
    request: Mapping[str, str],
    initiator: str = "alice",
    *,
    created_at: int | None = None,
) -> MutableMapping[str, object]:
    """``body`` (a sign request) carrying the signed ``request``, its metadata naming
    ``initiator`` and the request's time (or ``created_at``), as the service sends them."""
    body["initiator_request"] = dict(request)
    meta = body["metadata"]
    assert isinstance(meta, dict)
    meta["initiator"] = {"type": "user", "id": initiator}
    meta["created_at"] = issued_at(request) if created_at is None else created_at
    return body


def forward_solana(
    body: MutableMapping[str, object],
    destination: bytes,
    lamports: int,
    credentials: ApiKeyCredentials = ALICE,
) -> MutableMapping[str, object]:
    """``body`` carrying a fresh request signed with ``credentials`` (alice's by
    default) for ``lamports`` to the Solana key ``destination``."""
    amount = format_decimal_amount(lamports, 9)
    request = signed_request(credentials, create_body(str(solana.Pubkey(destination)), amount))
    return forward(body, request)
