"""Ethereum JSON-RPC client (execution API over HTTP, via httpx).

Covers what broadcast and confirmation need: chain id, pending nonce, gas estimation,
EIP-1559 fee suggestion from ``eth_feeHistory``, ``eth_sendRawTransaction`` with typed
rejection errors, receipts, balances (ether and ERC-20 ``balanceOf`` through
``eth_call``), and reorg-aware confirmation counting: a transaction's confirmations count
only while the block that included it is still canonical, and start over when it is not.

Method semantics follow the Ethereum execution API specification
(ethereum/execution-apis); quantities are 0x-hex without leading zeros.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import httpx

from shardvault.chains.amounts import Wei
from shardvault.chains.ethereum import Address, encode_call, parse_address
from shardvault.chains.ethereum.abi import ERC20_BALANCE_OF
from shardvault.service.chainclients import (
    RpcResponseError,
    RpcTransportError,
    TransactionRejectedError,
)

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


class EthereumRpcClient:
    """A synchronous JSON-RPC client for one Ethereum node.

    Owns its ``httpx.Client`` unless one is passed in; use as a context manager or call
    :meth:`close`.
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
        """Send one JSON-RPC request and return its ``result``.

        Raises:
            RpcTransportError: connection failure, timeout, or a non-JSON-RPC reply.
            RpcResponseError: the node returned a JSON-RPC error object.
        """
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
        try:
            body: object = response.json()
        except ValueError as exc:
            raise RpcTransportError(
                f"HTTP {response.status_code} with a non-JSON body", method=method
            ) from exc
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
            raise RpcTransportError(f"HTTP {response.status_code} without a result", method=method)
        return body["result"]

    def chain_id(self) -> int:
        """``eth_chainId``."""
        return _quantity(self.request("eth_chainId"), "eth_chainId")

    def block_number(self) -> int:
        """``eth_blockNumber``: the head's number."""
        return _quantity(self.request("eth_blockNumber"), "eth_blockNumber")

    def get_transaction_count(self, address: Address | str, block: BlockTag = "pending") -> int:
        """``eth_getTransactionCount``; with ``pending`` this is the next usable nonce."""
        account = address if isinstance(address, Address) else parse_address(address)
        result = self.request("eth_getTransactionCount", [account.checksummed, _block_param(block)])
        return _quantity(result, "eth_getTransactionCount")

    def get_balance(self, address: Address | str, block: BlockTag = "latest") -> Wei:
        """``eth_getBalance`` in wei."""
        account = address if isinstance(address, Address) else parse_address(address)
        result = self.request("eth_getBalance", [account.checksummed, _block_param(block)])
        return Wei(_quantity(result, "eth_getBalance"))

    def call(self, to: Address, data: bytes, block: BlockTag = "latest") -> bytes:
        """``eth_call`` of ``data`` on ``to``; returns the raw return data."""
        result = self.request(
            "eth_call", [{"to": to.checksummed, "data": "0x" + data.hex()}, _block_param(block)]
        )
        return _data(result, "eth_call")

    def erc20_balance(
        self, token: Address | str, owner: Address | str, block: BlockTag = "latest"
    ) -> int:
        """An ERC-20 ``balanceOf(owner)`` in the token's base units."""
        contract = token if isinstance(token, Address) else parse_address(token, field="token")
        holder = owner if isinstance(owner, Address) else parse_address(owner, field="owner")
        raw = self.call(contract, encode_call(ERC20_BALANCE_OF, [holder]), block)
        if len(raw) != 32:
            raise RpcResponseError("balanceOf returned other than one word", method="eth_call")
        return int.from_bytes(raw, "big")

    def estimate_gas(
        self,
        *,
        sender: Address,
        to: Address | None,
        value: Wei = _ZERO_WEI,
        data: bytes = b"",
    ) -> int:
        """``eth_estimateGas`` for a call from ``sender``."""
        call: dict[str, str] = {"from": sender.checksummed, "value": hex(value)}
        if to is not None:
            call["to"] = to.checksummed
        if data:
            call["data"] = "0x" + data.hex()
        return _quantity(self.request("eth_estimateGas", [call]), "eth_estimateGas")

    def suggest_fees(
        self,
        *,
        blocks: int = 10,
        percentile: float = 50.0,
        minimum_priority_fee: Wei = _ONE_GWEI,
        base_fee_multiplier: int = 2,
    ) -> FeeSuggestion:
        """Suggest EIP-1559 fee caps from ``eth_feeHistory`` over the last ``blocks``.

        The tip is the median over those blocks of each block's ``percentile`` reward,
        but at least ``minimum_priority_fee``; the fee cap is
        ``base_fee_multiplier * next base fee + tip``, which stays valid through several
        full blocks of base-fee growth (EIP-1559 raises it by at most 12.5% per block).
        """
        method = "eth_feeHistory"
        history = _object(self.request(method, [hex(blocks), "latest", [percentile]]), method)
        base_fees = history.get("baseFeePerGas")
        if not isinstance(base_fees, list) or not base_fees:
            raise RpcResponseError("returned no baseFeePerGas", method=method)
        # The list holds one entry more than the blocks asked for: the next block's base fee.
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

    def send_raw_transaction(self, raw: bytes) -> bytes:
        """``eth_sendRawTransaction``; returns the 32-byte transaction hash.

        Raises:
            NonceTooLowError, NonceTooHighError, UnderpricedError, InsufficientFundsError,
            AlreadyKnownError, IntrinsicGasTooLowError, WrongChainError: the node refused
                the transaction for that reason.
            TransactionRejectedError: refused for another reason.
            RpcTransportError: the node could not be reached; the transaction may or may
                not have arrived, so re-send the same bytes (idempotent) rather than a new one.
        """
        method = "eth_sendRawTransaction"
        try:
            result = self.request(method, ["0x" + raw.hex()])
        except RpcResponseError as exc:
            raise classify_rejection(exc.node_message, exc.code) from exc
        return _data(result, method, 32)

    def get_transaction_receipt(self, tx_hash: bytes) -> Receipt | None:
        """``eth_getTransactionReceipt``; ``None`` while the transaction is not mined."""
        method = "eth_getTransactionReceipt"
        result = self.request(method, ["0x" + tx_hash.hex()])
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

    def get_block_hash(self, number: int) -> bytes | None:
        """The hash of the canonical block at ``number``, or ``None`` beyond the head."""
        method = "eth_getBlockByNumber"
        result = self.request(method, [hex(number), False])
        if result is None:
            return None
        return _data(_object(result, method).get("hash"), method, 32)


class ConfirmationTracker:
    """Counts a transaction's confirmations, resetting them when a reorg moves it.

    The tracker remembers the hash of the block that included the transaction. On each
    :meth:`poll` it checks that the canonical block at that height still has that hash;
    if the receipt now names another block, or the block left the canonical chain, the
    count starts over from the new inclusion (or the state becomes ``reorged``).
    """

    def __init__(
        self, client: EthereumRpcClient, tx_hash: bytes, *, required_confirmations: int = 1
    ) -> None:
        if required_confirmations < 1:
            raise ValueError("required_confirmations must be at least 1")
        self._client = client
        self._tx_hash = tx_hash
        self._required = required_confirmations
        self._included_in: bytes | None = None
        self._reorgs = 0

    def poll(self) -> ConfirmationStatus:
        """Query the node once and report the transaction's standing."""
        receipt = self._client.get_transaction_receipt(self._tx_hash)
        canonical = (
            self._client.get_block_hash(receipt.block_number) if receipt is not None else None
        )
        if receipt is None or canonical != receipt.block_hash:
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
        head = self._client.block_number()
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
