"""One approval, one transfer; one velocity limit across every quorum (issue: co-signers
decide on signed facts only).

The test is the compromised server (tests/compromised/harness.py): it holds an approval
of one transfer and the relay, and tries to turn them into more than that transfer.
Three co-signer processes in the production profile hold a 2-of-3 CGGMP21 key; the
transfers are hardhat transactions, and what reaches the chain is read back from it.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Sequence

import pytest
from eth_account import Account

from shardvault.chains import ethereum
from shardvault.devchain import HardhatNode
from shardvault.policy.initiators import parse_initiator_keys
from shardvault.service.transactions import intent_digest
from tests.compromised.harness import CompromisedServer
from tests.cosigner.initiator_support import (
    ALICE,
    INITIATORS,
    create_body,
    issued_at,
    signed_request,
)
from tests.cosigner.support import POLICY as CAROL_ONLY
from tests.cosigner.support import VAULT, approval

WORKSPACE_ID = "3c9d5a1e-7b2f-4c8d-9e0a-1b2c3d4e5f60"
KEY_ID = "eth-key"
FEES = ethereum.FeeParameters(2 * 10**9, 10**9, 21_000)
POLICY = {
    "format": "shardvault.policy/v1",
    "version": 1,
    "reference_currency": "USD",
    "approvers": {},
    "groups": {"treasury": ["carol"]},
    "rules": [
        {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
        {
            "name": "daily-limit",
            "when": {
                "operation": ["transfer"],
                "asset": ["ETH"],
                "velocity": [
                    {"window": "24h", "per": "destination", "measure": "amount", "over": "2"}
                ],
            },
            "action": "block",
        },
        {
            "name": "large-needs-approval",
            "when": {"asset": ["ETH"], "amount": {"over": "0.9"}},
            "action": "require_approvals",
            "approvals": {"groups": [{"group": "treasury", "count": 1}], "deadline": "1h"},
        },
        {"name": "small", "when": {"operation": ["transfer"]}, "action": "allow"},
    ],
    # 21,000 gas at up to ~2.4 gwei: FEES (2 gwei) fit, a 10 gwei transaction does not.
    "fee_caps": {"hardhat": {"max_fee_wei": "50000000000000"}},
}


def _policy() -> dict[str, object]:
    return {**POLICY, "approvers": CAROL_ONLY["approvers"]}


@pytest.fixture(scope="module")
def vault(server: CompromisedServer, chain: HardhatNode):
    server.start("development")
    server.install(_policy(), initiators=parse_initiator_keys(INITIATORS))
    return server.ecdsa_key(KEY_ID, _metadata())


def _metadata(**extra: object) -> dict[str, object]:
    return {
        "initiator": {"type": "user", "id": "alice"},
        "source": {"vault": VAULT},
        "created_at": int(time.time()),
        **extra,
    }


def _address(root, path: str) -> str:
    public = root.derive(path).public_key.to_bytes()
    return ethereum.address_from_public_key(public).checksummed


def _destination() -> str:
    return Account.create().address


class Transfer:
    """One transfer as the server made it: ids, source path, intent, approval."""

    def __init__(self, root, path: str, destination: str, ether: str, *, approved: bool):
        self.transaction_id = str(uuid.uuid4())
        self.path = path
        self.source = _address(root, path)
        self.destination = destination
        self.ether = ether
        self.approvals: list[dict[str, object]] = []
        # Alice's own signed create request, which the server keeps and forwards.
        index = int(path.rsplit("/", 1)[1])
        self.request = signed_request(
            ALICE, create_body(destination, ether, wallet_id="wallet-eth", source_index=index)
        )
        if approved:
            digest = intent_digest(
                workspace_id=WORKSPACE_ID,
                transaction_id=self.transaction_id,
                network="hardhat",
                source=self.source,
                destination=destination,
                asset="ETH",
                amount_base_units=int(ethereum.parse_ether(ether)),
            )
            self.approvals = [approval(digest)]

    def payload(self, nonce: int) -> ethereum.FeeMarketTransaction:
        return ethereum.native_transfer(
            chain_id=31337, nonce=nonce, to=self.destination, amount=self.ether, fees=FEES
        )

    def sign_body(self, tx, signers: Sequence[int], label: str) -> dict[str, object]:
        return {
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
                transaction_id=self.transaction_id,
                workspace_id=WORKSPACE_ID,
                created_at=issued_at(self.request),
            ),
            "approvals": self.approvals,
            "initiator_request": self.request,
        }


def _sign(server: CompromisedServer, transfer: Transfer, nonce: int, signers: Sequence[int]):
    label = server.presign(KEY_ID, transfer.path, signers)
    tx = transfer.payload(nonce)
    return tx, server.run(transfer.sign_body(tx, signers, label), signers)


def _statuses(results) -> set[tuple[object, object]]:
    return {(r["status"], r.get("check")) for r in results.values()}


def _broadcast(chain: HardhatNode, tx, signature_hex: str) -> None:
    signature = bytes.fromhex(signature_hex)
    r, s, parity = (
        int.from_bytes(signature[:32], "big"),
        int.from_bytes(signature[32:64], "big"),
        signature[64],
    )
    signed = ethereum.assemble(tx, r, s, parity)
    chain.rpc("eth_sendRawTransaction", ["0x" + ethereum.encode_signed(signed).hex()])


def test_a_replayed_approval_puts_exactly_one_transaction_on_chain(server, chain, vault):
    transfer = Transfer(vault, "m/0/1", _destination(), "0.95", approved=True)
    chain.fund(transfer.source, 10**19)
    tx, results = _sign(server, transfer, 0, (1, 2))
    assert _statuses(results) == {("ok", None)}, results
    _broadcast(chain, tx, str(results[1]["signature"]))
    # The server resends the approved transfer with the next nonce, to each other quorum.
    for quorum in ((1, 3), (2, 3)):
        _, replay = _sign(server, transfer, 1, quorum)
        assert ("refused", "replay") in _statuses(replay), replay
        assert all(r["status"] != "ok" for r in replay.values()), replay
    count = int(str(chain.rpc("eth_getTransactionCount", [transfer.source, "latest"])), 16)
    assert count == 1
    balance = int(str(chain.rpc("eth_getBalance", [transfer.destination, "latest"])), 16)
    assert balance == ethereum.parse_ether("0.95")


def test_replays_racing_to_the_cosigner_two_quorums_share_get_one_signature(server, vault):
    transfer = Transfer(vault, "m/0/2", _destination(), "0.95", approved=True)
    bodies = []
    for nonce, quorum in ((0, (1, 2)), (1, (2, 3))):
        label = server.presign(KEY_ID, transfer.path, quorum)
        bodies.append((transfer.sign_body(transfer.payload(nonce), quorum, label), quorum))
    # Both at once: co-signer 2 receives them in one poll.
    threads = [
        threading.Thread(target=server.submit, args=(body, quorum)) for body, quorum in bodies
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcomes = [server.results(body, quorum) for body, quorum in bodies]
    signed = [o for o in outcomes if _statuses(o) == {("ok", None)}]
    assert len(signed) == 1, outcomes
    (refused,) = [o for o in outcomes if o not in signed]
    assert ("refused", "replay") in _statuses(refused), refused


def test_a_transfer_split_under_a_velocity_limit_across_rotating_quorums_is_refused(server, vault):
    """0.8 + 0.8 + 0.8 ETH to one destination against a 2 ETH daily limit, each through
    another quorum: every co-signer alone has seen only 1.6 ETH of it."""
    destination = _destination()
    outcomes = []
    for nonce, quorum in enumerate(((1, 2), (1, 3), (2, 3))):
        transfer = Transfer(vault, "m/0/3", destination, "0.8", approved=False)
        outcomes.append(_sign(server, transfer, nonce, quorum)[1])
    assert _statuses(outcomes[0]) == {("ok", None)}, outcomes[0]
    assert _statuses(outcomes[1]) == {("ok", None)}, outcomes[1]
    third = outcomes[2]
    assert {r["status"] for r in third.values()} == {"refused"}, third
    assert {r.get("rule") for r in third.values()} == {"daily-limit"}, third


def test_an_approval_older_than_its_lifetime_is_refused_whatever_created_at_says(server, vault):
    """The approver approved two hours ago; the rule gives approvals one hour. The
    server sends the transfer with a fresh ``created_at``."""
    transfer = Transfer(vault, "m/0/4", _destination(), "0.95", approved=False)
    digest = intent_digest(
        workspace_id=WORKSPACE_ID,
        transaction_id=transfer.transaction_id,
        network="hardhat",
        source=transfer.source,
        destination=transfer.destination,
        asset="ETH",
        amount_base_units=int(ethereum.parse_ether("0.95")),
    )
    # An approval given two hours ago (its signed_at says so, under carol's signature).
    transfer.approvals = [approval(digest, signed_at=int(time.time()) - 7200)]
    _, results = _sign(server, transfer, 0, (1, 3))
    assert {r["status"] for r in results.values()} == {"refused"}, results
    assert all("deadline" in str(r.get("reason")) for r in results.values()), results


def test_an_approval_of_another_transfer_than_the_one_signed_does_not_count(server, vault):
    """The server collected carol's approval of one transfer (the one her client showed
    her) and sends it with another: same amount, another destination."""
    shown = Transfer(vault, "m/0/5", _destination(), "0.95", approved=True)
    sent = Transfer(vault, "m/0/5", _destination(), "0.95", approved=False)
    sent.transaction_id = shown.transaction_id
    sent.approvals = shown.approvals
    _, results = _sign(server, sent, 0, (1, 2))
    assert {r["status"] for r in results.values()} == {"refused"}, results
    assert {r.get("rule") for r in results.values()} == {"large-needs-approval"}, results
    assert all(
        "ApprovalForAnotherTransactionError" in str(r.get("reason")) for r in results.values()
    ), results


def test_a_fee_above_the_signed_cap_is_refused(server, vault):
    """An approved transfer signed with a 10 gwei fee: 21,000 gas x 10 gwei is over the
    policy's 0.00005 ETH cap for hardhat."""
    transfer = Transfer(vault, "m/0/6", _destination(), "0.1", approved=False)
    label = server.presign(KEY_ID, transfer.path, (2, 3))
    tx = ethereum.native_transfer(
        chain_id=31337,
        nonce=0,
        to=transfer.destination,
        amount="0.1",
        fees=ethereum.FeeParameters(10 * 10**9, 10**9, 21_000),
    )
    results = server.run(transfer.sign_body(tx, (2, 3), label), (2, 3))
    assert _statuses(results) == {("refused", "fee")}, results
    assert all("max_fee_wei" in str(r.get("reason")) for r in results.values()), results
