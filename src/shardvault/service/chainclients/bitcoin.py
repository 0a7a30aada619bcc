"""Bitcoin Core JSON-RPC client: UTXOs, fee estimation, broadcast, confirmations.

Speaks Bitcoin Core's JSON-RPC over HTTP with basic authentication (``rpcauth`` or the
cookie file's user and password), optionally against a wallet endpoint
(``/wallet/<name>``). The calls used are ``listunspent`` (wallet UTXOs),
``scantxoutset`` (UTXOs of descriptors, no wallet needed), ``estimatesmartfee``,
``sendrawtransaction``, ``getrawtransaction`` (verbose, for confirmations and the block
hash; raw, for a spent coin's previous transaction, whose txid is checked) and
``getblockcount``, with the result shapes the Bitcoin Core RPC reference documents.

Node replies are untrusted input. JSON numbers are read as :class:`decimal.Decimal`, never
as floats, and BTC amounts become :class:`Satoshi` exactly (more than eight decimals is an
error). Error codes from ``src/rpc/protocol.h`` become typed errors: broadcast rejections
(-25 ``RPC_VERIFY_ERROR``, -26 ``RPC_VERIFY_REJECTED``, -27
``RPC_VERIFY_ALREADY_IN_CHAIN``, -22 ``RPC_DESERIALIZATION_ERROR``) are
:class:`TransactionRejectedError` subclasses; -28 ``RPC_IN_WARMUP`` is
:class:`NodeWarmingUpError` (retry later); -5 ``RPC_INVALID_ADDRESS_OR_KEY`` on a lookup
means "not found".
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, NoReturn, TypeVar

import httpx

from shardvault.chains.amounts import MAX_SATOSHI, Satoshi, parse_decimal_amount
from shardvault.chains.bitcoin import OutPoint, parse_transaction
from shardvault.chains.bitcoin.coinselect import FeeRate
from shardvault.chains.errors import ChainError
from shardvault.service.chainclients import (
    RpcResponseError,
    RpcTransportError,
    TransactionRejectedError,
)
from shardvault.service.destinations import DestinationRefused

T = TypeVar("T")

RPC_MISC_ERROR = -1
RPC_INVALID_ADDRESS_OR_KEY = -5
RPC_DESERIALIZATION_ERROR = -22
RPC_VERIFY_ERROR = -25
RPC_VERIFY_REJECTED = -26
RPC_VERIFY_ALREADY_IN_CHAIN = -27
RPC_IN_WARMUP = -28
RPC_METHOD_NOT_FOUND = -32601


class NodeWarmingUpError(RpcResponseError):
    """The node is still loading (``RPC_IN_WARMUP``); retry later."""


class MissingInputsError(TransactionRejectedError):
    """An input is unknown or already spent (``bad-txns-inputs-missingorspent``)."""


class FeeTooLowError(TransactionRejectedError):
    """The fee is below the relay or mempool minimum, or a replacement's required bump."""


class PolicyRejectedError(TransactionRejectedError):
    """Rejected by mempool policy or consensus rules (``RPC_VERIFY_REJECTED``)."""


class AlreadyInChainError(TransactionRejectedError):
    """The transaction is already confirmed (``RPC_VERIFY_ALREADY_IN_CHAIN``)."""


class MalformedTransactionError(TransactionRejectedError):
    """The node could not decode the transaction (``RPC_DESERIALIZATION_ERROR``)."""


_FEE_NEEDLES = ("min relay fee not met", "mempool min fee not met", "insufficient fee")


def classify_rejection(message: str, code: int | None) -> TransactionRejectedError:
    """Map a ``sendrawtransaction`` error (code and Core's reject reason) to a type."""
    method = "sendrawtransaction"
    lowered = message.lower()
    if code == RPC_VERIFY_ALREADY_IN_CHAIN:
        return AlreadyInChainError(message, method=method, code=code)
    if code == RPC_DESERIALIZATION_ERROR:
        return MalformedTransactionError(message, method=method, code=code)
    if "missingorspent" in lowered or "missing inputs" in lowered:
        return MissingInputsError(message, method=method, code=code)
    if code == RPC_VERIFY_REJECTED:
        if any(needle in lowered for needle in _FEE_NEEDLES):
            return FeeTooLowError(message, method=method, code=code)
        return PolicyRejectedError(message, method=method, code=code)
    return TransactionRejectedError(message, method=method, code=code)


@dataclass(frozen=True, slots=True)
class UnspentOutput:
    """A UTXO as the node reports it."""

    outpoint: OutPoint
    value: Satoshi
    script_pubkey: bytes
    confirmations: int
    address: str | None = None
    descriptor: str | None = None
    block_hash: str | None = None
    """The block that holds the output (``scantxoutset`` answers it since Core 26), which
    lets ``getrawtransaction`` find the transaction on a node without ``-txindex``."""


@dataclass(frozen=True, slots=True)
class ScanResult:
    """``scantxoutset``: the UTXOs found, their total and the chain tip scanned."""

    unspents: tuple[UnspentOutput, ...]
    total: Satoshi
    height: int
    best_block: str


@dataclass(frozen=True, slots=True)
class TransactionStatus:
    """Where a transaction stands: unconfirmed (0) or in a block, and how deep."""

    txid: str
    confirmations: int
    block_hash: str | None

    @property
    def confirmed(self) -> bool:
        """Whether it is in a block of the current best chain."""
        return self.confirmations > 0


# --- Parsing of untrusted results ----------------------------------------------------------


def _object(value: object, method: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise RpcResponseError("returned a non-object result", method=method)
    return value


def _int(value: object, method: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RpcResponseError(f"returned a non-integer {name}", method=method)
    return value


def _str(value: object, method: str, name: str) -> str:
    if not isinstance(value, str):
        raise RpcResponseError(f"returned a non-string {name}", method=method)
    return value


def _hex(value: object, method: str, name: str) -> bytes:
    text = _str(value, method, name)
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise RpcResponseError(f"returned a non-hex {name}", method=method) from None


def btc_to_satoshi(value: object, method: str, name: str = "amount") -> Satoshi:
    """A BTC amount (JSON number read as Decimal) to satoshi, exactly.

    Raises:
        RpcResponseError: not a number, negative, more than 8 decimals or above 21e6 BTC.
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise RpcResponseError(f"returned a non-numeric {name}", method=method)
    try:
        return Satoshi(
            parse_decimal_amount(format(Decimal(value), "f"), 8, maximum=MAX_SATOSHI, field=name)
        )
    except ChainError as exc:
        raise RpcResponseError(f"returned a bad {name}: {exc}", method=method) from None


def _txid(value: object, method: str, name: str = "txid") -> str:
    text = _str(value, method, name)
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise RpcResponseError(f"returned a malformed {name}", method=method)
    return text


def _unspent(item: object, method: str) -> UnspentOutput:
    entry = _object(item, method)
    vout = _int(entry.get("vout"), method, "vout")
    if not 0 <= vout <= 0xFFFF_FFFF:
        raise RpcResponseError("returned an out-of-range vout", method=method)
    address = entry.get("address")
    descriptor = entry.get("desc")
    block_hash = entry.get("blockhash")
    return UnspentOutput(
        outpoint=OutPoint.from_display(_txid(entry.get("txid"), method), vout),
        value=btc_to_satoshi(entry.get("amount"), method),
        script_pubkey=_hex(entry.get("scriptPubKey"), method, "scriptPubKey"),
        confirmations=_int(entry.get("confirmations", 0), method, "confirmations"),
        address=address if isinstance(address, str) else None,
        descriptor=descriptor if isinstance(descriptor, str) else None,
        block_hash=None if block_hash is None else _txid(block_hash, method, "blockhash"),
    )


def _decode_body(response: httpx.Response, method: str) -> Mapping[str, object]:
    if response.status_code == 401:
        raise RpcTransportError("authentication failed (HTTP 401)", method=method)
    try:
        body: object = json.loads(response.content, parse_float=Decimal)
    except ValueError as exc:
        raise RpcTransportError(
            f"HTTP {response.status_code} with a non-JSON body", method=method
        ) from exc
    if not isinstance(body, Mapping):
        raise RpcTransportError("reply is not a JSON-RPC object", method=method)
    return body


def _envelope(response: httpx.Response, method: str) -> object:
    # Core answers RPC errors with HTTP 500 (JSON-RPC 1.0) or 200 (2.0), both with a body.
    body = _decode_body(response, method)
    error = body.get("error")
    if error is not None:
        err = _object(error, method)
        raw_code = err.get("code")
        code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
        message = err.get("message")
        text = (message if isinstance(message, str) else "unspecified error")[:500]
        if code == RPC_IN_WARMUP:
            raise NodeWarmingUpError(text, method=method, code=code)
        raise RpcResponseError(text, method=method, code=code)
    if "result" not in body:
        raise RpcTransportError(f"HTTP {response.status_code} without a result", method=method)
    return body["result"]


@dataclass(frozen=True, slots=True)
class RpcCall(Generic[T]):
    """One RPC described without I/O: method, params, a parser for the untrusted result,
    and what an error reply means (re-raise, a typed rejection, or a value such as
    "not found"). The sync and async clients run the same descriptions."""

    method: str
    params: tuple[object, ...]
    parse: Callable[[object], T]
    recover: Callable[[RpcResponseError], T] | None = None


def _reraise(exc: RpcResponseError) -> NoReturn:
    raise exc


def block_count_call() -> RpcCall[int]:
    """``getblockcount``: the height of the best chain."""
    return RpcCall("getblockcount", (), lambda r: _int(r, "getblockcount", "height"))


def list_unspent_call(
    min_confirmations: int = 1, addresses: Sequence[str] = ()
) -> RpcCall[list[UnspentOutput]]:
    """``listunspent`` of the wallet, optionally for some addresses only."""
    method = "listunspent"
    params: tuple[object, ...] = (min_confirmations, 9_999_999)
    if addresses:
        params = (*params, list(addresses))

    def parse(result: object) -> list[UnspentOutput]:
        if not isinstance(result, list):
            raise RpcResponseError("returned a non-list result", method=method)
        return [_unspent(item, method) for item in result]

    return RpcCall(method, params, parse)


def scan_utxos_call(descriptors: Sequence[str]) -> RpcCall[ScanResult]:
    """``scantxoutset start``: UTXOs of output descriptors, without a wallet."""
    method = "scantxoutset"

    def parse(raw: object) -> ScanResult:
        result = _object(raw, method)
        if result.get("success") is not True:
            raise RpcResponseError("scan did not complete", method=method)
        raw_unspents = result.get("unspents")
        if not isinstance(raw_unspents, list):
            raise RpcResponseError("returned no unspents list", method=method)
        unspents = tuple(_unspent(item, method) for item in raw_unspents)
        total = btc_to_satoshi(result.get("total_amount"), method, "total_amount")
        if total != sum(u.value for u in unspents):
            raise RpcResponseError("total_amount disagrees with the unspents", method=method)
        return ScanResult(
            unspents,
            total,
            _int(result.get("height"), method, "height"),
            _str(result.get("bestblock"), method, "bestblock"),
        )

    return RpcCall(method, ("start", list(descriptors)), parse)


def estimate_smart_fee_call(
    confirmation_target: int, mode: str = "conservative"
) -> RpcCall[FeeRate | None]:
    """``estimatesmartfee``: a fee rate, or ``None`` when the node has too little data
    (it then answers with ``errors`` and no ``feerate``)."""
    method = "estimatesmartfee"

    def parse(raw: object) -> FeeRate | None:
        result = _object(raw, method)
        if "feerate" not in result:
            return None
        sat_per_kvb = btc_to_satoshi(result["feerate"], method, "feerate")
        try:
            return FeeRate(sat_per_kvb)
        except ChainError as exc:
            raise RpcResponseError(f"returned an absurd fee rate: {exc}", method=method) from None

    return RpcCall(method, (confirmation_target, mode), parse)


def send_raw_transaction_call(raw: bytes, max_fee_rate: FeeRate | None = None) -> RpcCall[str]:
    """``sendrawtransaction``; the result must be the transaction's own txid.

    Raises (when built):
        ChainError: ``raw`` is not a transaction; nothing is sent.
    """
    method = "sendrawtransaction"
    expected = parse_transaction(raw).txid_hex
    params: tuple[object, ...] = (raw.hex(),)
    if max_fee_rate is not None:
        params = (*params, format(Decimal(max_fee_rate.sat_per_kvb) / Decimal(10**8), "f"))

    def parse(result: object) -> str:
        if _txid(result, method) != expected:
            raise RpcResponseError("returned a txid that is not the transaction's", method=method)
        return expected

    def recover(exc: RpcResponseError) -> str:
        if isinstance(exc, NodeWarmingUpError):
            raise exc
        raise classify_rejection(exc.node_message, exc.code) from exc

    return RpcCall(method, params, parse, recover)


def transaction_status_call(txid: str) -> RpcCall[TransactionStatus | None]:
    """``getrawtransaction <txid> true``: confirmations and block, or ``None`` when the
    node does not know the transaction (not in its mempool, and not indexed)."""
    method = "getrawtransaction"

    def parse(raw: object) -> TransactionStatus | None:
        result = _object(raw, method)
        if _txid(result.get("txid"), method) != txid:
            raise RpcResponseError("returned another transaction", method=method)
        block_hash = result.get("blockhash")
        return TransactionStatus(
            txid,
            _int(result.get("confirmations", 0), method, "confirmations"),
            block_hash if isinstance(block_hash, str) else None,
        )

    def recover(exc: RpcResponseError) -> TransactionStatus | None:
        if exc.code == RPC_INVALID_ADDRESS_OR_KEY:
            return None
        raise exc

    return RpcCall(method, (txid, True), parse, recover)


def raw_transaction_call(txid: str, block_hash: str | None = None) -> RpcCall[bytes]:
    """``getrawtransaction <txid> false [<blockhash>]``: the transaction's bytes, which
    must hash to ``txid`` (a node cannot hand over another transaction). Without
    ``-txindex`` Core finds a confirmed transaction only given its block."""
    method = "getrawtransaction"

    def parse(raw: object) -> bytes:
        data = _hex(raw, method, "hex")
        try:
            found = parse_transaction(data).txid_hex
        except ChainError as exc:
            raise RpcResponseError(
                f"returned bytes that are not a transaction: {exc}", method=method
            ) from None
        if found != txid:
            raise RpcResponseError("returned another transaction", method=method)
        return data

    params: tuple[object, ...] = (txid, False) if block_hash is None else (txid, False, block_hash)
    return RpcCall(method, params, parse)


class _Base:
    def __init__(self, url: str, auth: tuple[str, str] | None, wallet: str | None) -> None:
        base = url.rstrip("/")
        self._url = f"{base}/wallet/{wallet}" if wallet else base
        self._auth = httpx.BasicAuth(*auth) if auth else None
        self._ids = itertools.count(1)

    def _payload(self, method: str, params: Sequence[object]) -> dict[str, object]:
        return {"jsonrpc": "1.0", "id": next(self._ids), "method": method, "params": list(params)}


def _finish(call: RpcCall[T], response: httpx.Response) -> T:
    try:
        result = _envelope(response, call.method)
    except RpcResponseError as exc:
        return (call.recover or _reraise)(exc)
    return call.parse(result)


class BitcoinRpcClient(_Base):
    """A synchronous client for one Bitcoin Core node.

    Owns its ``httpx.Client`` unless one is passed in. Every method raises
    :class:`RpcTransportError` when the node cannot be reached (or refuses the
    credentials) and :class:`RpcResponseError` for an error reply or a malformed result.
    """

    def __init__(
        self,
        url: str,
        *,
        auth: tuple[str, str] | None = None,
        wallet: str | None = None,
        timeout: float = 30.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(url, auth, wallet)
        self._owns_client = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)

    def close(self) -> None:
        """Close the HTTP connection pool if this client created it."""
        if self._owns_client:
            self._http.close()

    def __enter__(self) -> BitcoinRpcClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run(self, call: RpcCall[T]) -> T:
        """Send one described call and parse its reply."""
        payload = self._payload(call.method, call.params)
        try:
            if self._auth is None:
                response = self._http.post(self._url, json=payload)
            else:
                response = self._http.post(self._url, json=payload, auth=self._auth)
        except httpx.HTTPError as exc:
            raise RpcTransportError(
                f"request failed: {type(exc).__name__}", method=call.method
            ) from exc
        except DestinationRefused as exc:
            raise RpcTransportError(f"refused: {exc}", method=call.method) from exc
        return _finish(call, response)

    def get_block_count(self) -> int:
        """``getblockcount``."""
        return self.run(block_count_call())

    def list_unspent(
        self, min_confirmations: int = 1, addresses: Sequence[str] = ()
    ) -> list[UnspentOutput]:
        """``listunspent`` (see :func:`list_unspent_call`)."""
        return self.run(list_unspent_call(min_confirmations, addresses))

    def scan_utxos(self, descriptors: Sequence[str]) -> ScanResult:
        """``scantxoutset start`` (see :func:`scan_utxos_call`)."""
        return self.run(scan_utxos_call(descriptors))

    def estimate_smart_fee(
        self, confirmation_target: int, mode: str = "conservative"
    ) -> FeeRate | None:
        """``estimatesmartfee`` (see :func:`estimate_smart_fee_call`)."""
        return self.run(estimate_smart_fee_call(confirmation_target, mode))

    def send_raw_transaction(self, raw: bytes, max_fee_rate: FeeRate | None = None) -> str:
        """``sendrawtransaction``; returns the txid after checking it is ours.

        Raises:
            TransactionRejectedError: a typed rejection (see :func:`classify_rejection`).
            RpcResponseError: the node returned another transaction's id.
        """
        return self.run(send_raw_transaction_call(raw, max_fee_rate))

    def get_transaction_status(self, txid: str) -> TransactionStatus | None:
        """``getrawtransaction`` (see :func:`transaction_status_call`)."""
        return self.run(transaction_status_call(txid))

    def get_confirmations(self, txid: str) -> int | None:
        """Confirmations of ``txid`` (0 in the mempool), ``None`` if the node lost it."""
        status = self.get_transaction_status(txid)
        return None if status is None else status.confirmations

    def get_raw_transaction(self, txid: str, block_hash: str | None = None) -> bytes:
        """``getrawtransaction`` raw (see :func:`raw_transaction_call`)."""
        return self.run(raw_transaction_call(txid, block_hash))


class AsyncBitcoinRpcClient(_Base):
    """The asynchronous twin of :class:`BitcoinRpcClient` (same calls, same errors)."""

    def __init__(
        self,
        url: str,
        *,
        auth: tuple[str, str] | None = None,
        wallet: str | None = None,
        timeout: float = 30.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(url, auth, wallet)
        self._owns_client = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        """Close the HTTP connection pool if this client created it."""
        if self._owns_client:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncBitcoinRpcClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def run(self, call: RpcCall[T]) -> T:
        """Send one described call and parse its reply."""
        payload = self._payload(call.method, call.params)
        try:
            if self._auth is None:
                response = await self._http.post(self._url, json=payload)
            else:
                response = await self._http.post(self._url, json=payload, auth=self._auth)
        except httpx.HTTPError as exc:
            raise RpcTransportError(
                f"request failed: {type(exc).__name__}", method=call.method
            ) from exc
        return _finish(call, response)

    async def get_block_count(self) -> int:
        """``getblockcount``."""
        return await self.run(block_count_call())

    async def list_unspent(
        self, min_confirmations: int = 1, addresses: Sequence[str] = ()
    ) -> list[UnspentOutput]:
        """``listunspent``."""
        return await self.run(list_unspent_call(min_confirmations, addresses))

    async def scan_utxos(self, descriptors: Sequence[str]) -> ScanResult:
        """``scantxoutset start``."""
        return await self.run(scan_utxos_call(descriptors))

    async def estimate_smart_fee(
        self, confirmation_target: int, mode: str = "conservative"
    ) -> FeeRate | None:
        """``estimatesmartfee``."""
        return await self.run(estimate_smart_fee_call(confirmation_target, mode))

    async def send_raw_transaction(self, raw: bytes, max_fee_rate: FeeRate | None = None) -> str:
        """``sendrawtransaction`` with typed rejections."""
        return await self.run(send_raw_transaction_call(raw, max_fee_rate))

    async def get_transaction_status(self, txid: str) -> TransactionStatus | None:
        """``getrawtransaction``."""
        return await self.run(transaction_status_call(txid))

    async def get_confirmations(self, txid: str) -> int | None:
        """Confirmations of ``txid`` (0 in the mempool), ``None`` if the node lost it."""
        status = await self.get_transaction_status(txid)
        return None if status is None else status.confirmations

    async def get_raw_transaction(self, txid: str, block_hash: str | None = None) -> bytes:
        """``getrawtransaction`` raw."""
        return await self.run(raw_transaction_call(txid, block_hash))


__all__ = [
    "AlreadyInChainError",
    "AsyncBitcoinRpcClient",
    "BitcoinRpcClient",
    "FeeTooLowError",
    "MalformedTransactionError",
    "MissingInputsError",
    "NodeWarmingUpError",
    "PolicyRejectedError",
    "RpcCall",
    "ScanResult",
    "TransactionStatus",
    "UnspentOutput",
    "btc_to_satoshi",
    "classify_rejection",
]
