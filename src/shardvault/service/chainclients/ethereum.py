"""Ethereum JSON-RPC client (execution API over HTTP, via httpx).

Covers what broadcast and confirmation need: chain id, pending nonce, gas estimation,
EIP-1559 fee suggestion from ``eth_feeHistory``, ``eth_sendRawTransaction`` with typed
rejection errors, receipts, balances (ether and ERC-20 ``balanceOf`` through
``eth_call``), and reorg-aware confirmation counting: a transaction's confirmations count
only while the block that included it is still canonical, and start over when it is not.

Method semantics follow the Ethereum execution API specification
(ethereum/execution-apis); quantities are 0x-hex without leading zeros.

Each method is first described as an :class:`RpcCall` (method, params, and a parser for
the untrusted result), with no I/O; :class:`EthereumRpcClient` (sync) and
:class:`AsyncEthereumRpcClient` run the same descriptions over httpx, so both speak and
validate identically; the sync client also runs several descriptions as one JSON-RPC
batch (:meth:`EthereumRpcClient.run_many`: one round trip, each answer or error its
call's own). Confirmation counting is likewise a pure step
(:meth:`ConfirmationTracker.observe`) driven by either client.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import httpx

from shardvault.chains.amounts import Wei
from shardvault.chains.ethereum import Address, encode_call, parse_address
from shardvault.chains.ethereum.abi import ERC20_BALANCE_OF
from shardvault.service.chainclients import (
    ChainClientError,
    RpcResponseError,
    RpcTransportError,
    TransactionRejectedError,
)
from shardvault.service.destinations import DestinationRefused

BlockTag = int | Literal["latest", "pending", "safe", "finalized", "earliest"]
"""A block number or one of the execution API's tags."""

_QUANTITY = re.compile(r"0x(0|[1-9a-f][0-9a-f]*)")
_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
_ZERO_WEI = Wei(0)
_ONE_GWEI = Wei(1_000_000_000)


class NonceTooLowError(TransactionRejectedError):
    """The nonce is already used by a mined transaction of this account."""


class NonceTooHighError(TransactionRejectedError):
    """The nonce leaves a gap the node will not queue."""


class UnderpricedError(TransactionRejectedError):
    """Fees are below the node's floor, the base fee, or a replacement's required bump."""


class InsufficientFundsError(TransactionRejectedError):
    """The sender cannot pay value plus gas limit times fee cap."""


class AlreadyKnownError(TransactionRejectedError):
    """The node already has this exact transaction."""


class IntrinsicGasTooLowError(TransactionRejectedError):
    """The gas limit is below the transaction's intrinsic cost."""


class WrongChainError(TransactionRejectedError):
    """The transaction was signed for another chain id."""


_REJECTIONS: tuple[tuple[tuple[str, ...], type[TransactionRejectedError]], ...] = (
    (("nonce too low",), NonceTooLowError),
    (("nonce too high",), NonceTooHighError),
    (
        ("already known", "known transaction", "already imported", "already exists"),
        AlreadyKnownError,
    ),
    (
        ("insufficient funds", "doesn't have enough funds", "not enough funds"),
        InsufficientFundsError,
    ),
    (("intrinsic gas too low", "gas limit too low", "intrinsic gas"), IntrinsicGasTooLowError),
    (
        (
            "underpriced",
            "gas price too low",
            "fee too low",
            "less than block base fee",
            "is too low",
            "maxfeepergas",
            "max fee per gas less",
        ),
        UnderpricedError,
    ),
    (("chain id", "chainid", "another chain", "incompatible eip-155"), WrongChainError),
)


def classify_rejection(message: str, code: int | None) -> TransactionRejectedError:
    """Map a node's rejection message (geth, hardhat, erigon wordings) to a typed error."""
    lowered = message.lower()
    for needles, error_type in _REJECTIONS:
        if any(n in lowered for n in needles):
            return error_type(message, method="eth_sendRawTransaction", code=code)
    return TransactionRejectedError(message, method="eth_sendRawTransaction", code=code)


def _quantity(value: object, method: str) -> int:
    if not isinstance(value, str) or _QUANTITY.fullmatch(value) is None:
        raise RpcResponseError(f"returned a malformed quantity {value!r:.80}", method=method)
    return int(value, 16)


def _data(value: object, method: str, size: int | None = None) -> bytes:
    if not isinstance(value, str) or _DATA.fullmatch(value) is None:
        raise RpcResponseError(f"returned malformed data {value!r:.80}", method=method)
    raw = bytes.fromhex(value[2:])
    if size is not None and len(raw) != size:
        raise RpcResponseError(f"returned {len(raw)} bytes, expected {size}", method=method)
    return raw


def _object(value: object, method: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise RpcResponseError("returned a non-object result", method=method)
    return value


def _block_param(block: BlockTag) -> str:
    return hex(block) if isinstance(block, int) else block


@dataclass(frozen=True, slots=True)
class Receipt:
    """The parts of a transaction receipt that broadcast and confirmation use."""

    transaction_hash: bytes
    block_number: int
    block_hash: bytes
    success: bool
    gas_used: int
    effective_gas_price: Wei | None
    contract_address: Address | None


@dataclass(frozen=True, slots=True)
class FeeSuggestion:
    """EIP-1559 fee caps suggested from recent blocks."""

    base_fee_per_gas: Wei
    max_priority_fee_per_gas: Wei
    max_fee_per_gas: Wei


@dataclass(frozen=True, slots=True)
class ConfirmationStatus:
    """Where a transaction stands.

    ``state`` is ``pending`` (no receipt), ``included`` (in a canonical block, fewer
    confirmations than required), ``confirmed`` or ``reorged`` (the block that held it
    left the canonical chain and no new inclusion is visible yet). ``reorgs`` counts how
    often the including block changed since tracking began.
    """

    state: Literal["pending", "included", "confirmed", "reorged"]
    confirmations: int
    block_number: int | None
    block_hash: bytes | None
    success: bool | None
    reorgs: int


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RpcCall(Generic[T]):
    """One JSON-RPC method call described without I/O: what to send and how to read the
    reply. ``broadcast`` marks ``eth_sendRawTransaction``, whose errors are rejections."""

    method: str
    params: tuple[object, ...]
    parse: Callable[[object], T]
    broadcast: bool = False


def _account(address: Address | str, field: str = "address") -> Address:
    return address if isinstance(address, Address) else parse_address(address, field=field)


def chain_id_call() -> RpcCall[int]:
    """``eth_chainId``."""
    return RpcCall("eth_chainId", (), lambda r: _quantity(r, "eth_chainId"))


def block_number_call() -> RpcCall[int]:
    """``eth_blockNumber``: the head's number."""
    return RpcCall("eth_blockNumber", (), lambda r: _quantity(r, "eth_blockNumber"))


def transaction_count_call(address: Address | str, block: BlockTag = "pending") -> RpcCall[int]:
    """``eth_getTransactionCount``; with ``pending`` this is the next usable nonce."""
    method = "eth_getTransactionCount"
    params = (_account(address).checksummed, _block_param(block))
    return RpcCall(method, params, lambda r: _quantity(r, method))


def balance_call(address: Address | str, block: BlockTag = "latest") -> RpcCall[Wei]:
    """``eth_getBalance`` in wei."""
    method = "eth_getBalance"
    params = (_account(address).checksummed, _block_param(block))
    return RpcCall(method, params, lambda r: Wei(_quantity(r, method)))


def eth_call_call(to: Address, data: bytes, block: BlockTag = "latest") -> RpcCall[bytes]:
    """``eth_call`` of ``data`` on ``to``; returns the raw return data."""
    params = ({"to": to.checksummed, "data": "0x" + data.hex()}, _block_param(block))
    return RpcCall("eth_call", params, lambda r: _data(r, "eth_call"))


def erc20_balance_call(
    token: Address | str, owner: Address | str, block: BlockTag = "latest"
) -> RpcCall[int]:
    """ERC-20 ``balanceOf(owner)`` through ``eth_call``, in the token's base units."""
    data = encode_call(ERC20_BALANCE_OF, [_account(owner, "owner")])

    def parse(result: object) -> int:
        raw = _data(result, "eth_call")
        if len(raw) != 32:
            raise RpcResponseError("balanceOf returned other than one word", method="eth_call")
        return int.from_bytes(raw, "big")

    inner = eth_call_call(_account(token, "token"), data, block)
    return RpcCall(inner.method, inner.params, parse)


def estimate_gas_call(
    *, sender: Address, to: Address | None, value: Wei = _ZERO_WEI, data: bytes = b""
) -> RpcCall[int]:
    """``eth_estimateGas`` for a call from ``sender``."""
    call: dict[str, str] = {"from": sender.checksummed, "value": hex(value)}
    if to is not None:
        call["to"] = to.checksummed
    if data:
        call["data"] = "0x" + data.hex()
    return RpcCall("eth_estimateGas", (call,), lambda r: _quantity(r, "eth_estimateGas"))


def fee_suggestion_call(
    *,
    blocks: int = 10,
    percentile: float = 50.0,
    minimum_priority_fee: Wei = _ONE_GWEI,
    base_fee_multiplier: int = 2,
) -> RpcCall[FeeSuggestion]:
    """EIP-1559 fee caps from ``eth_feeHistory`` over the last ``blocks``.

    The tip is the median over those blocks of each block's ``percentile`` reward, but at
    least ``minimum_priority_fee``; the fee cap is ``base_fee_multiplier * next base fee +
    tip``, which stays valid through several full blocks of base-fee growth (EIP-1559
    raises the base fee by at most 12.5% per block).
    """
    method = "eth_feeHistory"

    def parse(result: object) -> FeeSuggestion:
        history = _object(result, method)
        base_fees = history.get("baseFeePerGas")
        if not isinstance(base_fees, list) or not base_fees:
            raise RpcResponseError("returned no baseFeePerGas", method=method)
        # One entry more than the blocks asked for: the last is the next block's base fee.
        next_base_fee = _quantity(base_fees[-1], method)
        rewards = history.get("reward") or []
        if not isinstance(rewards, list):
            raise RpcResponseError("returned a malformed reward list", method=method)
        tips = sorted(_quantity(row[0], method) for row in rewards if isinstance(row, list) and row)
        median_tip = tips[len(tips) // 2] if tips else 0
        tip = max(median_tip, minimum_priority_fee)
        return FeeSuggestion(
            base_fee_per_gas=Wei(next_base_fee),
            max_priority_fee_per_gas=Wei(tip),
            max_fee_per_gas=Wei(next_base_fee * base_fee_multiplier + tip),
        )

    return RpcCall(method, (hex(blocks), "latest", [percentile]), parse)


def send_raw_transaction_call(raw: bytes) -> RpcCall[bytes]:
    """``eth_sendRawTransaction``; the result is the 32-byte transaction hash."""
    method = "eth_sendRawTransaction"
    return RpcCall(method, ("0x" + raw.hex(),), lambda r: _data(r, method, 32), broadcast=True)


def _parse_receipt(result: object) -> Receipt | None:
    method = "eth_getTransactionReceipt"
    if result is None:
        return None
    receipt = _object(result, method)
    contract = receipt.get("contractAddress")
    price = receipt.get("effectiveGasPrice")
    return Receipt(
        transaction_hash=_data(receipt.get("transactionHash"), method, 32),
        block_number=_quantity(receipt.get("blockNumber"), method),
        block_hash=_data(receipt.get("blockHash"), method, 32),
        success=_quantity(receipt.get("status"), method) == 1,
        gas_used=_quantity(receipt.get("gasUsed"), method),
        effective_gas_price=Wei(_quantity(price, method)) if price is not None else None,
        contract_address=Address(_data(contract, method, 20)) if contract else None,
    )


def receipt_call(tx_hash: bytes) -> RpcCall[Receipt | None]:
    """``eth_getTransactionReceipt``; ``None`` while the transaction is not mined."""
    return RpcCall("eth_getTransactionReceipt", ("0x" + tx_hash.hex(),), _parse_receipt)


def transaction_known_call(tx_hash: bytes) -> RpcCall[bool]:
    """``eth_getTransactionByHash``: whether the node holds the transaction (mined or
    pending)."""
    return RpcCall(
        "eth_getTransactionByHash", ("0x" + tx_hash.hex(),), lambda result: result is not None
    )


def block_hash_call(number: int) -> RpcCall[bytes | None]:
    """The hash of the canonical block at ``number``, or ``None`` beyond the head."""
    method = "eth_getBlockByNumber"

    def parse(result: object) -> bytes | None:
        if result is None:
            return None
        return _data(_object(result, method).get("hash"), method, 32)

    return RpcCall(method, (hex(number), False), parse)


def _envelope(response: httpx.Response, method: str) -> object:
    """Unwrap a JSON-RPC reply: the result, or the typed error it carries."""
    return _unwrap(_json(response, method), response.status_code, method)


def _json(response: httpx.Response, method: str) -> object:
    try:
        body: object = response.json()
    except ValueError as exc:
        raise RpcTransportError(
            f"HTTP {response.status_code} with a non-JSON body", method=method
        ) from exc
    return body


def _unwrap(body: object, status: int, method: str) -> object:
    if not isinstance(body, Mapping):
        raise RpcTransportError("reply is not a JSON-RPC object", method=method)
    error = body.get("error")
    if error is not None:
        err = _object(error, method)
        message = err.get("message")
        code = err.get("code")
        text = message if isinstance(message, str) else "unspecified error"
        data = err.get("data")
        if isinstance(data, Mapping) and isinstance(data.get("message"), str):
            text = f"{text} ({data['message']})"
        raise RpcResponseError(
            text[:500], method=method, code=code if isinstance(code, int) else None
        )
    if "result" not in body:
        raise RpcTransportError(f"HTTP {status} without a result", method=method)
    return body["result"]


def _batch_payload(calls: Sequence[RpcCall[Any]], ids: Sequence[int]) -> list[object]:
    return [
        {"jsonrpc": "2.0", "id": i, "method": c.method, "params": list(c.params)}
        for c, i in zip(calls, ids, strict=True)
    ]


def _batch_answers(
    calls: Sequence[RpcCall[Any]], ids: Sequence[int], body: object, status: int
) -> list[object | ChainClientError] | None:
    """Each call's parsed result or its own error, from a batch reply matched by id;
    ``None`` when the reply is not a batch reply (a node without batches answers one
    error object)."""
    if not isinstance(body, list):
        return None
    by_id = {item.get("id"): item for item in body if isinstance(item, Mapping)}
    answers: list[object | ChainClientError] = []
    for call, ident in zip(calls, ids, strict=True):
        try:
            if ident not in by_id:
                raise RpcTransportError("the batch reply has no answer", method=call.method)
            item = functools.partial(_unwrap, by_id[ident], status, call.method)
            answers.append(_answered(call, item))
        except ChainClientError as exc:
            answers.append(exc)
    return answers


def _answered(call: RpcCall[T], result: Callable[[], object]) -> T:
    """``call``'s parsed result; a broadcast's error becomes its typed rejection."""
    try:
        raw = result()
    except RpcResponseError as exc:
        if call.broadcast:
            raise classify_rejection(exc.node_message, exc.code) from exc
        raise
    return _finish(call, raw)


def _finish(call: RpcCall[T], result: object) -> T:
    return call.parse(result)


class EthereumRpcClient:
    """A synchronous JSON-RPC client for one Ethereum node.

    Owns its ``httpx.Client`` unless one is passed in; use as a context manager or call
    :meth:`close`. Every method raises :class:`RpcTransportError` when the node cannot be
    reached and :class:`RpcResponseError` when it answers with an error or a malformed
    result.
    """

    def __init__(
        self, url: str, *, timeout: float = 10.0, http_client: httpx.Client | None = None
    ) -> None:
        self._url = url
        self._owns_client = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)
        self._ids = itertools.count(1)

    def close(self) -> None:
        """Close the HTTP connection pool if this client created it."""
        if self._owns_client:
            self._http.close()

    def __enter__(self) -> EthereumRpcClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(self, method: str, params: Sequence[object] = ()) -> object:
        """Send one JSON-RPC request and return its raw ``result``."""
        payload = {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": method,
            "params": list(params),
        }
        try:
            response = self._http.post(self._url, json=payload)
        except httpx.HTTPError as exc:
            raise RpcTransportError(f"request failed: {type(exc).__name__}", method=method) from exc
        except DestinationRefused as exc:
            raise RpcTransportError(f"refused: {exc}", method=method) from exc
        return _envelope(response, method)

    def run(self, call: RpcCall[T]) -> T:
        """Execute a described call; broadcast errors become typed rejections."""
        return _answered(call, lambda: self.request(call.method, call.params))

    def run_many(self, calls: Sequence[RpcCall[Any]]) -> list[object | ChainClientError]:
        """Several calls in one JSON-RPC batch (one HTTP round trip), answered in order:
        each its parsed result or the error it alone met (a broadcast's as a typed
        rejection, as :meth:`run` raises it). A node that does not take batches is asked
        one call at a time. The node may run a batch's calls in any order (the
        specification leaves it open); callers that need an order check each answer.

        Raises:
            RpcTransportError: the node could not be reached (no call has an answer; a
                broadcast among them may or may not have arrived).
        """
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        try:
            response = self._http.post(self._url, json=_batch_payload(calls, ids))
        except httpx.HTTPError as exc:
            raise RpcTransportError(
                f"request failed: {type(exc).__name__}", method=calls[0].method
            ) from exc
        except DestinationRefused as exc:
            raise RpcTransportError(f"refused: {exc}", method=calls[0].method) from exc
        answers = _batch_answers(calls, ids, _json(response, calls[0].method), response.status_code)
        return answers if answers is not None else self.run_each(calls)

    def run_each(self, calls: Sequence[RpcCall[Any]]) -> list[object | ChainClientError]:
        """Each call as a request of its own (:meth:`run`), answers in order: a node
        error is the call's answer, an unreachable node ends the batch.

        Raises:
            RpcTransportError: the node cannot be reached.
        """
        answers: list[object | ChainClientError] = []
        for call in calls:
            try:
                answers.append(self.run(call))
            except RpcTransportError:
                raise
            except ChainClientError as exc:
                answers.append(exc)
        return answers

    def chain_id(self) -> int:
        """``eth_chainId``."""
        return self.run(chain_id_call())

    def block_number(self) -> int:
        """``eth_blockNumber``."""
        return self.run(block_number_call())

    def get_transaction_count(self, address: Address | str, block: BlockTag = "pending") -> int:
        """The account's nonce at ``block`` (``pending``: the next usable nonce)."""
        return self.run(transaction_count_call(address, block))

    def get_balance(self, address: Address | str, block: BlockTag = "latest") -> Wei:
        """The account's ether balance in wei."""
        return self.run(balance_call(address, block))

    def call(self, to: Address, data: bytes, block: BlockTag = "latest") -> bytes:
        """``eth_call``: the raw return data."""
        return self.run(eth_call_call(to, data, block))

    def erc20_balance(
        self, token: Address | str, owner: Address | str, block: BlockTag = "latest"
    ) -> int:
        """An ERC-20 ``balanceOf(owner)`` in the token's base units."""
        return self.run(erc20_balance_call(token, owner, block))

    def estimate_gas(
        self, *, sender: Address, to: Address | None, value: Wei = _ZERO_WEI, data: bytes = b""
    ) -> int:
        """``eth_estimateGas``."""
        return self.run(estimate_gas_call(sender=sender, to=to, value=value, data=data))

    def suggest_fees(
        self,
        *,
        blocks: int = 10,
        percentile: float = 50.0,
        minimum_priority_fee: Wei = _ONE_GWEI,
        base_fee_multiplier: int = 2,
    ) -> FeeSuggestion:
        """EIP-1559 fee caps from ``eth_feeHistory`` (see :func:`fee_suggestion_call`)."""
        return self.run(
            fee_suggestion_call(
                blocks=blocks,
                percentile=percentile,
                minimum_priority_fee=minimum_priority_fee,
                base_fee_multiplier=base_fee_multiplier,
            )
        )

    def send_raw_transaction(self, raw: bytes) -> bytes:
        """``eth_sendRawTransaction``; returns the 32-byte transaction hash.

        Raises:
            NonceTooLowError, NonceTooHighError, UnderpricedError, InsufficientFundsError,
            AlreadyKnownError, IntrinsicGasTooLowError, WrongChainError: the node refused
                the transaction for that reason.
            TransactionRejectedError: refused for another reason.
            RpcTransportError: the node could not be reached; the transaction may or may
                not have arrived, so re-send the same bytes rather than new ones.
        """
        return self.run(send_raw_transaction_call(raw))

    def get_transaction_receipt(self, tx_hash: bytes) -> Receipt | None:
        """The receipt, or ``None`` while the transaction is not mined."""
        return self.run(receipt_call(tx_hash))

    def get_block_hash(self, number: int) -> bytes | None:
        """The canonical block hash at ``number``, or ``None`` beyond the head."""
        return self.run(block_hash_call(number))


class AsyncEthereumRpcClient:
    """The asyncio twin of :class:`EthereumRpcClient` (same calls, same errors)."""

    def __init__(
        self, url: str, *, timeout: float = 10.0, http_client: httpx.AsyncClient | None = None
    ) -> None:
        self._url = url
        self._owns_client = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self._ids = itertools.count(1)

    async def aclose(self) -> None:
        """Close the HTTP connection pool if this client created it."""
        if self._owns_client:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncEthereumRpcClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def request(self, method: str, params: Sequence[object] = ()) -> object:
        """Send one JSON-RPC request and return its raw ``result``."""
        payload = {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": method,
            "params": list(params),
        }
        try:
            response = await self._http.post(self._url, json=payload)
        except httpx.HTTPError as exc:
            raise RpcTransportError(f"request failed: {type(exc).__name__}", method=method) from exc
        return _envelope(response, method)

    async def run(self, call: RpcCall[T]) -> T:
        """Execute a described call; broadcast errors become typed rejections."""
        try:
            result = await self.request(call.method, call.params)
        except RpcResponseError as exc:
            if call.broadcast:
                raise classify_rejection(exc.node_message, exc.code) from exc
            raise
        return _finish(call, result)

    async def chain_id(self) -> int:
        """``eth_chainId``."""
        return await self.run(chain_id_call())

    async def block_number(self) -> int:
        """``eth_blockNumber``."""
        return await self.run(block_number_call())

    async def get_transaction_count(
        self, address: Address | str, block: BlockTag = "pending"
    ) -> int:
        """The account's nonce at ``block`` (``pending``: the next usable nonce)."""
        return await self.run(transaction_count_call(address, block))

    async def get_balance(self, address: Address | str, block: BlockTag = "latest") -> Wei:
        """The account's ether balance in wei."""
        return await self.run(balance_call(address, block))

    async def erc20_balance(
        self, token: Address | str, owner: Address | str, block: BlockTag = "latest"
    ) -> int:
        """An ERC-20 ``balanceOf(owner)`` in the token's base units."""
        return await self.run(erc20_balance_call(token, owner, block))

    async def suggest_fees(self, *, blocks: int = 10, percentile: float = 50.0) -> FeeSuggestion:
        """EIP-1559 fee caps from ``eth_feeHistory``."""
        return await self.run(fee_suggestion_call(blocks=blocks, percentile=percentile))

    async def send_raw_transaction(self, raw: bytes) -> bytes:
        """``eth_sendRawTransaction``; raises the typed rejections of the sync client."""
        return await self.run(send_raw_transaction_call(raw))

    async def get_transaction_receipt(self, tx_hash: bytes) -> Receipt | None:
        """The receipt, or ``None`` while the transaction is not mined."""
        return await self.run(receipt_call(tx_hash))

    async def get_block_hash(self, number: int) -> bytes | None:
        """The canonical block hash at ``number``, or ``None`` beyond the head."""
        return await self.run(block_hash_call(number))


class ConfirmationTracker:
    """Counts a transaction's confirmations, resetting them when a reorg moves it.

    The tracker remembers the hash of the block that included the transaction. Each
    observation checks that the canonical block at the receipt's height has the
    receipt's block hash; if the receipt now names another block, or its block left the
    canonical chain, the count starts over from the new inclusion (or the state becomes
    ``reorged`` until the transaction is included again).

    :meth:`observe` is the pure step; :meth:`poll` and :meth:`poll_async` fetch what it
    needs with a sync or async client.
    """

    def __init__(
        self, client: EthereumRpcClient | None, tx_hash: bytes, *, required_confirmations: int = 1
    ) -> None:
        if required_confirmations < 1:
            raise ValueError("required_confirmations must be at least 1")
        self._client = client
        self.tx_hash = tx_hash
        self._required = required_confirmations
        self._included_in: bytes | None = None
        self._reorgs = 0

    def observe(
        self, receipt: Receipt | None, canonical_hash: bytes | None, head: int | None
    ) -> ConfirmationStatus:
        """Advance the tracker with one consistent view of the node.

        ``canonical_hash`` is the canonical block hash at the receipt's height and
        ``head`` the head's number; both are ignored when ``receipt`` is ``None``.
        """
        if receipt is None or canonical_hash != receipt.block_hash or head is None:
            # No receipt, or a stale receipt for a block that is no longer canonical.
            if self._included_in is not None:
                self._included_in = None
                self._reorgs += 1
                return ConfirmationStatus("reorged", 0, None, None, None, self._reorgs)
            state: Literal["pending", "reorged"] = "reorged" if self._reorgs else "pending"
            return ConfirmationStatus(state, 0, None, None, None, self._reorgs)
        if self._included_in is not None and self._included_in != receipt.block_hash:
            self._reorgs += 1
        self._included_in = receipt.block_hash
        confirmations = max(head - receipt.block_number + 1, 0)
        state_now: Literal["included", "confirmed"] = (
            "confirmed" if confirmations >= self._required else "included"
        )
        return ConfirmationStatus(
            state_now,
            confirmations,
            receipt.block_number,
            receipt.block_hash,
            receipt.success,
            self._reorgs,
        )

    def poll(self) -> ConfirmationStatus:
        """Query the node once through the sync client and report the standing."""
        if self._client is None:
            raise ValueError("this tracker has no sync client; use poll_async")
        receipt = self._client.get_transaction_receipt(self.tx_hash)
        if receipt is None:
            return self.observe(None, None, None)
        canonical = self._client.get_block_hash(receipt.block_number)
        return self.observe(receipt, canonical, self._client.block_number())

    async def poll_async(self, client: AsyncEthereumRpcClient) -> ConfirmationStatus:
        """Query the node once through an async client and report the standing."""
        receipt = await client.get_transaction_receipt(self.tx_hash)
        if receipt is None:
            return self.observe(None, None, None)
        canonical = await client.get_block_hash(receipt.block_number)
        return self.observe(receipt, canonical, await client.block_number())
