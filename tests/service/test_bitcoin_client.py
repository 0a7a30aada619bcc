"""Bitcoin Core JSON-RPC client against recorded exchanges.

No Bitcoin node can run on this machine, so these tests REPLAY JSON-RPC exchanges from
``tests/fixtures/rpc/bitcoin_core.json`` through an httpx ``MockTransport``. The fixture is
hand-written to follow Bitcoin Core's documented request and response shapes and error
codes (see its ``source``); it is not captured from a live node. The replay checks every
request the client sends (method, params, JSON-RPC envelope, basic auth) against the
recording, in order, and fails on any unexpected or missing call.
"""

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from shardvault.chains.bitcoin import extract_transaction, finalize
from shardvault.chains.bitcoin.coinselect import FeeRate
from shardvault.chains.errors import DecodeError
from shardvault.service.chainclients import (
    RpcResponseError,
    RpcTransportError,
    TransactionRejectedError,
)
from shardvault.service.chainclients.bitcoin import (
    AlreadyInChainError,
    BitcoinRpcClient,
    FeeTooLowError,
    MissingInputsError,
    NodeWarmingUpError,
    PolicyRejectedError,
)
from tests.chains.bitcoin.helpers import p2wpkh_spend, sign_p2wpkh

FIXTURE = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "rpc" / "bitcoin_core.json").read_text()
)
AUTH = ("shardvault", "test-only-password")


class Replay:
    """An httpx transport that answers from a recorded scenario, in order."""

    def __init__(self, exchanges: list[dict[str, Any]]) -> None:
        self._pending = list(exchanges)
        self.urls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert self._pending, f"unexpected request {request.content!r}"
        expected = self._pending.pop(0)
        sent = json.loads(request.content)
        assert sent["jsonrpc"] == "1.0"
        assert isinstance(sent["id"], int)
        assert {"method": sent["method"], "params": sent["params"]} == expected["request"]
        token = base64.b64encode(f"{AUTH[0]}:{AUTH[1]}".encode()).decode()
        assert request.headers["authorization"] == f"Basic {token}"
        self.urls.append(str(request.url))
        response = expected["response"]
        if "raw" in response:
            return httpx.Response(response["status"], content=response["raw"].encode())
        return httpx.Response(response["status"], content=json.dumps(response["body"]).encode())

    def assert_done(self) -> None:
        assert not self._pending, f"{len(self._pending)} recorded calls were not made"


def _client(scenario: str, wallet: str | None = None) -> tuple[BitcoinRpcClient, Replay]:
    # The fixture's amounts pass through Python floats here, whose repr is the shortest
    # text that round-trips, so the client sees the recorded digits (bar trailing zeros)
    # and must still read them as exact decimals.
    replay = Replay(FIXTURE["scenarios"][scenario])
    http = httpx.Client(transport=httpx.MockTransport(replay))
    return BitcoinRpcClient(
        "http://127.0.0.1:18443", auth=AUTH, wallet=wallet, http_client=http
    ), replay


@pytest.fixture
def signed_tx_hex() -> bytes:
    psbt, key = p2wpkh_spend()
    return extract_transaction(finalize(sign_p2wpkh(psbt, 0, key))).serialize()


def test_list_unspent_reads_amounts_exactly() -> None:
    client, replay = _client("list_unspent", wallet="custody")
    utxos = client.list_unspent(addresses=["bcrt1qzr55g3ydsmr0y355qdhuzm3tufzxeatpkg3us3"])
    replay.assert_done()
    assert replay.urls == ["http://127.0.0.1:18443/wallet/custody"]
    assert [u.value for u in utxos] == [100_000, 2_099_999_999_999_999]
    assert str(utxos[0].outpoint) == (
        "fe8eabbf10515ace51cc42f0d06277916c786b1b98fe5eda22de2af16ead0807:1"
    )
    assert utxos[0].confirmations == 12
    assert utxos[0].script_pubkey.hex() == "001410e944448d86c6f24694036fc16e2be2446cf561"


def test_scan_utxos() -> None:
    client, replay = _client("scan_utxos")
    result = client.scan_utxos(["addr(bcrt1qzr55g3ydsmr0y355qdhuzm3tufzxeatpkg3us3)"])
    replay.assert_done()
    assert result.total == 100_000
    assert result.height == 250
    assert result.unspents[0].descriptor is not None


def test_estimate_smart_fee() -> None:
    client, replay = _client("estimate_fee")
    rate = client.estimate_smart_fee(6)
    assert rate == FeeRate(12_345)  # 0.00012345 BTC/kvB = 12.345 sat/vB
    assert client.estimate_smart_fee(2, "economical") is None
    replay.assert_done()


def test_broadcast_then_confirmations(signed_tx_hex: bytes) -> None:
    client, replay = _client("broadcast_and_confirm")
    txid = client.send_raw_transaction(signed_tx_hex)
    assert txid == "87b5ceff1a631d9808e0f3727b1aff7f0550428b27d965fe076e57baddffcfea"
    assert client.get_confirmations(txid) == 0  # in the mempool
    status = client.get_transaction_status(txid)
    assert status is not None
    assert status.confirmed
    assert status.confirmations == 3
    assert status.block_hash is not None
    assert client.get_block_count() == 252
    replay.assert_done()


def test_unknown_transaction_is_none() -> None:
    client, replay = _client("unknown_transaction")
    assert client.get_transaction_status("00" * 31 + "aa") is None
    replay.assert_done()


@pytest.mark.parametrize(
    ("scenario", "error", "max_fee"),
    [
        ("reject_fee", FeeTooLowError, FeeRate(100_000)),
        ("reject_missing_inputs", MissingInputsError, None),
        ("reject_policy", PolicyRejectedError, None),
        ("reject_already_in_chain", AlreadyInChainError, None),
    ],
)
def test_broadcast_rejections_are_typed(
    signed_tx_hex: bytes,
    scenario: str,
    error: type[TransactionRejectedError],
    max_fee: FeeRate | None,
) -> None:
    client, replay = _client(scenario)
    with pytest.raises(error) as exc:
        client.send_raw_transaction(signed_tx_hex, max_fee_rate=max_fee)
    assert exc.value.method == "sendrawtransaction"
    assert exc.value.code in (-25, -26, -27)
    replay.assert_done()


def test_node_errors() -> None:
    client, _ = _client("warmup")
    with pytest.raises(NodeWarmingUpError):
        client.get_block_count()
    client, _ = _client("bad_credentials")
    with pytest.raises(RpcTransportError, match="authentication"):
        client.get_block_count()
    client, _ = _client("not_json")
    with pytest.raises(RpcTransportError, match="non-JSON"):
        client.get_block_count()


def test_malformed_replies_are_refused(signed_tx_hex: bytes) -> None:
    client, _ = _client("malformed_amount")
    with pytest.raises(RpcResponseError, match="bad amount"):
        client.list_unspent()
    client, _ = _client("wrong_txid")
    with pytest.raises(RpcResponseError, match="not the transaction's"):
        client.send_raw_transaction(signed_tx_hex)


def test_bad_raw_transaction_is_refused_before_any_request() -> None:
    client, replay = _client("warmup")
    with pytest.raises(DecodeError):
        client.send_raw_transaction(b"\x00\x01")
    # Nothing was sent: the recorded call is still pending.
    with pytest.raises(AssertionError):
        replay.assert_done()


def test_unreachable_node() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = BitcoinRpcClient(
        "http://127.0.0.1:1", http_client=httpx.Client(transport=httpx.MockTransport(refuse))
    )
    with pytest.raises(RpcTransportError, match="ConnectError"):
        client.get_block_count()


def test_fixture_names_its_source() -> None:
    assert "NOT captured from a live node" in FIXTURE["source"]


def _answering(*bodies: object) -> BitcoinRpcClient:
    """A client whose node answers each request with the next body (hostile-node tests)."""
    pending = list(bodies)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=json.dumps(pending.pop(0)).encode())

    return BitcoinRpcClient(
        "http://127.0.0.1:18443", http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )


UTXO = {
    "txid": "fe8eabbf10515ace51cc42f0d06277916c786b1b98fe5eda22de2af16ead0807",
    "vout": 1,
    "scriptPubKey": "0014" + "00" * 20,
    "amount": 0.001,
    "confirmations": 1,
}


@pytest.mark.parametrize(
    ("call", "body", "message"),
    [
        ("list_unspent", {"result": {"not": "a list"}}, "non-list"),
        ("list_unspent", {"result": ["x"]}, "non-object"),
        ("list_unspent", {"result": [{**UTXO, "vout": "1"}]}, "non-integer vout"),
        ("list_unspent", {"result": [{**UTXO, "vout": 2**32}]}, "out-of-range vout"),
        ("list_unspent", {"result": [{**UTXO, "txid": "zz"}]}, "malformed txid"),
        ("list_unspent", {"result": [{**UTXO, "txid": 5}]}, "non-string txid"),
        ("list_unspent", {"result": [{**UTXO, "scriptPubKey": "xyz"}]}, "non-hex"),
        ("list_unspent", {"result": [{**UTXO, "amount": "0.1"}]}, "non-numeric"),
        ("list_unspent", {"result": [{**UTXO, "amount": -0.1}]}, "bad amount"),
        ("scan", {"result": {"success": False}}, "did not complete"),
        ("scan", {"result": {"success": True, "unspents": 3}}, "no unspents"),
        (
            "scan",
            {
                "result": {
                    "success": True,
                    "unspents": [UTXO],
                    "total_amount": 0.002,
                    "height": 1,
                    "bestblock": "00",
                }
            },
            "disagrees",
        ),
        ("fee", {"result": {"feerate": 2000}}, "absurd fee rate"),
        ("status", {"result": {"txid": "11" * 32, "confirmations": 1}}, "another transaction"),
        ("status", {"error": {"code": -8, "message": "parameter error"}}, "parameter error"),
        ("count", {"result": True}, "non-integer"),
    ],
)
def test_hostile_node_replies_are_typed_errors(call: str, body: object, message: str) -> None:
    calls: dict[str, Callable[[BitcoinRpcClient], object]] = {
        "list_unspent": lambda c: c.list_unspent(),
        "scan": lambda c: c.scan_utxos(["addr(x)"]),
        "fee": lambda c: c.estimate_smart_fee(1),
        "status": lambda c: c.get_transaction_status("00" * 32),
        "count": lambda c: c.get_block_count(),
    }
    client = _answering(body)
    with pytest.raises(RpcResponseError, match=message):
        calls[call](client)


@pytest.mark.parametrize(
    ("body", "message"),
    [([1, 2], "not a JSON-RPC object"), ({"id": 1}, "without a result")],
)
def test_non_json_rpc_replies(body: object, message: str) -> None:
    with pytest.raises(RpcTransportError, match=message):
        _answering(body).get_block_count()


def test_other_rejections_and_context_manager(signed_tx_hex: bytes) -> None:
    from shardvault.service.chainclients.bitcoin import MalformedTransactionError

    with _answering({"error": {"code": -22, "message": "TX decode failed"}}) as client:
        with pytest.raises(MalformedTransactionError):
            client.send_raw_transaction(signed_tx_hex)
    client = _answering({"error": {"code": -25, "message": "Fee exceeds maximum configured"}})
    with pytest.raises(TransactionRejectedError) as exc:
        client.send_raw_transaction(signed_tx_hex)
    assert type(exc.value) is TransactionRejectedError
    with (
        _answering({"error": {"code": -28, "message": "Verifying blocks"}}) as client,
        pytest.raises(NodeWarmingUpError),
    ):
        client.send_raw_transaction(signed_tx_hex)
    owned = BitcoinRpcClient("http://127.0.0.1:1")
    owned.close()


def test_async_client_runs_the_same_calls(signed_tx_hex: bytes) -> None:
    import asyncio

    from shardvault.service.chainclients.bitcoin import AsyncBitcoinRpcClient

    replay = Replay(FIXTURE["scenarios"]["broadcast_and_confirm"])

    async def flow() -> tuple[str, int | None, int | None, int]:
        http = httpx.AsyncClient(transport=httpx.MockTransport(replay))
        async with AsyncBitcoinRpcClient(
            "http://127.0.0.1:18443", auth=AUTH, http_client=http
        ) as client:
            txid = await client.send_raw_transaction(signed_tx_hex)
            in_mempool = await client.get_confirmations(txid)
            confirmations = await client.get_confirmations(txid)
            height = await client.get_block_count()
        await http.aclose()
        return txid, in_mempool, confirmations, height

    txid, in_mempool, confirmations, height = asyncio.run(flow())
    assert in_mempool == 0
    replay.assert_done()
    assert txid == "87b5ceff1a631d9808e0f3727b1aff7f0550428b27d965fe076e57baddffcfea"
    assert confirmations == 3
    assert height == 252

    async def rejected() -> None:
        client = AsyncBitcoinRpcClient(
            "http://127.0.0.1:18443",
            auth=AUTH,
            http_client=httpx.AsyncClient(
                transport=httpx.MockTransport(Replay(FIXTURE["scenarios"]["reject_missing_inputs"]))
            ),
        )
        await client.send_raw_transaction(signed_tx_hex)

    with pytest.raises(MissingInputsError):
        asyncio.run(rejected())

    async def other_calls() -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            method = json.loads(request.content)["method"]
            results: dict[str, object] = {
                "listunspent": [],
                "scantxoutset": {
                    "success": True,
                    "unspents": [],
                    "total_amount": 0,
                    "height": 1,
                    "bestblock": "00",
                },
                "estimatesmartfee": {"errors": ["no data"], "blocks": 0},
            }
            return httpx.Response(200, json={"result": results[method], "error": None, "id": 1})

        client = AsyncBitcoinRpcClient(
            "http://127.0.0.1:18443",
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        )
        assert await client.list_unspent() == []
        assert (await client.scan_utxos(["addr(x)"])).total == 0
        assert await client.estimate_smart_fee(3) is None
        await client.aclose()
        owned = AsyncBitcoinRpcClient("http://127.0.0.1:1")
        await owned.aclose()

    asyncio.run(other_calls())


def test_raw_transaction_must_be_the_one_asked_for(signed_tx_hex: bytes) -> None:
    """A previous transaction proves an input's amount only if it hashes to the txid:
    a node that answers another one, or no transaction at all, is refused."""
    from shardvault.chains.bitcoin import parse_transaction

    txid = parse_transaction(signed_tx_hex).txid_hex
    requests: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(json.loads(request.content)["params"])
        return httpx.Response(200, content=json.dumps({"result": signed_tx_hex.hex()}).encode())

    client = BitcoinRpcClient(
        "http://127.0.0.1:18443", http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    assert client.get_raw_transaction(txid, "ab" * 32) == signed_tx_hex
    assert client.get_raw_transaction(txid) == signed_tx_hex
    assert requests == [[txid, False, "ab" * 32], [txid, False]]
    with pytest.raises(RpcResponseError, match="another transaction"):
        client.get_raw_transaction("00" * 32)
    with pytest.raises(RpcResponseError, match="not a transaction"):
        _answering({"result": "00"}).get_raw_transaction(txid)
    with pytest.raises(RpcResponseError, match="non-hex"):
        _answering({"result": "zz"}).get_raw_transaction(txid)


def test_scan_reads_the_block_hash_of_each_output() -> None:
    body = {
        "success": True,
        "unspents": [{**UTXO, "blockhash": "ab" * 32}, UTXO],
        "total_amount": 0.002,
        "height": 1,
        "bestblock": "00",
    }
    scan = _answering({"result": body}).scan_utxos(["addr(x)"])
    assert [u.block_hash for u in scan.unspents] == ["ab" * 32, None]
    malformed = {**body, "unspents": [{**UTXO, "blockhash": "xyz"}], "total_amount": 0.001}
    with pytest.raises(RpcResponseError, match="malformed blockhash"):
        _answering({"result": malformed}).scan_utxos(["addr(x)"])
