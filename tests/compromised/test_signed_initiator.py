"""The initiator comes from the initiator's own signed request, never from the server
(issue: co-signers decide on signed facts only).

The test is the compromised server (tests/compromised/harness.py). Bob is a settlement
bot the policy lets send any amount; alice may send up to 0.5 ETH alone, more with one
treasury approval (alice and carol are the treasury, and nobody approves their own
request). The server holds what a real one holds: API requests alice signed, an
approval of hers, and an API key of its own that it registered for bob. Each attack
lies about who asked, or reuses what alice signed for something else.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Sequence

import pytest
from eth_account import Account

from shardvault.chains import ethereum
from shardvault.policy.initiators import parse_initiator_keys
from shardvault.sdk.auth import ApiKeyCredentials
from shardvault.service.transactions import intent_digest
from tests.compromised.harness import CompromisedServer
from tests.cosigner.initiator_support import (
    ALICE,
    INITIATORS,
    SERVER_KEY_FOR_BOB,
    create_body,
    issued_at,
    signed_request,
)
from tests.cosigner.support import CAROL, VAULT, _key, approval

WORKSPACE_ID = "5b0e9a7c-2d4f-4e61-8a3b-9c7d1e2f3a40"
KEY_ID = "eth-initiators"
FEES = ethereum.FeeParameters(2 * 10**9, 10**9, 21_000)
ALICE_APPROVER = _key("approver-alice")


POLICY = {
    "format": "shardvault.policy/v1",
    "version": 1,
    "reference_currency": "USD",
    "approvers": {
        "carol": {"algorithm": "ed25519", "public_key": bytes(CAROL.verify_key).hex()},
        "alice": {"algorithm": "ed25519", "public_key": bytes(ALICE_APPROVER.verify_key).hex()},
    },
    "groups": {"treasury": ["alice", "carol"]},
    "rules": [
        {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
        {
            "name": "bob-settles",
            "when": {"initiator": {"users": ["bob"]}, "asset": ["ETH"]},
            "action": "allow",
        },
        {
            "name": "alice-small",
            "when": {
                "initiator": {"users": ["alice"]},
                "asset": ["ETH"],
                "amount": {"up_to": "0.5"},
            },
            "action": "allow",
        },
        {
            "name": "treasury-approves",
            "when": {"operation": ["transfer"]},
            "action": "require_approvals",
            "approvals": {"groups": [{"group": "treasury", "count": 1}], "deadline": "1h"},
        },
    ],
}


@pytest.fixture(scope="module")
def vault(server: CompromisedServer):
    server.start("development")
    server.install(POLICY, initiators=parse_initiator_keys(INITIATORS))
    return server.ecdsa_key(KEY_ID, _metadata("alice", int(time.time())))


def _metadata(initiator: str, created_at: int, **extra: object) -> dict[str, object]:
    return {
        "initiator": {"type": "user", "id": initiator},
        "source": {"vault": VAULT},
        "created_at": created_at,
        **extra,
    }


def _signed_request(
    credentials: ApiKeyCredentials, destination: str, ether: str, source_index: int
) -> dict[str, str]:
    """What the server keeps of a ``POST /v1/transactions`` the SDK signed."""
    body = create_body(destination, ether, wallet_id="wallet-eth", source_index=source_index)
    return signed_request(credentials, body)


class Transfer:
    """A transfer the server sends: what the payload does and what it claims."""

    def __init__(self, root, index: int, destination: str, ether: str) -> None:
        self.transaction_id = str(uuid.uuid4())
        self.path = f"m/0/{index}"
        public = root.derive(self.path).public_key.to_bytes()
        self.source = ethereum.address_from_public_key(public).checksummed
        self.destination = destination
        self.ether = ether

    def digest(self) -> bytes:
        return intent_digest(
            workspace_id=WORKSPACE_ID,
            transaction_id=self.transaction_id,
            network="hardhat",
            source=self.source,
            destination=self.destination,
            asset="ETH",
            amount_base_units=int(ethereum.parse_ether(self.ether)),
        )

    def body(
        self,
        server: CompromisedServer,
        signers: Sequence[int],
        *,
        initiator: str,
        request: dict[str, str] | None,
        approvals: Sequence[dict[str, object]] = (),
        nonce: int = 0,
    ) -> dict[str, object]:
        label = server.presign(KEY_ID, self.path, signers)
        tx = ethereum.native_transfer(
            chain_id=31337, nonce=nonce, to=self.destination, amount=self.ether, fees=FEES
        )
        created_at = issued_at(request) if request is not None else int(time.time())
        body: dict[str, object] = {
            "kind": "sign",
            "request_id": secrets.token_hex(8),
            "session_id": secrets.token_hex(32),
            "vault": VAULT,
            "key_id": KEY_ID,
            "signers": list(signers),
            "chain": "ethereum",
            "payload": ethereum.encode_unsigned(tx).hex(),
            "path": self.path,
            "presignature": label,
            "metadata": _metadata(
                initiator,
                created_at,
                transaction_id=self.transaction_id,
                workspace_id=WORKSPACE_ID,
            ),
            "approvals": list(approvals),
        }
        if request is not None:
            body["initiator_request"] = request
        return body


def _destination() -> str:
    return Account.create().address


def _refused(results: dict[int, dict[str, object]], check: str, *words: str) -> None:
    """Every party that answered refused with ``check``, its reason naming ``words``;
    none signed."""
    assert results, results
    assert {r["status"] for r in results.values()} == {"refused"}, results
    assert {r.get("check") for r in results.values()} == {check}, results
    for word in words:
        assert all(word in str(r.get("reason")) for r in results.values()), results


def test_an_initiator_the_server_names_without_a_signed_request_is_refused(server, vault):
    """2 ETH that nobody asked for, claimed as bob's (who may send any amount)."""
    transfer = Transfer(vault, 1, _destination(), "2")
    body = transfer.body(server, (1, 2), initiator="bob", request=None)
    _refused(server.run(body, (1, 2)), "initiator", "bob-settles")


def test_a_request_signed_with_a_key_the_admins_never_listed_is_refused(server, vault):
    """The server registered a key of its own for bob and signs bob's requests with it."""
    transfer = Transfer(vault, 2, _destination(), "2")
    request = _signed_request(SERVER_KEY_FOR_BOB, transfer.destination, "2", 2)
    body = transfer.body(server, (1, 3), initiator="bob", request=request)
    _refused(server.run(body, (1, 3)), "initiator", "key-bob-2")


def test_a_self_approval_passed_off_as_another_initiators_transfer_is_refused(server, vault):
    """Alice asked for 2 ETH and approved it herself; the server names carol as the
    initiator so that alice's approval would count."""
    transfer = Transfer(vault, 3, _destination(), "2")
    request = _signed_request(ALICE, transfer.destination, "2", 3)
    own = approval(transfer.digest(), approver="alice", key=ALICE_APPROVER)
    body = transfer.body(server, (2, 3), initiator="carol", request=request, approvals=[own])
    _refused(server.run(body, (2, 3)), "initiator", "key-alice")


def test_a_signed_request_sent_with_a_payload_that_pays_someone_else_is_refused(server, vault):
    """Alice signed 0.1 ETH to one address; the payload pays 0.1 ETH to another."""
    asked = _destination()
    transfer = Transfer(vault, 4, _destination(), "0.1")
    request = _signed_request(ALICE, asked, "0.1", 4)
    body = transfer.body(server, (1, 2), initiator="alice", request=request)
    _refused(server.run(body, (1, 2)), "initiator", "destination")


def test_one_signed_request_buys_one_transaction(server, vault):
    """Alice's request for 0.1 ETH is signed once; the server sends it again as a new
    transaction (a fresh id, the next nonce) through another quorum."""
    destination = _destination()
    request = _signed_request(ALICE, destination, "0.1", 5)
    first = Transfer(vault, 5, destination, "0.1")
    body = first.body(server, (1, 2), initiator="alice", request=request)
    results = server.run(body, (1, 2))
    assert {r["status"] for r in results.values()} == {"ok"}, results
    second = Transfer(vault, 5, destination, "0.1")
    body = second.body(server, (2, 3), initiator="alice", request=request, nonce=1)
    _refused(server.run(body, (2, 3)), "initiator", "one signed request makes one transaction")
