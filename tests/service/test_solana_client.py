"""Solana JSON-RPC client against recorded exchanges.

No Solana node can run on this machine, so these tests REPLAY JSON-RPC exchanges from
``tests/fixtures/rpc/solana.json`` through an httpx ``MockTransport``. The fixture is
hand-written to follow the Solana JSON-RPC API reference's request and response shapes and
error codes (see its ``source``); it is not captured from a live node. The replay checks
every request (method, params, JSON-RPC 2.0 envelope) against the recording, in order.
The transaction sent is a system transfer compiled by shardvault and signed with a
TEST-ONLY key; ``WIRE`` in the fixture stands for its base64 wire bytes.
"""

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import base58
import httpx
import pytest

from shardvault.chains.errors import DecodeError
from shardvault.chains.solana import (
    Pubkey,
    attach_signature,
    compile_legacy_message,
    serialize_message,
    serialize_transaction,
    system,
    unsigned_transaction,
)
from shardvault.service.chainclients import RpcResponseError, RpcTransportError
from shardvault.service.chainclients.solana import (
    BlockhashNotFoundError,
    InsufficientFundsForFeeError,
    NodeUnhealthyError,
    SignatureRejectedError,
    SimulationFailedError,
    SolanaRpcClient,
)
from tests.chains.solana.helpers import make_signing_key

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures" / "rpc" / "solana.json").read_text())
PAYER = Pubkey.from_base58("FuemqecPvVaGiBkVNgKFdbSvgSWVmCEwqwqtAQQbjyxw")
TOKEN_ACCOUNT = Pubkey.from_base58("2fxNisoQRx5kBFfxm3XX2ybeBDkvvifZvjJbg67kae4V")
OTHER_SIGNATURE = (
    "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW"
)


def _wire(blockhash: bytes) -> bytes:
    key, payer = make_signing_key("payer")
    _, recipient = make_signing_key("recipient")
    message = compile_legacy_message(
        payer, [system.transfer(payer, recipient, 1_000_000)], blockhash
    )
    signature = key.sign(serialize_message(message)).signature
    return serialize_transaction(attach_signature(unsigned_transaction(message), payer, signature))


class Replay:
    """An httpx transport that answers from a recorded scenario, in order."""

    def __init__(self, exchanges: list[dict[str, Any]], wire_base64: str) -> None:
        self._pending = list(exchanges)
        self._wire = wire_base64

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert self._pending, f"unexpected request {request.content!r}"
        expected = json.loads(
            json.dumps(self._pending.pop(0)).replace('"WIRE"', json.dumps(self._wire))
        )
        sent = json.loads(request.content)
        assert sent["jsonrpc"] == "2.0"
        assert isinstance(sent["id"], int)
        assert {"method": sent["method"], "params": sent["params"]} == expected["request"]
        response = expected["response"]
        return httpx.Response(response["status"], content=json.dumps(response["body"]).encode())

    def assert_done(self) -> None:
        assert not self._pending, f"{len(self._pending)} recorded calls were not made"


def _client(scenario: str) -> tuple[SolanaRpcClient, Replay]:
    replay = Replay(FIXTURE["scenarios"][scenario], FIXTURE["wire_base64"])
    http = httpx.Client(transport=httpx.MockTransport(replay))
    return SolanaRpcClient("http://127.0.0.1:8899", http_client=http), replay


def test_fixture_transaction_is_ours() -> None:
    blockhash = base58.b58decode("EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N")
    wire = _wire(blockhash)
    assert base64.b64encode(wire).decode() == FIXTURE["wire_base64"]
    assert base58.b58encode(wire[1:65]).decode() == FIXTURE["signature"]
    assert "NOT captured from a live node" in FIXTURE["source"]


def test_blockhash_and_balances() -> None:
    client, replay = _client("blockhash_and_balances")
    latest = client.get_latest_blockhash()
    assert latest.blockhash_base58 == "EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N"
    assert latest.last_valid_block_height == 319591157
    assert latest.slot == 341197053
    assert client.get_balance(PAYER) == 2**64 - 1
    balance = client.get_token_account_balance(TOKEN_ACCOUNT)
    assert (balance.amount, balance.decimals) == (9864, 2)
    assert client.get_block_height() < latest.last_valid_block_height
    replay.assert_done()


def test_send_then_confirm() -> None:
    client, replay = _client("send_and_confirm")
    wire = base64.b64decode(FIXTURE["wire_base64"])
    signature = client.send_transaction(wire)
    assert signature == FIXTURE["signature"]
    first, unknown = client.get_signature_statuses([signature, OTHER_SIGNATURE])
    assert unknown is None
    assert first is not None
    assert first.succeeded
    assert first.confirmations == 3
    assert not first.finalized
    (rooted,) = client.get_signature_statuses([signature], search_transaction_history=True)
    assert rooted is not None
    assert rooted.finalized
    assert rooted.confirmations is None
    replay.assert_done()


def test_failed_execution_is_reported() -> None:
    client, _ = _client("failed_execution_status")
    (status,) = client.get_signature_statuses([FIXTURE["signature"]])
    assert status is not None
    assert not status.succeeded
    assert status.error == {"InstructionError": [0, {"Custom": 1}]}


@pytest.mark.parametrize(
    ("scenario", "error", "skip_preflight"),
    [
        ("blockhash_not_found", BlockhashNotFoundError, False),
        ("fee_payer_broke", InsufficientFundsForFeeError, False),
        ("insufficient_lamports", SimulationFailedError, False),
        ("signature_failure", SignatureRejectedError, True),
    ],
)
def test_send_rejections_are_typed(
    scenario: str, error: type[Exception], skip_preflight: bool
) -> None:
    client, replay = _client(scenario)
    with pytest.raises(error) as exc:
        client.send_transaction(
            base64.b64decode(FIXTURE["wire_base64"]), skip_preflight=skip_preflight
        )
    replay.assert_done()
    if isinstance(exc.value, SimulationFailedError) and scenario == "insufficient_lamports":
        assert any("insufficient lamports" in line for line in exc.value.logs)
        assert exc.value.error == {"InstructionError": [0, {"Custom": 1}]}


def test_unhealthy_node() -> None:
    client, _ = _client("unhealthy")
    with pytest.raises(NodeUnhealthyError):
        client.get_latest_blockhash()


def test_malformed_replies_are_refused() -> None:
    client, replay = _client("malformed")
    with pytest.raises(RpcResponseError, match="blockhash"):
        client.get_latest_blockhash()
    with pytest.raises(RpcResponseError, match="amount"):
        client.get_token_account_balance(TOKEN_ACCOUNT)
    with pytest.raises(RpcResponseError, match="balance"):
        client.get_balance(PAYER)
    with pytest.raises(RpcResponseError, match="not the transaction's"):
        client.send_transaction(base64.b64decode(FIXTURE["wire_base64"]))
    with pytest.raises(RpcResponseError, match="wrong length"):
        client.get_signature_statuses([FIXTURE["signature"]])
    replay.assert_done()


def test_bad_wire_transaction_is_refused_before_any_request() -> None:
    client, replay = _client("unhealthy")
    with pytest.raises(DecodeError):
        client.send_transaction(b"\x01\x02")
    with pytest.raises(AssertionError):
        replay.assert_done()


def test_transport_failures() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    client = SolanaRpcClient(
        "http://127.0.0.1:1", http_client=httpx.Client(transport=httpx.MockTransport(refuse))
    )
    with pytest.raises(RpcTransportError, match="ConnectTimeout"):
        client.get_block_height()

    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, content=b"<html>down</html>")

    client = SolanaRpcClient(
        "http://127.0.0.1:1", http_client=httpx.Client(transport=httpx.MockTransport(html))
    )
    with pytest.raises(RpcTransportError, match="non-JSON"):
        client.get_block_height()


def _answering(*bodies: object) -> SolanaRpcClient:
    """A client whose node answers each request with the next body (hostile-node tests)."""
    pending = list(bodies)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=json.dumps(pending.pop(0)).encode())

    return SolanaRpcClient(
        "http://127.0.0.1:8899", http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )


@pytest.mark.parametrize(
    ("call", "result", "message"),
    [
        ("blockhash", [], "non-object"),
        ("blockhash", {"context": {"slot": 1}}, "no value"),
        ("blockhash", {"context": {"slot": -1}, "value": {}}, "context.slot"),
        ("blockhash", {"context": {"slot": 1}, "value": {"blockhash": 7}}, "non-string"),
        ("blockhash", {"context": {"slot": 1}, "value": {"blockhash": "0OIl"}}, "non-base58"),
        (
            "statuses",
            {"context": {"slot": 1}, "value": [{"slot": 1, "confirmationStatus": "maybe"}]},
            "unknown confirmationStatus",
        ),
        ("statuses", {"context": {"slot": 1}, "value": [{"slot": True}]}, "slot"),
        ("height", "12", "height"),
    ],
)
def test_hostile_node_replies_are_typed_errors(call: str, result: object, message: str) -> None:
    calls: dict[str, Callable[[SolanaRpcClient], object]] = {
        "blockhash": lambda c: c.get_latest_blockhash(),
        "statuses": lambda c: c.get_signature_statuses([FIXTURE["signature"]]),
        "height": lambda c: c.get_block_height(),
    }
    client = _answering({"jsonrpc": "2.0", "id": 1, "result": result})
    with pytest.raises(RpcResponseError, match=message):
        calls[call](client)


@pytest.mark.parametrize(
    ("body", "message"),
    [([1, 2], "not a JSON-RPC object"), ({"jsonrpc": "2.0", "id": 1}, "without a result")],
)
def test_non_json_rpc_replies(body: object, message: str) -> None:
    with pytest.raises(RpcTransportError, match=message):
        _answering(body).get_block_height()


def test_other_rejections_and_context_manager() -> None:
    from shardvault.service.chainclients import TransactionRejectedError

    wire = base64.b64decode(FIXTURE["wire_base64"])
    body = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "invalid params"}}
    with _answering(body) as client, pytest.raises(TransactionRejectedError) as exc:
        client.send_transaction(wire)
    assert type(exc.value) is TransactionRejectedError
    assert exc.value.code == -32602
    owned = SolanaRpcClient("http://127.0.0.1:1")
    owned.close()


def test_async_client_runs_the_same_calls() -> None:
    import asyncio

    from shardvault.service.chainclients.solana import AsyncSolanaRpcClient

    wire = base64.b64decode(FIXTURE["wire_base64"])

    async def flow(scenario: str) -> tuple[str, object]:
        replay = Replay(FIXTURE["scenarios"][scenario], FIXTURE["wire_base64"])
        http = httpx.AsyncClient(transport=httpx.MockTransport(replay))
        async with AsyncSolanaRpcClient("http://127.0.0.1:8899", http_client=http) as client:
            if scenario == "blockhash_and_balances":
                latest = await client.get_latest_blockhash()
                await client.get_balance(PAYER)
                balance = await client.get_token_account_balance(TOKEN_ACCOUNT)
                await client.get_block_height()
                result: tuple[str, object] = (latest.blockhash_base58, balance.amount)
            else:
                signature = await client.send_transaction(wire)
                statuses = await client.get_signature_statuses([signature, OTHER_SIGNATURE])
                await client.get_signature_statuses([signature], search_transaction_history=True)
                result = (signature, statuses[1])
        await http.aclose()
        replay.assert_done()
        return result

    assert asyncio.run(flow("blockhash_and_balances")) == (
        "EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N",
        9864,
    )
    assert asyncio.run(flow("send_and_confirm")) == (FIXTURE["signature"], None)

    async def rejected() -> None:
        replay = Replay(FIXTURE["scenarios"]["blockhash_not_found"], FIXTURE["wire_base64"])
        client = AsyncSolanaRpcClient(
            "http://127.0.0.1:8899",
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(replay)),
        )
        await client.send_transaction(wire)

    with pytest.raises(BlockhashNotFoundError):
        asyncio.run(rejected())

    async def owned() -> None:
        client = AsyncSolanaRpcClient("http://127.0.0.1:1")
        await client.aclose()

    asyncio.run(owned())
