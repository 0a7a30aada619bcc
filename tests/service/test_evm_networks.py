"""An EVM network's nodes as the pipeline reads them (``service/evm_networks.py``), on a
hardhat node: reads fail over to the next node when one cannot be reached and keep to
the one that answered; signed transactions go to the private broadcast URL alone; and a
transfer through the pipeline uses all of it, with the network's confirmation depth.

Between the client and hardhat sit loopback JSON-RPC relays that record the methods they
forward and can be switched off (then they answer HTTP 503 with a page, as a node behind
a proxy that lost it does), so each test sees which node was asked for what.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from shardvault.service import transactions, vaults
from shardvault.service.chainclients import RpcTransportError
from shardvault.service.chainclients.ethereum import block_number_call, chain_id_call
from shardvault.service.evm_networks import EvmNodes, FailoverEthereumClient
from shardvault.service.pipeline import PipelineRuntime, PipelineWorker
from shardvault.service.platform import Platform
from shardvault.store import Database
from tests.api.support import make_platform
from tests.chains.ethereum.hardhat import TEST_ONLY_HARDHAT_FUNDED_KEY, HardhatNode, hardhat_node
from tests.service.pipeline_support import (
    ReusedKeygenBackend,
    activate_policy,
    fund,
    make_vault_wallet,
    make_workspace,
    open_custody,
    policy_document,
)

__all__ = ["hardhat_node"]

RECIPIENT = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"


class Relay:
    """A loopback JSON-RPC relay in front of ``upstream``: records the methods it
    forwards (batches as their methods); ``up = False`` makes it answer 503."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.up = True
        self.methods: list[str] = []
        self.refused = 0
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not relay.up:
                    relay.refused += 1
                    self._reply(503, b"<html>bad gateway</html>", "text/html")
                    return
                request = json.loads(raw)
                calls = request if isinstance(request, list) else [request]
                relay.methods.extend(str(c["method"]) for c in calls)
                answer = httpx.post(relay.upstream, content=raw, timeout=10,
                                    headers={"Content-Type": "application/json"})  # fmt: skip
                self._reply(answer.status_code, answer.content, "application/json")

            def _reply(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def relays(hardhat_node: HardhatNode) -> Iterator[list[Relay]]:
    made = [Relay(hardhat_node.url) for _ in range(3)]
    try:
        yield made
    finally:
        for relay in made:
            relay.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _signed_transfer(node: HardhatNode) -> bytes:
    account = Account.from_key(TEST_ONLY_HARDHAT_FUNDED_KEY)
    nonce = int(str(node.rpc("eth_getTransactionCount", [account.address, "pending"])), 16)
    signed = account.sign_transaction(
        {"chainId": node.chain_id, "nonce": nonce, "to": RECIPIENT, "value": 1,
         "gas": 21_000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    )  # fmt: skip
    return bytes(signed.raw_transaction)


def test_reads_fail_over_in_order_and_keep_to_the_node_that_answered(
    relays: list[Relay], hardhat_node: HardhatNode
) -> None:
    first, second, third = relays
    clock = Clock()
    nodes = EvmNodes(retry_first_s=60.0, clock=clock)
    urls = [first.url, second.url, third.url]
    with httpx.Client(timeout=5) as http:

        def client() -> FailoverEthereumClient:
            return FailoverEthereumClient(urls, None, http_client=http, nodes=nodes)

        assert client().chain_id() == hardhat_node.chain_id
        assert (first.methods, second.methods) == (["eth_chainId"], [])
        # The first node goes down: the call moves on to the second, and the next calls
        # go there first (the first is not asked again at every call).
        first.up = False
        assert client().block_number() >= 0
        assert client().chain_id() == hardhat_node.chain_id
        assert first.refused == 1
        assert second.methods == ["eth_blockNumber", "eth_chainId"]
        # A batch fails over the same way.
        second.up = False
        head, chain = client().run_many([block_number_call(), chain_id_call()])
        assert chain == hardhat_node.chain_id
        assert third.methods == ["eth_blockNumber", "eth_chainId"]
        # After retry_first_s the first node is asked first again.
        first.up = second.up = True
        clock.now += 61
        assert client().chain_id() == hardhat_node.chain_id
        assert first.methods == ["eth_chainId", "eth_chainId"]
        # No node can be reached: the last one's transport error.
        for relay in relays:
            relay.up = False
        with pytest.raises(RpcTransportError, match="non-JSON body"):
            client().chain_id()
    assert isinstance(head, int)


def test_a_signed_transaction_goes_to_the_broadcast_url_alone(
    relays: list[Relay], hardhat_node: HardhatNode
) -> None:
    public, fallback, private = relays
    with httpx.Client(timeout=5) as http:
        client = FailoverEthereumClient(
            [public.url, fallback.url], private.url, http_client=http, nodes=EvmNodes()
        )
        # The private endpoint down: the send fails as a transport error (retried
        # later), and no public node is given the transaction instead.
        private.up = False
        raw = _signed_transfer(hardhat_node)
        with pytest.raises(RpcTransportError):
            client.send_raw_transaction(raw)
        private.up = True
        tx_hash = client.send_raw_transaction(raw)
        receipt = client.get_transaction_receipt(tx_hash)
    assert receipt is not None
    assert receipt.success
    assert private.methods == ["eth_sendRawTransaction"]
    assert "eth_sendRawTransaction" not in public.methods + fallback.methods
    assert public.methods == ["eth_getTransactionReceipt"]


@pytest.fixture
def platform(database: Database) -> Platform:
    return make_platform(database)


def test_the_pipeline_reads_a_network_through_its_nodes_and_sends_privately(
    platform: Platform, hardhat_node: HardhatNode, relays: list[Relay], tmp_path: Path
) -> None:
    down, public, private = relays
    down.up = False
    ws = make_workspace(platform)
    backend = ReusedKeygenBackend(open_custody(tmp_path / "custody"))
    with platform.unit_of_work() as uow:
        vaults.configure_network(
            uow, ws.owner.principal, name="hardhat", kind="evm", chain_id=hardhat_node.chain_id,
            rpc_urls=[down.url, public.url], broadcast_url=private.url,
            required_confirmations=3,
        )  # fmt: skip
        vaults.add_asset(uow, ws.owner.principal, symbol="ETH", network="hardhat", price="3000")
    funded = make_vault_wallet(ws, backend, "ETH", ["ecdsa-secp256k1"])
    fund(hardhat_node, funded.address)
    activate_policy(ws, policy_document(ws, version=1, limit_eth="1"))
    with platform.unit_of_work() as uow:
        tx_id = transactions.create_transaction(
            uow, ws.signer.principal, wallet_id=funded.wallet_id, destination=RECIPIENT,
            amount="0.25",
        ).id  # fmt: skip

    def view() -> transactions.TransactionView:
        with platform.unit_of_work() as uow:
            return transactions.get_transaction(uow, ws.owner.principal, tx_id)

    runtime = PipelineRuntime(backend, confirmation_poll_s=0.05)
    worker = PipelineWorker(platform, runtime)
    try:
        worker.drain(timeout_s=60, until=lambda: view().status == "confirming")
        # Mined, but three confirmations are the network's depth: not completed yet.
        assert view().status == "confirming"
        for _ in range(2):
            hardhat_node.rpc("evm_mine")
        worker.drain(timeout_s=30, until=lambda: view().status == "completed")
    finally:
        runtime.close()
    done = view()
    assert done.status == "completed", done.status_reason
    assert done.confirmations is not None
    assert done.confirmations >= 3
    assert private.methods == ["eth_sendRawTransaction"]
    assert "eth_sendRawTransaction" not in public.methods
    assert {"eth_feeHistory", "eth_getTransactionReceipt"} <= set(public.methods)
    # The node that cannot be reached was tried once, then the runtime kept to the next.
    assert down.refused == 1
    receipt = hardhat_node.rpc("eth_getTransactionReceipt", ["0x" + str(done.tx_hash)])
    assert isinstance(receipt, dict)
    assert receipt["status"] == "0x1"
