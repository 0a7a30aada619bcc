"""The Ethereum JSON-RPC client against a real hardhat 2 node (started by the fixture in
tests/chains/ethereum/hardhat.py), end to end: build with shardvault.chains.ethereum,
digest, sign with coincurve and a TEST-ONLY key, assemble from (r, s) and the public key,
broadcast, confirm, check balances. Malformed node replies are exercised through
httpx.MockTransport, since no real node sends them on purpose."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from eth_hash.auto import keccak

from shardvault.chains.amounts import Wei
from shardvault.chains.ethereum import (
    Address,
    FeeMarketTransaction,
    FeeParameters,
    SignedTransaction,
    Transaction,
    address_from_public_key,
    assemble_with_public_key,
    encode_signed,
    erc20_transfer,
    native_transfer,
    signing_hash,
    summarize,
    transaction_hash,
)
from shardvault.service.chainclients import RpcResponseError, RpcTransportError
from shardvault.service.chainclients.ethereum import (
    ConfirmationTracker,
    EthereumRpcClient,
    InsufficientFundsError,
    NonceTooLowError,
    Receipt,
    UnderpricedError,
    WrongChainError,
    block_hash_call,
    block_number_call,
    chain_id_call,
    classify_rejection,
    receipt_call,
    send_raw_transaction_call,
    transaction_count_call,
)
from shardvault.service.nonces import InMemoryNonceAllocator
from tests.chains.ethereum.hardhat import TEST_ONLY_HARDHAT_FUNDED_KEY, HardhatNode, hardhat_node
from tests.chains.ethereum.helpers import test_only_public_key, test_only_sign_digest

__all__ = ["hardhat_node"]

TOKEN_ARTIFACT = Path(__file__).resolve().parents[1] / "fixtures" / "erc20" / "TestToken.json"
ETHER = 10**18


def test_only_key(label: str) -> bytes:
    """A TEST-ONLY private key derived from a label (never use outside tests)."""
    return bytes(keccak(b"shardvault test-only key " + label.encode()))


test_only_key.__test__ = False  # type: ignore[attr-defined]


def address_of(key: bytes) -> Address:
    return address_from_public_key(test_only_public_key(key))


def sign(tx: Transaction, key: bytes) -> SignedTransaction:
    """Our pipeline: digest, external signature as (r, s), parity found from the public key."""
    r, s, _ = test_only_sign_digest(key, signing_hash(tx))
    return assemble_with_public_key(tx, r, s, test_only_public_key(key))


@pytest.fixture
def client(hardhat_node: HardhatNode) -> Iterator[EthereumRpcClient]:
    with EthereumRpcClient(hardhat_node.url) as rpc:
        yield rpc


def fees(client: EthereumRpcClient, gas_limit: int = 21000) -> FeeParameters:
    suggestion = client.suggest_fees()
    return FeeParameters(suggestion.max_fee_per_gas, suggestion.max_priority_fee_per_gas, gas_limit)


def send_and_confirm(client: EthereumRpcClient, signed: SignedTransaction) -> ConfirmationTracker:
    tx_hash = client.send_raw_transaction(encode_signed(signed))
    assert tx_hash == transaction_hash(signed)
    tracker = ConfirmationTracker(client, tx_hash, required_confirmations=1)
    status = tracker.poll()
    assert status.state == "confirmed", status
    assert status.success is True
    return tracker


def fund(client: EthereumRpcClient, to: Address, amount: str) -> None:
    """Send ether from hardhat's funded account, signed through our own pipeline."""
    funder = address_of(TEST_ONLY_HARDHAT_FUNDED_KEY)
    tx = native_transfer(
        chain_id=client.chain_id(),
        nonce=client.get_transaction_count(funder),
        to=to.checksummed,
        amount=amount,
        fees=fees(client),
    )
    send_and_confirm(client, sign(tx, TEST_ONLY_HARDHAT_FUNDED_KEY))


@pytest.mark.node
def test_chain_id_and_fee_suggestion(client: EthereumRpcClient, hardhat_node: HardhatNode) -> None:
    assert client.chain_id() == hardhat_node.chain_id
    suggestion = client.suggest_fees()
    assert suggestion.max_priority_fee_per_gas >= 10**9
    assert suggestion.max_fee_per_gas == 2 * suggestion.base_fee_per_gas + (
        suggestion.max_priority_fee_per_gas
    )
    assert suggestion.base_fee_per_gas > 0


@pytest.mark.node
def test_eth_transfer_end_to_end(client: EthereumRpcClient) -> None:
    sender_key = test_only_key("eth-transfer-sender")
    sender = address_of(sender_key)
    recipient = address_of(test_only_key("eth-transfer-recipient"))
    fund(client, sender, "3")
    assert client.get_balance(sender) == 3 * ETHER
    start = client.get_balance(recipient)

    tx = native_transfer(
        chain_id=client.chain_id(),
        nonce=client.get_transaction_count(sender),
        to=recipient.checksummed,
        amount="1.25",
        fees=fees(client),
    )
    assert client.estimate_gas(sender=sender, to=recipient, value=tx.value) >= 21000
    signed = sign(tx, sender_key)
    # eth-account, independently, agrees on the sender of the bytes we broadcast.
    assert Account.recover_transaction(encode_signed(signed)) == sender.checksummed
    tracker = send_and_confirm(client, signed)
    receipt = client.get_transaction_receipt(transaction_hash(signed))
    assert receipt is not None
    assert receipt.effective_gas_price is not None
    assert client.get_balance(recipient) == start + 125 * ETHER // 100
    spent = 125 * ETHER // 100 + receipt.gas_used * receipt.effective_gas_price
    assert client.get_balance(sender) == 3 * ETHER - spent
    assert client.get_transaction_count(sender) == 1
    # A later block adds a confirmation.
    client.request("evm_mine")
    assert tracker.poll().confirmations == 2


def deploy_token(client: EthereumRpcClient, key: bytes, supply: int) -> Address:
    """Deploy TestToken from the committed bytecode with an EIP-1559 creation transaction."""
    import eth_abi

    artifact = json.loads(TOKEN_ARTIFACT.read_text())
    bytecode = bytes.fromhex(artifact["bytecode"][2:])
    constructor = eth_abi.encode(["string", "string", "uint256"], ["Test Token", "TST", supply])
    sender = address_of(key)
    f = fees(client)
    tx = FeeMarketTransaction(
        chain_id=client.chain_id(),
        nonce=client.get_transaction_count(sender),
        max_priority_fee_per_gas=f.max_priority_fee_per_gas,
        max_fee_per_gas=f.max_fee_per_gas,
        gas_limit=1_500_000,
        to=None,
        value=Wei(0),
        data=bytecode + constructor,
    )
    assert summarize(tx).kind == "contract_creation"
    signed = sign(tx, key)
    send_and_confirm(client, signed)
    receipt = client.get_transaction_receipt(transaction_hash(signed))
    assert receipt is not None
    assert receipt.contract_address is not None
    return receipt.contract_address


@pytest.mark.node
def test_erc20_transfer_end_to_end(client: EthereumRpcClient) -> None:
    owner_key = test_only_key("erc20-owner")
    owner = address_of(owner_key)
    recipient = address_of(test_only_key("erc20-recipient"))
    fund(client, owner, "1")
    supply = 1_000_000 * ETHER
    token = deploy_token(client, owner_key, supply)
    assert client.erc20_balance(token, owner) == supply

    tx = erc20_transfer(
        chain_id=client.chain_id(),
        nonce=client.get_transaction_count(owner),
        token=token.checksummed,
        to=recipient.checksummed,
        amount="1234.5",
        decimals=18,
        fees=fees(client, gas_limit=80_000),
    )
    summary = summarize(tx)
    assert (summary.kind, summary.recipient, summary.asset) == ("token_transfer", recipient, token)
    send_and_confirm(client, sign(tx, owner_key))
    assert client.erc20_balance(token, recipient) == 12345 * ETHER // 10
    assert client.erc20_balance(token, owner) == supply - 12345 * ETHER // 10


@pytest.mark.node
def test_typed_rejections_from_the_node(client: EthereumRpcClient) -> None:
    key = test_only_key("rejections")
    sender = address_of(key)
    other = address_of(test_only_key("rejections-other")).checksummed
    chain_id = client.chain_id()

    # Unfunded sender.
    tx = native_transfer(chain_id=chain_id, nonce=0, to=other, amount="1", fees=fees(client))
    with pytest.raises(InsufficientFundsError):
        client.send_raw_transaction(encode_signed(sign(tx, key)))

    fund(client, sender, "1")
    # Fee cap below the next block's base fee.
    low = FeeParameters(Wei(1), Wei(1), 21000)
    tx = native_transfer(chain_id=chain_id, nonce=0, to=other, amount="0.1", fees=low)
    with pytest.raises(UnderpricedError):
        client.send_raw_transaction(encode_signed(sign(tx, key)))

    # Signed for another chain.
    tx = native_transfer(chain_id=1, nonce=0, to=other, amount="0.1", fees=fees(client))
    with pytest.raises(WrongChainError):
        client.send_raw_transaction(encode_signed(sign(tx, key)))

    # A nonce already used.
    tx = native_transfer(chain_id=chain_id, nonce=0, to=other, amount="0.1", fees=fees(client))
    signed = sign(tx, key)
    send_and_confirm(client, signed)
    with pytest.raises(NonceTooLowError):
        client.send_raw_transaction(encode_signed(signed))


@pytest.mark.node
def test_a_batch_of_calls_is_one_round_trip_answered_in_order(
    hardhat_node: HardhatNode,
) -> None:
    """``run_many`` asks hardhat several things in one HTTP request; each answer is its
    call's, parsed as ``run`` parses it, and a call that fails does so alone, as the
    typed error ``run`` would raise (a send's rejection included)."""
    posts: list[httpx.Request] = []
    with httpx.Client(event_hooks={"request": [posts.append]}) as http:
        client = EthereumRpcClient(hardhat_node.url, http_client=http)
        key = test_only_key("batch")
        sender = address_of(key)
        fund(client, sender, "1")
        other = address_of(test_only_key("batch-other")).checksummed
        tx = native_transfer(
            chain_id=hardhat_node.chain_id, nonce=0, to=other, amount="0.1", fees=fees(client)
        )
        signed = sign(tx, key)
        mined = client.send_raw_transaction(encode_signed(signed))
        head = client.block_number()
        posts.clear()
        answers = client.run_many(
            [
                chain_id_call(),
                receipt_call(mined),
                receipt_call(b"\x11" * 32),
                send_raw_transaction_call(encode_signed(signed)),  # nonce 0 again
                transaction_count_call(sender),
                block_hash_call(head),
                block_number_call(),
            ]
        )
    assert len(posts) == 1
    assert json.loads(posts[0].content)[3]["method"] == "eth_sendRawTransaction"
    chain, receipt, unknown, resent, count, block_hash, number = answers
    assert chain == hardhat_node.chain_id
    assert isinstance(receipt, Receipt)
    assert receipt.transaction_hash == mined
    assert receipt.block_number == head
    assert unknown is None
    assert isinstance(resent, NonceTooLowError)
    assert count == 1
    assert block_hash == receipt.block_hash
    assert number == head
    assert client.run_many([]) == []


@pytest.mark.node
def test_reorg_resets_confirmations(client: EthereumRpcClient, hardhat_node: HardhatNode) -> None:
    """Inclusion in block B, B reverted (evm_revert), re-inclusion in another block: the
    tracker reports the reorg and counts confirmations from the new block only."""
    key = test_only_key("reorg")
    sender = address_of(key)
    fund(client, sender, "1")
    snapshot = hardhat_node.rpc("evm_snapshot")
    tx = native_transfer(
        chain_id=client.chain_id(),
        nonce=client.get_transaction_count(sender),
        to=address_of(test_only_key("reorg-to")).checksummed,
        amount="0.5",
        fees=fees(client),
    )
    signed = sign(tx, key)
    tracker = send_and_confirm(client, signed)
    client.request("evm_mine")
    client.request("evm_mine")
    first = tracker.poll()
    assert (first.state, first.confirmations, first.reorgs) == ("confirmed", 3, 0)

    assert hardhat_node.rpc("evm_revert", [snapshot]) is True
    gone = tracker.poll()
    assert (gone.state, gone.confirmations, gone.reorgs) == ("reorged", 0, 1)

    client.request("evm_mine")  # The new branch differs from the old one.
    client.send_raw_transaction(encode_signed(signed))
    again = tracker.poll()
    assert again.state == "confirmed"
    assert again.confirmations == 1
    assert again.block_hash != first.block_hash
    assert again.reorgs == 1


@pytest.mark.node
def test_allocator_nonces_all_mine(client: EthereumRpcClient) -> None:
    """Nonces from the allocator, seeded with the node's pending nonce, are accepted in
    order with none reused or skipped."""
    key = test_only_key("allocator")
    sender = address_of(key)
    fund(client, sender, "1")
    allocator = InMemoryNonceAllocator()
    chain_id = client.chain_id()
    allocator.observe_chain_nonce(
        chain_id, sender.checksummed, client.get_transaction_count(sender)
    )
    to = address_of(test_only_key("allocator-to")).checksummed
    used = []
    for _ in range(4):
        nonce = allocator.allocate(chain_id, sender.checksummed)
        tx = native_transfer(
            chain_id=chain_id, nonce=nonce, to=to, amount="0.01", fees=fees(client)
        )
        client.send_raw_transaction(encode_signed(sign(tx, key)))
        allocator.confirm(chain_id, sender.checksummed, nonce)
        used.append(nonce)
    assert used == [0, 1, 2, 3]
    assert client.get_transaction_count(sender) == 4


def test_unreachable_node_is_a_transport_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with EthereumRpcClient(f"http://127.0.0.1:{port}", timeout=2) as rpc:
        with pytest.raises(RpcTransportError) as info:
            rpc.chain_id()
    assert info.value.method == "eth_chainId"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", RpcTransportError),
        (b"[1, 2]", RpcTransportError),
        (b'{"jsonrpc": "2.0", "id": 1}', RpcTransportError),
        (b'{"jsonrpc": "2.0", "id": 1, "result": "0x0001"}', RpcResponseError),
        (b'{"jsonrpc": "2.0", "id": 1, "result": 12}', RpcResponseError),
        (b'{"jsonrpc": "2.0", "id": 1, "result": "0xg"}', RpcResponseError),
        (
            b'{"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "boom"}}',
            RpcResponseError,
        ),
        (b'{"jsonrpc": "2.0", "id": 1, "error": "weird"}', RpcResponseError),
    ],
)
def test_malformed_node_replies_are_typed(body: bytes, error: type[Exception]) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    with httpx.Client(transport=transport) as http:
        rpc = EthereumRpcClient("http://node.invalid", http_client=http)
        with pytest.raises(error):
            rpc.chain_id()


def _batch_node(answer: Callable[[list[dict[str, object]]], object]) -> EthereumRpcClient:
    """A client of a stand-in node that answers a batch with ``answer(requests)`` and a
    single request as a node does (its id and the result ``0x1``)."""

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if isinstance(body, list):
            return httpx.Response(200, json=answer(body))
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "result": "0x1"})

    return EthereumRpcClient(
        "http://node.invalid", http_client=httpx.Client(transport=httpx.MockTransport(handle))
    )


def test_batch_answers_are_matched_by_id_and_fail_one_by_one() -> None:
    """Answers come back in any order (matched by id); one missing, malformed or
    refused fails only its own call."""

    def answer(requests: list[dict[str, object]]) -> object:
        ids = [r["id"] for r in requests]
        return [
            {"jsonrpc": "2.0", "id": ids[4], "error": {"code": -32000, "message": "nonce too low"}},
            {"jsonrpc": "2.0", "id": ids[2], "result": "0xg"},
            {"jsonrpc": "2.0", "id": ids[0], "result": "0x7a69"},
            {"jsonrpc": "2.0", "id": ids[1], "result": "0x10"},
            {"jsonrpc": "2.0", "id": 999, "result": "0x1"},
        ]

    client = _batch_node(answer)
    chain, number, bad, missing, refused = client.run_many(
        [
            chain_id_call(),
            block_number_call(),
            block_number_call(),
            block_number_call(),
            send_raw_transaction_call(b"\x02"),
        ]
    )
    assert (chain, number) == (31337, 16)
    assert isinstance(bad, RpcResponseError)
    assert isinstance(missing, RpcTransportError)
    assert isinstance(refused, NonceTooLowError)


def test_a_node_without_batches_is_asked_one_call_at_a_time() -> None:
    """A node that answers a batch with one error object (no batch support) gets each
    call on its own."""
    client = _batch_node(
        lambda _: {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "batch"}}
    )
    assert client.run_many([block_number_call(), chain_id_call()]) == [1, 1]


def test_an_unreachable_node_fails_the_whole_batch() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    http = httpx.Client(transport=httpx.MockTransport(refuse))
    client = EthereumRpcClient("http://node.invalid", http_client=http)
    with pytest.raises(RpcTransportError):
        client.run_many([block_number_call(), chain_id_call()])


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("nonce too low", NonceTooLowError),
        ("replacement transaction underpriced", UnderpricedError),
        ("transaction underpriced", UnderpricedError),
        ("max fee per gas less than block base fee", UnderpricedError),
        ("insufficient funds for gas * price + value", InsufficientFundsError),
        ("invalid chain id for signer", WrongChainError),
    ],
)
def test_geth_rejection_wordings(message: str, error: type[Exception]) -> None:
    """geth's txpool error strings (core/txpool/errors.go) map to the same types."""
    assert type(classify_rejection(message, -32000)) is error


@pytest.mark.node
def test_async_client_end_to_end(client: EthereumRpcClient, hardhat_node: HardhatNode) -> None:
    """The async twin broadcasts and confirms a transfer and reports the same errors."""
    import asyncio

    from shardvault.service.chainclients.ethereum import AsyncEthereumRpcClient

    key = test_only_key("async-sender")
    sender = address_of(key)
    recipient = address_of(test_only_key("async-recipient"))
    fund(client, sender, "1")

    async def flow() -> None:
        async with AsyncEthereumRpcClient(hardhat_node.url) as rpc:
            chain_id = await rpc.chain_id()
            suggestion = await rpc.suggest_fees()
            tx = native_transfer(
                chain_id=chain_id,
                nonce=await rpc.get_transaction_count(sender),
                to=recipient.checksummed,
                amount="0.25",
                fees=FeeParameters(
                    suggestion.max_fee_per_gas, suggestion.max_priority_fee_per_gas, 21000
                ),
            )
            signed = sign(tx, key)
            tx_hash = await rpc.send_raw_transaction(encode_signed(signed))
            tracker = ConfirmationTracker(None, tx_hash)
            status = await tracker.poll_async(rpc)
            assert status.state == "confirmed"
            assert await rpc.get_balance(recipient) == ETHER // 4
            with pytest.raises(NonceTooLowError):
                await rpc.send_raw_transaction(encode_signed(signed))

    asyncio.run(flow())
