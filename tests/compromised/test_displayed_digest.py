"""An approval is of the transfer the approver was shown, and counts for that one only
(issue: co-signers decide on signed facts only; DESIGN.md invariant 13).

The test is the compromised server (tests/compromised/harness.py) with its REST API on
a loopback socket (tests/compromised/loopback_api.py serving tests/approval_stub.py).
Alice asked for two transfers of 2 SOL, each held for one treasury approval: A to the
destination carol expects, B to another. The server wants B approved. It shows carol's
client (the SDK's ``approve_transaction``) the fields of A with the intent digest of B:
the client recomputes the digest from what it shows and signs nothing. Carol then
approves A as shown, and the server sends that approval with B to three co-signer
processes (production profile, a 2-of-3 FROST Ed25519 key, alice's signed requests
forwarded): each recomputes B's intent from the payload and counts no approval.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.signing import VerifyKey

from shardvault.chains import solana
from shardvault.policy import parse_initiator_keys
from shardvault.policy.intent import TransferIntent, intent_digest
from shardvault.sdk import ApiKeyCredentials, DigestMismatchError, ShardvaultClient
from shardvault.sdk.approvals import INTENT_FIELDS
from tests.approval_stub import StubServer, stub_view
from tests.compromised.harness import CompromisedServer
from tests.compromised.loopback_api import LoopbackApi
from tests.cosigner.initiator_support import INITIATORS, forward_solana
from tests.cosigner.support import (
    CAROL,
    DESTINATION,
    LAMPORTS_PER_SOL,
    OTHER_DESTINATION,
    POLICY,
    metadata,
    sign_request,
    solana_transfer,
)

KEY_ID = "sol-approved"
WORKSPACE_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
LAMPORTS = 2 * LAMPORTS_PER_SOL
"""2 SOL: over the policy's 1 SOL, so one treasury approval is needed (carol's)."""
CAROL_KEY = Ed25519PrivateKey.from_private_bytes(bytes(CAROL))
"""Carol's TEST-ONLY approver key (tests/cosigner/support.py), as her client holds it."""


@pytest.fixture(scope="module")
def vault_key(server: CompromisedServer) -> bytes:
    server.start("production")
    server.install(POLICY, initiators=parse_initiator_keys(INITIATORS))
    return server.frost_key(KEY_ID, metadata())


@dataclass(frozen=True)
class Transfer:
    """One of alice's transfers of 2 SOL from the vault key to ``destination``."""

    vault_key: bytes
    destination: bytes
    transaction_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def intent(self) -> TransferIntent:
        return TransferIntent(
            workspace_id=WORKSPACE_ID,
            transaction_id=self.transaction_id,
            network="solana",
            source=str(solana.Pubkey(self.vault_key)),
            destination=str(solana.Pubkey(self.destination)),
            asset="SOL",
            amount=LAMPORTS,
        )

    @property
    def digest(self) -> bytes:
        return intent_digest(self.intent)

    def view(self, digest: bytes) -> dict[str, object]:
        """The transfer as the server's API shows it, with ``digest`` as its digest."""
        return stub_view(digest, self.intent, decimals=9)

    def sign_body(self, approvals: list[dict[str, object]]) -> tuple[bytes, dict[str, object]]:
        """The sign request the server sends: the message, alice's signed create request
        (tests/cosigner/initiator_support.py), the ids of the intent, ``approvals``."""
        message = solana_transfer(
            self.vault_key, self.destination, LAMPORTS, blockhash=self.transaction_id.encode()
        )
        body = sign_request(message, (1, 2), key_id=KEY_ID, approvals=approvals)
        body["metadata"] = {
            **metadata(),
            "network": "solana",
            "transaction_id": self.transaction_id,
            "workspace_id": WORKSPACE_ID,
        }
        forward_solana(body, self.destination, LAMPORTS)
        return message, body


@pytest.fixture
def shown(vault_key: bytes) -> Transfer:
    """Transfer A: to the destination carol expects."""
    return Transfer(vault_key, DESTINATION)


@pytest.fixture
def wanted(vault_key: bytes) -> Transfer:
    """Transfer B: to another destination, the one the server wants approved."""
    return Transfer(vault_key, OTHER_DESTINATION)


@pytest.fixture
def api() -> Iterator[tuple[StubServer, LoopbackApi]]:
    """The server's API, showing nothing until a test gives it a view."""
    stub = StubServer({})
    with LoopbackApi(stub.handle) as loopback:
        yield stub, loopback


def _approve(
    api: tuple[StubServer, LoopbackApi], transfer: Transfer, view: dict[str, object]
) -> None:
    """Carol's client, pointed at the server's API, approves ``transfer`` as ``view``
    shows it."""
    stub, loopback = api
    stub.view, stub.transaction_id = view, transfer.transaction_id
    credentials = ApiKeyCredentials("key-carol", Ed25519PrivateKey.generate())
    with ShardvaultClient(loopback.url, credentials, max_attempts=1) as client:
        client.approve_transaction(transfer.transaction_id, approver="carol", key=CAROL_KEY)


def test_the_client_refuses_to_approve_another_digest_than_the_transfer_it_shows(
    api, shown, wanted
):
    stub, loopback = api
    with pytest.raises(DigestMismatchError) as refused:
        _approve(api, shown, shown.view(wanted.digest))
    assert refused.value.fields == INTENT_FIELDS
    assert "not the digest of the transfer it shows" in str(refused.value)
    # Nothing was signed or sent: the client read the transaction and stopped.
    assert stub.approvals == []
    assert loopback.requests == [("GET", f"/v1/transactions/{shown.transaction_id}")]


@pytest.mark.parametrize("claimed", ["shown", "wanted"])
def test_an_approval_of_the_transfer_shown_does_not_count_for_another(
    server, api, shown, wanted, claimed
):
    """The server sends carol's approval of A with B, naming A's digest (the one she
    signed) or B's (the one it needs): at each co-signer it does not count, and B is
    refused under the approval rule. With A, the same approval counts: A is signed."""
    stub, _ = api
    _approve(api, shown, shown.view(shown.digest))
    [posted] = stub.approvals
    digest = shown.digest if claimed == "shown" else wanted.digest

    _, body = wanted.sign_body([{**posted, "digest": digest.hex()}])
    results = server.run_each(body, (1, 2))
    assert {(r["status"], r.get("check"), r.get("rule")) for r in results.values()} == {
        ("refused", "policy", "sol-needs-approval")
    }, results
    error = (
        "ApprovalForAnotherTransactionError" if claimed == "shown" else "BadApprovalSignatureError"
    )
    assert all(f"an approval did not count ({error}" in r["reason"] for r in results.values())

    message, body = shown.sign_body([{**posted, "digest": shown.digest.hex()}])
    results = server.run_ok(body, (1, 2))
    VerifyKey(shown.vault_key).verify(message, bytes.fromhex(str(results[1]["signature"])))
