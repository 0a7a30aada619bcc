"""The pipeline decides on, and sends the co-signers, only signed facts (hardhat; SQLite
and PostgreSQL): the server's own evaluation names assets as the signed registry does, values
them at its static prices and at signed price reports, and a signing request carries
those reports, never a price map or a token's decimals (docs/policy.md, "Prices")."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shardvault.sdk.prices import sign_price_report
from shardvault.service import price_reports, transactions
from shardvault.service.pipeline import PipelineRuntime, PipelineWorker
from shardvault.service.platform import Platform
from shardvault.service.signing import SigningError, SignRequest
from shardvault.store import Database
from tests.api.support import make_platform
from tests.chains.ethereum.hardhat import HardhatNode, hardhat_node
from tests.service.pipeline_support import (
    ReusedKeygenBackend,
    activate_policy,
    make_token_wallets,
    make_workspace,
    open_custody,
    treasury_policy,
)

__all__ = ["hardhat_node"]

RECIPIENT = "0x976EA74026E726554dB657fA54763abd0C3a0aa9"
ORACLE = Ed25519PrivateKey.from_private_bytes(bytes(range(3, 35)))
"""A TEST-ONLY price key."""


class RecordingBackend(ReusedKeygenBackend):
    """The local ceremony backend, keeping every signing request it was given."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.requests: list[SignRequest] = []

    def sign(self, request: SignRequest) -> bytes:
        self.requests.append(request)
        return super().sign(request)

    def sign_many(self, requests: Sequence[SignRequest]) -> list[bytes | SigningError]:
        self.requests.extend(requests)
        return super().sign_many(requests)


@pytest.fixture
def platform(database: Database) -> Platform:
    return make_platform(database)


def test_the_pipeline_decides_and_signs_on_signed_facts_only(
    platform: Platform, hardhat_node: HardhatNode, tmp_path: Path
) -> None:
    ws = make_workspace(platform)
    backend = RecordingBackend(open_custody(tmp_path / "custody"))
    # The table's price for TST is the server's word; the registry below gives TST none,
    # so only a signed report prices it.
    made = make_token_wallets(ws, backend, hardhat_node, price="0.0001")
    token, funded, owner = made.token, made.eth, ws.owner.principal
    oracle = ORACLE.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    registry = {
        "format": "shardvault.asset-registry/v1",
        "networks": [
            {
                "name": "hardhat",
                "chain": "ethereum",
                "chain_id": hardhat_node.chain_id,
                "assets": [
                    {"id": "ETH", "native": True, "decimals": 18, "price": "3000"},
                    {"id": "TST", "contract": token, "decimals": 18},
                ],
            }
        ],
        "price_keys": [{"id": "oracle", "algorithm": "ed25519", "public_key": oracle}],
        "max_price_age": 600,
    }
    document = treasury_policy(
        ws,
        [
            {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
            {
                "name": "tst-large",
                "when": {"asset": ["TST"], "amount": {"over": "10"}},
                "action": "block",
            },
            {
                "name": "large-value",
                "when": {"value": {"over": "1000"}},
                "action": "require_approvals",
                "approvals": {"groups": [{"group": "treasury", "count": 1}], "deadline": "1h"},
            },
            {"name": "rest", "action": "allow"},
        ],
    )
    activate_policy(ws, document, assets=registry)
    report = sign_price_report(
        ORACLE,
        signer="oracle",
        network="hardhat",
        asset="TST",
        price="2",
        currency="USD",
        observed_at=int(time.time()) - 5,
    )
    with platform.unit_of_work() as uow:
        price_reports.submit_price_report(uow, owner, report, now=int(time.time()))

    def send(wallet_id: str, amount: str) -> str:
        with platform.unit_of_work() as uow:
            return transactions.create_transaction(
                uow, ws.signer.principal, wallet_id=wallet_id, destination=RECIPIENT, amount=amount
            ).id

    def view(tx_id: str) -> transactions.TransactionView:
        with platform.unit_of_work() as uow:
            return transactions.get_transaction(uow, owner, tx_id)

    over_amount = send(made.tst_wallet_id, "12.5")  # TST, as the registry names it: over 10
    priced = send(made.tst_wallet_id, "5")  # 5 TST at the signed 2 USD: 10 USD
    eth = send(funded.wallet_id, "1")  # 1 ETH at the static 3000 USD: over 1000
    worker = PipelineWorker(platform, PipelineRuntime(backend, confirmation_poll_s=0.05))
    worker.drain(timeout_s=60)
    assert (view(over_amount).status, view(over_amount).policy_rule) == ("blocked", "tst-large")
    assert (view(eth).status, view(eth).policy_rule) == ("pending_approval", "large-value")
    done = view(priced)
    assert (done.status, done.policy_rule) == ("completed", "rest"), done.status_reason
    assert {r.session.split(":")[0] for r in backend.requests} == {priced}
    for request in backend.requests:
        assert request.price_reports == (report,)
        assert "token_decimals" not in request.metadata
        assert not hasattr(request, "prices")
