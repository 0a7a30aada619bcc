"""The pipeline signing through :class:`CosignerBackend` with three in-process co-signer
nodes (real :class:`~shardvault.cosigner.node.CosignerNode` threads on an in-memory link)
pinned to the platform workspace's id and admin set: each co-signer checks every request
itself (PSBT inputs and payment, Solana message, the signed policy, the approvals over
the intent digest) before it signs.

A Bitcoin transfer that spends two coins (one CGGMP21 signature per input, held for
carol's approval, which the co-signers count) is verified by the node stand-in with
python-bitcointx; a Solana transfer (FROST Ed25519) ends ``signed`` and its signature is
verified with PyNaCl against the vault's Ed25519 key. The signed policy caps both
networks' fees (docs/policy.md "Fee caps"), so the co-signers check the fee of each, and
the service must give them the previous transaction of every Bitcoin input.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import base58
import pytest
from bitcointx.core import CTransaction
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl.signing import VerifyKey

from shardvault.cosigner.initiator import request_digest
from shardvault.cosigner.link import InMemoryLink
from shardvault.cosigner.node import CosignerNode
from shardvault.cosigner.relay_core import RelayCore
from shardvault.cosigner.state import (
    init_node,
    open_node,
    pin_peers,
    read_public_identity,
    unseal_identity,
)
from shardvault.crypto.channel import Directory
from shardvault.custody.backends.local import DEVELOPMENT_COST
from shardvault.custody.secret import SecretBytes
from shardvault.service import replacements, transactions, vaults, wallets
from shardvault.service.cosigner_backend import CosignerBackend
from shardvault.service.initiator_requests import forwarded_request
from shardvault.service.pipeline import PipelineRuntime, PipelineWorker
from shardvault.service.platform import Platform
from shardvault.service.policies import activated_bundles
from shardvault.store import Database
from shardvault.store.models_vaults import Transaction
from tests.api.support import make_platform
from tests.service.bitcoin_pipeline_support import (
    DESTINATION,
    activate,
    approve,
    bitcoin_policy,
    get,
    make_btc_vault,
    republish,
    send,
)
from tests.service.pipeline_support import (
    TEST_ONLY_PRIMES,
    Workspace,
    create_signed_transfer,
    make_workspace,
)
from tests.support_bitcoin_node import BitcoinNodeStandIn

PASSPHRASE = b"test-only co-signer passphrase"
SOLANA_DESTINATION = base58.b58encode(bytes(range(1, 33))).decode()
FEE_CAPS = {
    # The stand-in estimates 2 sat/vB; a 2-input spend pays about 420 sat.
    "regtest": {"max_fee_sat": "10000", "max_fee_rate_sat_per_vb": "5"},
    # The service's Solana transfer: one signature, no priority fee, no limit set.
    "solana-devnet": {
        "max_fee_lamports": "5000",
        "max_compute_unit_price_micro_lamports": "0",
        "max_compute_unit_limit": "200000",
    },
}


class Cosigners:
    """Three co-signer nodes for one workspace, serving a relay from threads."""

    def __init__(self, root: Path, workspace_id: str, admin_set: dict[str, object]) -> None:
        dirs = {p: root / f"cosigner-{p}" for p in (1, 2, 3)}
        identities = {}
        for party, directory in dirs.items():
            identities[party] = init_node(
                directory,
                party,
                workspace_id,
                admin_set,
                SecretBytes(PASSPHRASE),
                cost=DEVELOPMENT_COST,
            )
        for directory in dirs.values():
            pin_peers(directory, identities, unseal_identity(directory, SecretBytes(PASSPHRASE)))
        self.relay = RelayCore(
            Directory.of({p: read_public_identity(d)[1] for p, d in dirs.items()}),
            keep_transcript=False,
        )
        self.nodes: dict[int, CosignerNode] = {}
        self._stop = threading.Event()
        self._threads = []
        for party, directory in dirs.items():
            state = open_node(directory, SecretBytes(PASSPHRASE))
            # ECDSA key generation takes the TEST-ONLY published primes (no search).
            node = CosignerNode(
                state, InMemoryLink(self.relay, party), test_only_primes=TEST_ONLY_PRIMES
            )
            self.nodes[party] = node
            thread = threading.Thread(
                target=node.run, args=(self._stop.is_set,), kwargs={"wait": 0.05}, daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        self.relay.close()
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        for node in self.nodes.values():
            node.state.close()


@pytest.fixture
def platform(database: Database) -> Platform:
    return make_platform(database)


@pytest.fixture
def node() -> Iterator[BitcoinNodeStandIn]:
    with BitcoinNodeStandIn("regtest") as stand_in:
        yield stand_in


@pytest.fixture
def cluster(
    platform: Platform, tmp_path: Path
) -> Iterator[tuple[Workspace, CosignerBackend, Cosigners]]:
    ws = make_workspace(platform)
    activate(ws, {**bitcoin_policy(ws), "fee_caps": FEE_CAPS})
    admin_public = ws.admin_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    admin_set: dict[str, object] = {
        "quorum": 1,
        "members": [{"id": "admin", "algorithm": "ed25519", "public_key": admin_public}],
    }
    cosigners = Cosigners(tmp_path / "cosigners", ws.owner.principal.workspace_id, admin_set)

    def bundles(workspace_id: str) -> list[dict[str, object]]:
        with platform.unit_of_work() as uow:
            return activated_bundles(uow, workspace_id)

    backend = CosignerBackend(lambda _ws: cosigners.relay, bundles)
    try:
        yield ws, backend, cosigners
    finally:
        backend.close()
        cosigners.close()


def _worker(platform: Platform, backend: CosignerBackend) -> PipelineWorker:
    runtime = PipelineRuntime(backend, confirmation_poll_s=0.05, broadcast_retry_s=0.05)
    return PipelineWorker(platform, runtime)


def test_bitcoin_and_solana_transfers_signed_by_cosigners(
    platform: Platform,
    cluster: tuple[Workspace, CosignerBackend, Cosigners],
    node: BitcoinNodeStandIn,
) -> None:
    ws, backend, _ = cluster
    owner = ws.owner.principal
    wallet = make_btc_vault(ws, backend, node.url, schemes=("ecdsa-secp256k1", "eddsa-ed25519"))
    with platform.unit_of_work() as uow:
        vaults.configure_network(uow, owner, name="solana-devnet", kind="solana")
        vaults.add_asset(uow, owner, symbol="SOL", network="solana-devnet", price="150")
        sol_wallet = wallets.create_wallet(uow, owner, vault_id=wallet.vault_id, asset="SOL")
    # The co-signers learn solana-devnet (and SOL's price) from the next signed bundle.
    republish(ws)
    worker = _worker(platform, backend)

    # Bitcoin: 1 BTC from two coins, held for carol's approval.
    node.fund(wallet.address, 60_000_000)
    node.fund(wallet.address, 50_000_000)
    btc_id = send(ws, wallet.wallet_id, "1")
    worker.drain(timeout_s=30)
    approve(ws, btc_id)
    worker.drain(
        timeout_s=120,
        until=lambda: get(ws, btc_id).status in ("confirming", "failed"),
    )
    assert get(ws, btc_id).status == "confirming", get(ws, btc_id).status_reason
    node.mine()
    worker.drain(timeout_s=30, until=lambda: get(ws, btc_id).status == "completed")
    view = get(ws, btc_id)
    assert view.status == "completed", view.status_reason
    assert view.tx_hash is not None
    assert node.known[view.tx_hash].height is not None  # bitcointx verified both inputs
    assert view.signed_payload is not None
    decoded = CTransaction.deserialize(bytes.fromhex(view.signed_payload))
    assert len(decoded.vin) == 2
    assert decoded.vout[0].nValue == 100_000_000
    assert [u[0] for u in node.unspent(DESTINATION)] == [view.tx_hash]

    # Solana: 0.5 SOL, allowed; signed by FROST and verified, never broadcast.
    sol = create_signed_transfer(
        ws, ws.signer, wallet_id=sol_wallet.id, destination=SOLANA_DESTINATION, amount="0.5"
    )
    worker.drain(timeout_s=60, until=lambda: get(ws, sol.id).status in ("signed", "failed"))
    sol_view = get(ws, sol.id)
    assert sol_view.status == "signed", sol_view.status_reason
    assert sol_view.signature is not None
    with platform.unit_of_work() as uow:
        row = uow.session.get(Transaction, sol.id)
        assert row is not None
        assert row.chain_payload is not None
        message = bytes.fromhex(json.loads(row.chain_payload)["message"])
    vault_key = base58.b58decode(sol_wallet.addresses[0].address)
    VerifyKey(vault_key).verify(message, bytes.fromhex(sol_view.signature))


def test_cosigners_take_the_initiator_from_the_forwarded_signed_request(
    platform: Platform,
    cluster: tuple[Workspace, CosignerBackend, Cosigners],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The signer's own signed request goes from the API's store to every co-signer,
    which records it with the transfer; a transfer kept without one is refused by the
    co-signers, since the policy's decision depends on its initiator (small-sol names
    the traders group)."""
    ws, backend, cosigners = cluster
    owner = ws.owner.principal
    with platform.unit_of_work() as uow:
        vaults.configure_network(uow, owner, name="solana-devnet", kind="solana")
        vaults.add_asset(uow, owner, symbol="SOL", network="solana-devnet", price="150")
    # The co-signers learn solana-devnet (and SOL's price) from the next signed bundle.
    republish(ws)
    keys = vaults.generate_vault_keys(
        backend,
        workspace_id=owner.workspace_id,
        vault_id="sol-vault",
        schemes=["eddsa-ed25519"],
        min_signers=2,
        max_signers=3,
    )
    with platform.unit_of_work() as uow:
        vault = vaults.record_vault(
            uow, owner, vault_id="sol-vault", name="sol", keys=keys, backend_name=backend.name
        )
        wallet = wallets.create_wallet(uow, owner, vault_id=vault.id, asset="SOL")
    worker = _worker(platform, backend)

    signed = create_signed_transfer(
        ws, ws.signer, wallet_id=wallet.id, destination=SOLANA_DESTINATION, amount="0.25"
    )
    worker.drain(timeout_s=60, until=lambda: get(ws, signed.id).status in ("signed", "failed"))
    assert get(ws, signed.id).status == "signed", get(ws, signed.id).status_reason
    with platform.unit_of_work() as uow:
        tx = uow.session.get(Transaction, signed.id)
        assert tx is not None
        forwarded = forwarded_request(uow, tx)
    assert forwarded is not None
    digest = request_digest(forwarded["token"]).hex()
    recorded = {
        party: [
            e.initiator_request for e in node.state.record.entries if e.transaction_id == signed.id
        ]
        for party, node in cosigners.nodes.items()
    }
    # The quorum that signed recorded the signed request with the transfer.
    assert sorted(d for entries in recorded.values() for d in entries) == [digest, digest]

    with platform.unit_of_work() as uow:
        unsigned = transactions.create_transaction(
            uow,
            ws.signer.principal,
            wallet_id=wallet.id,
            destination=SOLANA_DESTINATION,
            amount="0.25",
        )
    caplog.set_level(logging.WARNING, logger="shardvault")
    worker.drain(timeout_s=60, until=lambda: get(ws, unsigned.id).status in ("signed", "failed"))
    view = get(ws, unsigned.id)
    assert view.status == "failed", view.status_reason
    refusals = [r.getMessage() for r in caplog.records if unsigned.id in r.getMessage()]
    assert refusals, caplog.text
    assert all("initiator" in m and "small-sol" in m for m in refusals), refusals


def test_a_bitcoin_transfer_sped_up_is_signed_again_by_the_cosigners_on_its_coins(
    platform: Platform,
    cluster: tuple[Workspace, CosignerBackend, Cosigners],
    node: BitcoinNodeStandIn,
) -> None:
    """A 1 BTC transfer, approved by carol and sent, waits in the node's mempool; its
    speed-up spends the same two coins with a higher fee, and the co-signers sign it on
    their own checks (the same transaction at the same outpoints, carol's approval over
    its unchanged intent, the fee under the signed cap). The node verifies both inputs
    and evicts the original; only the replacement is mined."""
    ws, backend, _ = cluster
    wallet = make_btc_vault(ws, backend, node.url, schemes=("ecdsa-secp256k1",))
    worker = _worker(platform, backend)
    node.fund(wallet.address, 60_000_000)
    node.fund(wallet.address, 50_000_000)
    btc_id = send(ws, wallet.wallet_id, "1")
    worker.drain(timeout_s=30)
    approve(ws, btc_id)
    worker.drain(timeout_s=120, until=lambda: get(ws, btc_id).status in ("confirming", "failed"))
    first = get(ws, btc_id)
    assert first.status == "confirming", first.status_reason
    with platform.unit_of_work() as uow:
        replacements.request_replacement(uow, ws.signer.principal, btc_id, mode="speed_up")

    def replacement() -> replacements.ReplacementView:
        with platform.unit_of_work() as uow:
            (only,) = replacements.list_replacements(uow, ws.owner.principal, btc_id)
        return only

    worker.drain(timeout_s=120, until=lambda: replacement().status in ("sent", "failed"))
    sent = replacement()
    assert sent.status == "sent", sent.status_reason
    assert sent.tx_hash in node.mempool
    assert first.tx_hash not in node.mempool
    assert sent.fee is not None
    old = CTransaction.deserialize(bytes.fromhex(str(first.signed_payload)))
    new = CTransaction.deserialize(bytes.fromhex(node.known[str(sent.tx_hash)].raw.hex()))
    assert [i.prevout for i in new.vin] == [i.prevout for i in old.vin]
    assert new.vout[0] == old.vout[0]  # the payment
    assert new.vout[1].nValue < old.vout[1].nValue  # the change pays the higher fee
    node.mine()
    worker.drain(timeout_s=30, until=lambda: get(ws, btc_id).status == "completed")
    done = get(ws, btc_id)
    assert done.tx_hash == sent.tx_hash
    assert [u[0] for u in node.unspent(DESTINATION)] == [sent.tx_hash]
    assert replacement().status == "mined"
