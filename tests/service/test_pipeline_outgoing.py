"""What happens to an outgoing EVM transfer after signing, on a real hardhat node: a
reorganisation that drops it (the same bytes go out again, nothing is signed again), a
node that refuses it (its nonce is given back, so the next transfer is not stuck
behind it), and one that never confirms (it ends, after the runtime's limit)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import select, text

from shardvault.service import transactions
from shardvault.service.pipeline import PipelineRuntime, PipelineWorker
from shardvault.service.platform import Platform
from shardvault.service.signing import SignRequest
from shardvault.store import Database
from shardvault.store.models_vaults import Network, NonceAllocation, NonceState
from tests.api.support import make_platform
from tests.chains.ethereum.hardhat import HardhatNode, hardhat_node
from tests.service.pipeline_support import (
    Funded,
    ReusedKeygenBackend,
    Workspace,
    activate_policy,
    fund,
    make_eth_vault,
    make_workspace,
    open_custody,
    policy_document,
)

__all__ = ["hardhat_node"]

RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


class CountingBackend(ReusedKeygenBackend):
    """Counts the signatures it is asked for."""

    def __init__(self, custody: object) -> None:
        super().__init__(custody)  # type: ignore[arg-type]
        self.signed: list[str] = []
        self._lock = threading.Lock()

    def sign(self, request: SignRequest) -> bytes:
        with self._lock:
            self.signed.append(request.session)
        return super().sign(request)


# The chain's side is what these tests are about; the store's is the same on both
# databases (tests/service/test_pipeline.py runs the states on PostgreSQL too).
pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


@pytest.fixture
def platform(database: Database) -> Platform:
    return make_platform(database)


@pytest.fixture
def chain(hardhat_node: HardhatNode) -> Iterator[HardhatNode]:
    """The session's node, put back as it was after the test (automine on)."""
    snapshot = hardhat_node.rpc("evm_snapshot", [])
    try:
        yield hardhat_node
    finally:
        hardhat_node.rpc("evm_setAutomine", [True])
        hardhat_node.rpc("evm_revert", [snapshot])


@pytest.fixture
def setup(
    platform: Platform, chain: HardhatNode, tmp_path: Path
) -> tuple[Workspace, Funded, CountingBackend]:
    ws = make_workspace(platform)
    backend = CountingBackend(open_custody(tmp_path / "custody"))
    funded = make_eth_vault(ws, backend, chain.url, chain.chain_id)
    fund(chain, funded.address)
    activate_policy(ws, policy_document(ws, version=1, limit_eth="100"))
    return ws, funded, backend


def _worker(ws: Workspace, backend: CountingBackend, **options: float) -> PipelineWorker:
    runtime = PipelineRuntime(backend, confirmation_poll_s=0.02, broadcast_retry_s=0.05, **options)
    return PipelineWorker(ws.platform, runtime)


def _send(ws: Workspace, funded: Funded, amount: str) -> str:
    with ws.platform.unit_of_work() as uow:
        view = transactions.create_transaction(
            uow,
            ws.signer.principal,
            wallet_id=funded.wallet_id,
            destination=RECIPIENT,
            amount=amount,
        )
    return view.id


def _get(ws: Workspace, tx_id: str) -> transactions.TransactionView:
    with ws.platform.unit_of_work() as uow:
        return transactions.get_transaction(uow, ws.owner.principal, tx_id)


def _trail(ws: Workspace, tx_id: str) -> list[str]:
    with ws.platform.unit_of_work() as uow:
        return list(
            uow.session.scalars(
                text("SELECT action FROM audit_events WHERE resource_id = :id ORDER BY seq"),
                {"id": tx_id},
            )
        )


def _require_confirmations(ws: Workspace, count: int) -> None:
    with ws.platform.unit_of_work() as uow:
        for network in uow.session.scalars(select(Network)):
            network.required_confirmations = count


def test_a_transfer_dropped_by_a_reorganisation_is_sent_again_never_signed_again(
    setup: tuple[Workspace, Funded, CountingBackend], chain: HardhatNode
) -> None:
    ws, funded, backend = setup
    _require_confirmations(ws, 3)
    worker = _worker(ws, backend)
    before = chain.rpc("evm_snapshot", [])
    tx_id = _send(ws, funded, "0.5")
    worker.drain(timeout_s=60, until=lambda: _get(ws, tx_id).status == "confirming")
    first = _get(ws, tx_id)
    assert first.tx_hash is not None
    mined = chain.rpc("eth_getTransactionReceipt", ["0x" + first.tx_hash])
    assert isinstance(mined, dict)  # in a block, waiting for its confirmations
    signatures = list(backend.signed)
    assert len(signatures) == 1
    # The block is reorganised away: the node knows the transaction no more.
    chain.rpc("evm_revert", [before])
    assert chain.rpc("eth_getTransactionByHash", ["0x" + first.tx_hash]) is None
    worker.drain(timeout_s=60, until=lambda: _trail(ws, tx_id).count("transaction.confirming") == 2)
    # Sent again, the same bytes: the same hash is in a block again.
    again = chain.rpc("eth_getTransactionReceipt", ["0x" + first.tx_hash])
    assert isinstance(again, dict)
    for _ in range(3):
        chain.rpc("evm_mine", [])
    worker.drain(timeout_s=60, until=lambda: _get(ws, tx_id).status == "completed")
    done = _get(ws, tx_id)
    assert (done.tx_hash, done.nonce, done.signed_payload) == (
        first.tx_hash,
        first.nonce,
        first.signed_payload,
    )
    assert Account.recover_transaction("0x" + str(done.signed_payload)) == funded.address
    assert backend.signed == signatures  # the co-signers were asked for nothing more
    assert _trail(ws, tx_id)[-4:] == [
        "transaction.confirming",
        "transaction.broadcasting",
        "transaction.confirming",
        "transaction.completed",
    ]
    assert _trail(ws, tx_id).count("transaction.signing_attempt") == 1


def test_a_transfer_the_node_refuses_gives_its_nonce_to_the_next(
    setup: tuple[Workspace, Funded, CountingBackend], chain: HardhatNode
) -> None:
    """More than the address holds: the policy allows it, the node refuses the signed
    bytes. The transfer fails naming the refusal, its nonce is released, and the next
    transfer takes that nonce and is mined (it used to wait for ever behind it)."""
    ws, funded, backend = setup
    worker = _worker(ws, backend)
    start = int(str(chain.rpc("eth_getTransactionCount", [funded.address, "latest"])), 16)
    refused = _send(ws, funded, "50")
    worker.drain(timeout_s=60, until=lambda: _get(ws, refused).status == "failed")
    view = _get(ws, refused)
    assert view.nonce == start
    assert view.status_reason is not None
    assert "refused" in view.status_reason
    with ws.platform.unit_of_work() as uow:
        state = uow.session.scalar(
            select(NonceAllocation.state).where(NonceAllocation.nonce == start)
        )
    assert state is NonceState.RELEASED
    following = _send(ws, funded, "0.5")
    worker.drain(timeout_s=60, until=lambda: _get(ws, following).status == "completed")
    assert _get(ws, following).nonce == start
    assert int(str(chain.rpc("eth_getTransactionCount", [funded.address, "latest"])), 16) == (
        start + 1
    )


def test_a_transfer_that_never_confirms_ends_after_the_limit(
    setup: tuple[Workspace, Funded, CountingBackend], chain: HardhatNode
) -> None:
    """The node holds the transaction but mines nothing: after the runtime's limit the
    transfer fails, saying its bytes may still be mined."""
    ws, funded, backend = setup
    chain.rpc("evm_setAutomine", [False])
    worker = _worker(ws, backend, max_unconfirmed_s=0.5)
    tx_id = _send(ws, funded, "0.5")
    worker.drain(timeout_s=60, until=lambda: _get(ws, tx_id).status == "failed")
    view = _get(ws, tx_id)
    assert view.status_reason is not None
    assert "not confirmed within 0.5 s" in view.status_reason
    assert "may still be mined" in view.status_reason
    assert _trail(ws, tx_id)[-2:] == ["transaction.confirming", "transaction.failed"]
    # Still pending at the node: it was neither dropped nor sent again.
    assert chain.rpc("eth_getTransactionByHash", ["0x" + str(view.tx_hash)]) is not None
    assert _trail(ws, tx_id).count("transaction.broadcasting") == 1
