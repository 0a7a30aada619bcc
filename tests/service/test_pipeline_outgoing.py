"""What happens to an outgoing EVM transfer after signing, on a real hardhat node: a
reorganisation that drops it (the same bytes go out again, nothing is signed again), a
node that refuses it (its nonce is given back, so the next transfer is not stuck
behind it), one that never confirms (it ends, after the runtime's limit), and one stuck
in the node's pool that is replaced at its nonce: sped up, or cancelled on chain."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes
from sqlalchemy import select, text

from shardvault.service import replacements, transactions
from shardvault.service.errors import Conflict
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


def _replacements(ws: Workspace, tx_id: str) -> list[replacements.ReplacementView]:
    with ws.platform.unit_of_work() as uow:
        return replacements.list_replacements(uow, ws.owner.principal, tx_id)


def _replace(ws: Workspace, tx_id: str, mode: str) -> replacements.ReplacementView:
    with ws.platform.unit_of_work() as uow:
        return replacements.request_replacement(uow, ws.signer.principal, tx_id, mode=mode)


def _fields(signed_payload: str) -> dict[str, object]:
    return dict(TypedTransaction.from_bytes(HexBytes(signed_payload)).as_dict())


def _balance(chain: HardhatNode, address: str) -> int:
    return int(str(chain.rpc("eth_getBalance", [address, "latest"])), 16)


def _stuck(
    ws: Workspace, funded: Funded, backend: CountingBackend, chain: HardhatNode
) -> tuple[PipelineWorker, str, transactions.TransactionView]:
    """A transfer of 0.5 ETH sent and held in the node's pool (nothing is mined)."""
    chain.rpc("evm_setAutomine", [False])
    worker = _worker(ws, backend)
    tx_id = _send(ws, funded, "0.5")
    worker.drain(timeout_s=60, until=lambda: _get(ws, tx_id).status == "confirming")
    return worker, tx_id, _get(ws, tx_id)


def test_a_stuck_transfer_sped_up_is_mined_once_at_its_nonce_with_higher_fees(
    setup: tuple[Workspace, Funded, CountingBackend], chain: HardhatNode
) -> None:
    ws, funded, backend = setup
    received = _balance(chain, RECIPIENT)
    worker, tx_id, first = _stuck(ws, funded, backend, chain)
    assert first.tx_hash is not None
    assert first.signed_payload is not None
    asked = _replace(ws, tx_id, "speed_up")
    assert (asked.status, asked.seq, asked.replaces_tx_hash) == ("requested", 1, first.tx_hash)
    worker.drain(timeout_s=60, until=lambda: _replacements(ws, tx_id)[0].status == "sent")
    sent = _replacements(ws, tx_id)[0]
    assert sent.tx_hash is not None
    # The node took the replacement into its pool in the original's place.
    assert chain.rpc("eth_getTransactionByHash", ["0x" + sent.tx_hash]) is not None
    assert chain.rpc("eth_getTransactionByHash", ["0x" + first.tx_hash]) is None
    chain.rpc("evm_mine", [])
    worker.drain(timeout_s=60, until=lambda: _get(ws, tx_id).status == "completed")
    done = _get(ws, tx_id)
    assert done.tx_hash == sent.tx_hash
    assert done.signed_payload is not None
    assert Account.recover_transaction("0x" + done.signed_payload) == funded.address
    old, new = _fields(first.signed_payload), _fields(done.signed_payload)
    assert new["nonce"] == old["nonce"] == done.nonce
    assert (new["to"], new["value"], new["data"]) == (old["to"], old["value"], old["data"])
    for cap in ("maxFeePerGas", "maxPriorityFeePerGas"):
        assert int(str(new[cap])) * 8 >= int(str(old[cap])) * 9
    assert sent.fee is not None
    assert int(str(sent.fee["max_fee_per_gas"])) == new["maxFeePerGas"]
    # Paid once; the original can never be mined (its nonce is spent).
    assert _balance(chain, RECIPIENT) - received == 5 * 10**17
    assert chain.rpc("eth_getTransactionReceipt", ["0x" + first.tx_hash]) is None
    assert [r.status for r in _replacements(ws, tx_id)] == ["mined"]
    assert backend.signed == [f"{tx_id}:1", f"{tx_id}:r1.1"]
    trail = _trail(ws, tx_id)
    assert trail[-4:] == [
        "transaction.replacement_signed",
        "transaction.replacement_sent",
        "transaction.completed",
        "transaction.replacement_mined",
    ]
    assert "transaction.replacement_requested" in trail


def test_a_stuck_transfer_cancelled_on_chain_moves_nothing_and_spends_its_nonce(
    setup: tuple[Workspace, Funded, CountingBackend], chain: HardhatNode
) -> None:
    ws, funded, backend = setup
    received = _balance(chain, RECIPIENT)
    worker, tx_id, first = _stuck(ws, funded, backend, chain)
    assert first.nonce is not None
    _replace(ws, tx_id, "cancel")
    worker.drain(timeout_s=60, until=lambda: _replacements(ws, tx_id)[0].status == "sent")
    chain.rpc("evm_mine", [])
    worker.drain(timeout_s=60, until=lambda: _get(ws, tx_id).status == "cancelled")
    done = _get(ws, tx_id)
    assert done.status_reason is not None
    assert "cancelled on chain" in done.status_reason
    assert done.signed_payload is not None
    fields = _fields(done.signed_payload)
    assert (fields["nonce"], HexBytes(fields["to"]), fields["value"], fields["data"]) == (
        first.nonce,
        HexBytes(funded.address),
        0,
        b"",
    )
    assert _balance(chain, RECIPIENT) == received
    assert int(str(chain.rpc("eth_getTransactionCount", [funded.address, "latest"])), 16) == (
        first.nonce + 1
    )
    assert [r.status for r in _replacements(ws, tx_id)] == ["mined"]


def test_a_replacement_too_late_fails_and_the_original_completes(
    setup: tuple[Workspace, Funded, CountingBackend], chain: HardhatNode
) -> None:
    """The original is mined after the speed-up is asked for but before it is sent:
    the node refuses the replacement (its nonce is spent), which fails; the transfer
    completes with its original bytes."""
    ws, funded, backend = setup
    worker, tx_id, first = _stuck(ws, funded, backend, chain)
    _replace(ws, tx_id, "speed_up")
    chain.rpc("evm_mine", [])
    worker.drain(timeout_s=60, until=lambda: _get(ws, tx_id).status == "completed")
    assert _get(ws, tx_id).tx_hash == first.tx_hash
    (late,) = _replacements(ws, tx_id)
    assert late.status == "failed"
    assert late.status_reason is not None
    assert "earlier version was mined" in late.status_reason


def test_a_replacement_is_refused_unless_the_transfer_is_sent_and_unmined(
    setup: tuple[Workspace, Funded, CountingBackend], chain: HardhatNode
) -> None:
    ws, funded, backend = setup
    worker, tx_id, _ = _stuck(ws, funded, backend, chain)
    _replace(ws, tx_id, "speed_up")
    with pytest.raises(Conflict, match="being made"):
        _replace(ws, tx_id, "cancel")
    chain.rpc("evm_setAutomine", [True])
    chain.rpc("evm_mine", [])
    worker.drain(timeout_s=60, until=lambda: _get(ws, tx_id).status == "completed")
    with pytest.raises(Conflict, match="only a transaction sent"):
        _replace(ws, tx_id, "speed_up")
