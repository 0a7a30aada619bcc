"""A stub API server for address tests: one Ethereum wallet whose address the server
shows, with whatever attestations a test gives it. Served through
:class:`httpx.MockTransport`, so the SDK and the CLI run unchanged.

The co-signers' identities and the vault's root key are TEST-ONLY, made from labels.
"""

from __future__ import annotations

import hashlib
from typing import Any

import coincurve
import httpx

from shardvault.crypto.channel import PartyIdentity
from shardvault.policy.address_attestation import (
    AddressStatement,
    make_statement,
    parse_encoding,
    sign_statement,
)
from shardvault.sdk import ApiKeyCredentials, ShardvaultClient, generate_key_pair

WORKSPACE = "ws-acme"
VAULT = "vault-1"
WALLET = "wallet-1"
ADDRESS_ID = "address-1"
PATH = "m/44/60/1/0/0"
KEY_ID = "ecdsa-secp256k1-0001"


def label(text: str) -> bytes:
    """TEST-ONLY 32 bytes named by ``text``."""
    return hashlib.sha256(f"TEST-ONLY {text}".encode()).digest()


def identity(party: int, name: str = "cosigner") -> PartyIdentity:
    """A TEST-ONLY co-signer identity (``name`` tells the honest from the server's)."""
    return PartyIdentity(party, label(f"{name}-{party}-sign"), label(f"{name}-{party}-box"))


COSIGNERS = {p: identity(p) for p in (1, 2, 3)}
SERVER_OWN = {p: identity(p, "server") for p in (1, 2, 3, 4)}
FINGERPRINTS = {p: i.public.fingerprint() for p, i in COSIGNERS.items()}
ROOT = coincurve.PrivateKey(label("vault root")).public_key.format()
CHAIN_CODE = label("vault chain code")
SERVERS_KEY = coincurve.PrivateKey(label("the server's own key")).public_key.format()


def statement(party: int = 1, **changes: Any) -> AddressStatement:
    """The statement co-signer ``party`` makes for the wallet's address (``changes``
    alter what it is made from: ``vault``, ``path``, ``root_public_key``...)."""
    fields: dict[str, Any] = {
        "workspace": WORKSPACE,
        "party": party,
        "vault": VAULT,
        "key_id": KEY_ID,
        "scheme": "ecdsa-secp256k1",
        "root_public_key": ROOT,
        "chain_code": CHAIN_CODE,
        "min_signers": 2,
        "max_signers": 3,
        "path": PATH,
        "encoding": parse_encoding("ethereum"),
    }
    fields.update(changes)
    return make_statement(**fields)


def attestations(
    parties: tuple[int, ...] = (1, 2, 3),
    identities: dict[int, PartyIdentity] = COSIGNERS,
    **changes: Any,
) -> list[dict[str, Any]]:
    """Signed attestations of ``parties`` (transport form)."""
    return [sign_statement(identities[p], statement(p, **changes)).to_json() for p in parties]


def honest_address() -> str:
    """The vault key's address at :data:`PATH`."""
    return str(statement(1).address)


def servers_address() -> str:
    """An address of a key only the server holds."""
    return str(statement(1, root_public_key=SERVERS_KEY).address)


def address_view(
    address: str, attested: list[dict[str, Any]], *, index: int = 0
) -> dict[str, object]:
    """The address as the server shows it."""
    return {
        "id": ADDRESS_ID if index == 0 else f"address-{index + 1}",
        "wallet_id": WALLET,
        "vault_id": VAULT,
        "index": index,
        "path": PATH if index == 0 else f"m/44/60/1/0/{index}",
        "scheme": "ecdsa-secp256k1",
        "address": address,
        "public_key": "02" + "00" * 32,
        "created_at": "2025-11-25T10:00:00Z",
        "attestations": attested,
        "attested": bool(attested),
    }


class AddressStub:
    """Serves one wallet with the address views it is given; a new address is the next
    view in ``fresh``."""

    def __init__(
        self, views: list[dict[str, object]], fresh: list[dict[str, object]] | None = None
    ) -> None:
        self.views = views
        self.fresh = list(fresh or [])

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path == f"/v1/wallets/{WALLET}":
            return httpx.Response(200, json=self.wallet())
        if request.method == "POST" and path == "/v1/wallets":
            return httpx.Response(201, json=self.wallet())
        if request.method == "POST" and path == f"/v1/wallets/{WALLET}/addresses":
            view = self.fresh.pop(0)
            self.views.append(view)
            return httpx.Response(201, json=view)
        if request.method == "POST" and path.startswith(f"/v1/wallets/{WALLET}/addresses/"):
            wanted = path.split("/")[-2]
            for view in self.views:
                if view["id"] == wanted:
                    return httpx.Response(200, json=view)
        return httpx.Response(404, json={"title": "Not Found", "detail": path})

    def wallet(self) -> dict[str, object]:
        return {
            "id": WALLET,
            "vault_id": VAULT,
            "asset": "ETH",
            "network": "hardhat",
            "addresses": self.views,
            "created_at": "2025-11-25T10:00:00Z",
        }


def stub_client(server: AddressStub) -> ShardvaultClient:
    return ShardvaultClient(
        "http://stub.invalid",
        ApiKeyCredentials.from_pem("key-viewer", generate_key_pair("EdDSA")[0]),
        transport=httpx.MockTransport(server.handle),
        max_attempts=1,
    )
