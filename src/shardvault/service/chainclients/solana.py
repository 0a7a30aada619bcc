"""Solana JSON-RPC client: blockhash, balances, broadcast and signature statuses.

Speaks the Solana JSON-RPC API over HTTP (``getLatestBlockhash``, ``getBalance``,
``getTokenAccountBalance``, ``sendTransaction`` with base64 encoding and preflight,
``getSignatureStatuses``, ``getBlockHeight``), with the request and result shapes of the
Solana RPC reference (``{"context": {...}, "value": ...}`` for context-wrapped results).

Node replies are untrusted: token amounts are read from the exact ``amount`` string and
``decimals``, never from the float ``uiAmount``; base58 values are checked for length.
Error codes of the Solana RPC server become typed errors: -32002 (preflight simulation
failed) is :class:`SimulationFailedError`, with :class:`BlockhashNotFoundError` and
:class:`InsufficientFundsForFeeError` for its common causes; -32003 (signature
verification failure) is :class:`SignatureRejectedError`; -32005 (node behind) is
:class:`NodeUnhealthyError`.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import base58
import httpx

from shardvault.chains.amounts import UINT64_MAX, Lamports
from shardvault.chains.solana import Pubkey, parse_transaction
from shardvault.service.chainclients import (
    RpcResponseError,
    RpcTransportError,
    TransactionRejectedError,
)

Commitment = Literal["processed", "confirmed", "finalized"]
"""How settled a state must be for the node to report it."""

T = TypeVar("T")

SEND_TRANSACTION_PREFLIGHT_FAILURE = -32002
TRANSACTION_SIGNATURE_VERIFICATION_FAILURE = -32003
NODE_UNHEALTHY = -32005


class SimulationFailedError(TransactionRejectedError):
    """Preflight simulation failed; ``error`` is the runtime's error, ``logs`` its logs."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        code: int | None = None,
        error: object = None,
        logs: tuple[str, ...] = (),
    ) -> None:
        self.error = error
        self.logs = logs
        super().__init__(message, method=method, code=code)


class BlockhashNotFoundError(SimulationFailedError):
    """The recent blockhash expired or is unknown: rebuild and re-sign."""


class InsufficientFundsForFeeError(SimulationFailedError):
    """The fee payer cannot pay the fee."""


class SignatureRejectedError(TransactionRejectedError):
    """The node's signature verification failed."""


class NodeUnhealthyError(RpcResponseError):
    """The node is behind the cluster; retry elsewhere or later."""


@dataclass(frozen=True, slots=True)
class LatestBlockhash:
    """A recent blockhash and the last block height at which it is still valid."""

    blockhash: bytes
    last_valid_block_height: int
    slot: int

    @property
    def blockhash_base58(self) -> str:
        """The blockhash as the RPC shows it."""
        return str(base58.b58encode(self.blockhash).decode())


@dataclass(frozen=True, slots=True)
class TokenBalance:
    """A token account's balance: base units and the mint's decimals."""

    amount: int
    decimals: int


@dataclass(frozen=True, slots=True)
class SignatureStatus:
    """Where a transaction stands; ``confirmations`` is ``None`` once rooted (finalized)."""

    slot: int
    confirmations: int | None
    error: object
    confirmation_status: Commitment | None

    @property
    def succeeded(self) -> bool:
        """Whether it executed without error."""
        return self.error is None

    @property
    def finalized(self) -> bool:
        """Whether the cluster has rooted its block."""
        return self.confirmation_status == "finalized"


def _object(value: object, method: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise RpcResponseError("returned a non-object result", method=method)
    return value


def _int(value: object, method: str, name: str, maximum: int = UINT64_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise RpcResponseError(f"returned a bad {name}", method=method)
    return value


def _value(result: object, method: str) -> tuple[object, int]:
    # Context-wrapped results: {"context": {"slot": n}, "value": ...}.
    body = _object(result, method)
    context = _object(body.get("context"), method)
    if "value" not in body:
        raise RpcResponseError("returned no value", method=method)
    return body["value"], _int(context.get("slot"), method, "context.slot")


def _base58_32(value: object, method: str, name: str) -> bytes:
    if not isinstance(value, str):
        raise RpcResponseError(f"returned a non-string {name}", method=method)
    try:
        raw = base58.b58decode(value)
    except ValueError:
        raise RpcResponseError(f"returned a non-base58 {name}", method=method) from None
    if len(raw) != 32:
        raise RpcResponseError(f"returned a {name} of {len(raw)} bytes", method=method)
    return raw


def _rejection(message: str, code: int | None, data: object) -> TransactionRejectedError:
    method = "sendTransaction"
    if code == SEND_TRANSACTION_PREFLIGHT_FAILURE:
        details = data if isinstance(data, Mapping) else {}
        error = details.get("err")
        raw_logs = details.get("logs")
        logs = (
            tuple(str(line)[:300] for line in raw_logs[:50]) if isinstance(raw_logs, list) else ()
        )
        kind: type[SimulationFailedError] = SimulationFailedError
        if error == "BlockhashNotFound":
            kind = BlockhashNotFoundError
        elif error == "InsufficientFundsForFee":
            kind = InsufficientFundsForFeeError
        return kind(message, method=method, code=code, error=error, logs=logs)
    if code == TRANSACTION_SIGNATURE_VERIFICATION_FAILURE:
        return SignatureRejectedError(message, method=method, code=code)
    return TransactionRejectedError(message, method=method, code=code)


class _RpcError(RpcResponseError):
    def __init__(self, message: str, *, method: str, code: int | None, data: object) -> None:
        self.data = data
        super().__init__(message, method=method, code=code)


def _envelope(response: httpx.Response, method: str) -> object:
    try:
        body: object = json.loads(response.content)
    except ValueError as exc:
        raise RpcTransportError(
            f"HTTP {response.status_code} with a non-JSON body", method=method
        ) from exc
    if not isinstance(body, Mapping):
        raise RpcTransportError("reply is not a JSON-RPC object", method=method)
    error = body.get("error")
    if error is not None:
        err = _object(error, method)
        raw_code = err.get("code")
        code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
        message = err.get("message")
        text = (message if isinstance(message, str) else "unspecified error")[:500]
        if code == NODE_UNHEALTHY:
            raise NodeUnhealthyError(text, method=method, code=code)
        raise _RpcError(text, method=method, code=code, data=err.get("data"))
    if "result" not in body:
        raise RpcTransportError(f"HTTP {response.status_code} without a result", method=method)
    return body["result"]


@dataclass(frozen=True, slots=True)
class RpcCall(Generic[T]):
    """One RPC described without I/O: method, params, a parser for the untrusted result,
    and how an error reply is mapped. The sync and async clients run the same
    descriptions."""

    method: str
    params: tuple[object, ...]
    parse: Callable[[object], T]
    recover: Callable[[_RpcError], T] | None = None


def latest_blockhash_call(commitment: Commitment) -> RpcCall[LatestBlockhash]:
    """``getLatestBlockhash`` at ``commitment``."""
    method = "getLatestBlockhash"

    def parse(result: object) -> LatestBlockhash:
        value, slot = _value(result, method)
        body = _object(value, method)
        return LatestBlockhash(
            _base58_32(body.get("blockhash"), method, "blockhash"),
            _int(body.get("lastValidBlockHeight"), method, "lastValidBlockHeight"),
            slot,
        )

    return RpcCall(method, ({"commitment": commitment},), parse)


def block_height_call(commitment: Commitment) -> RpcCall[int]:
    """``getBlockHeight``: compare with a blockhash's last valid height."""
    method = "getBlockHeight"
    return RpcCall(method, ({"commitment": commitment},), lambda r: _int(r, method, "height"))


def balance_call(account: Pubkey, commitment: Commitment) -> RpcCall[Lamports]:
    """``getBalance`` in lamports."""
    method = "getBalance"

    def parse(result: object) -> Lamports:
        value, _ = _value(result, method)
        return Lamports(_int(value, method, "balance"))

    return RpcCall(method, (str(account), {"commitment": commitment}), parse)


def token_account_balance_call(
    token_account: Pubkey, commitment: Commitment
) -> RpcCall[TokenBalance]:
    """``getTokenAccountBalance`` from the exact ``amount`` string and ``decimals``."""
    method = "getTokenAccountBalance"

    def parse(result: object) -> TokenBalance:
        value, _ = _value(result, method)
        body = _object(value, method)
        amount = body.get("amount")
        if not isinstance(amount, str) or not amount.isdigit() or len(amount) > 20:
            raise RpcResponseError("returned a malformed amount", method=method)
        return TokenBalance(
            _int(int(amount), method, "amount"),
            _int(body.get("decimals"), method, "decimals", 255),
        )

    return RpcCall(method, (str(token_account), {"commitment": commitment}), parse)


def send_transaction_call(
    wire: bytes, commitment: Commitment, *, skip_preflight: bool = False
) -> RpcCall[str]:
    """``sendTransaction`` (base64); the result must be the transaction's own signature.

    Raises (when built):
        ChainError: ``wire`` is not a transaction; nothing is sent.
    """
    method = "sendTransaction"
    tx = parse_transaction(wire)
    expected = str(base58.b58encode(tx.signatures[0]).decode()) if tx.signatures else ""
    config = {
        "encoding": "base64",
        "skipPreflight": skip_preflight,
        "preflightCommitment": commitment,
    }

    def parse(result: object) -> str:
        if result != expected:
            raise RpcResponseError(
                "returned a signature that is not the transaction's", method=method
            )
        return expected

    def recover(exc: _RpcError) -> str:
        raise _rejection(exc.node_message, exc.code, exc.data) from exc

    return RpcCall(method, (base64.b64encode(wire).decode(), config), parse, recover)


def signature_statuses_call(
    signatures: Sequence[str], *, search_transaction_history: bool = False
) -> RpcCall[list[SignatureStatus | None]]:
    """``getSignatureStatuses``: one status per signature, ``None`` when unknown."""
    method = "getSignatureStatuses"
    count = len(signatures)

    def parse(result: object) -> list[SignatureStatus | None]:
        value, _ = _value(result, method)
        if not isinstance(value, list) or len(value) != count:
            raise RpcResponseError("returned a list of the wrong length", method=method)
        statuses: list[SignatureStatus | None] = []
        for item in value:
            if item is None:
                statuses.append(None)
                continue
            entry = _object(item, method)
            confirmations = entry.get("confirmations")
            status = entry.get("confirmationStatus")
            if status not in (None, "processed", "confirmed", "finalized"):
                raise RpcResponseError("returned an unknown confirmationStatus", method=method)
            statuses.append(
                SignatureStatus(
                    _int(entry.get("slot"), method, "slot"),
                    None if confirmations is None else _int(confirmations, method, "confirmations"),
                    entry.get("err"),
                    status,
                )
            )
        return statuses

    params = (list(signatures), {"searchTransactionHistory": search_transaction_history})
    return RpcCall(method, params, parse)


def _payload(ids: Iterator[int], call: RpcCall[T]) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": next(ids), "method": call.method, "params": list(call.params)}


def _finish(call: RpcCall[T], response: httpx.Response) -> T:
    try:
        result = _envelope(response, call.method)
    except _RpcError as exc:
        if call.recover is None:
            raise
        return call.recover(exc)
    return call.parse(result)


class SolanaRpcClient:
    """A synchronous client for one Solana RPC node.

    Every method raises :class:`RpcTransportError` when the node cannot be reached and
    :class:`RpcResponseError` for an error reply or a malformed result.
    """

    def __init__(
        self,
        url: str,
        *,
        commitment: Commitment = "confirmed",
        timeout: float = 30.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._url = url
        self._commitment: Commitment = commitment
        self._owns_client = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)
        self._ids = itertools.count(1)

    def close(self) -> None:
        """Close the HTTP connection pool if this client created it."""
        if self._owns_client:
            self._http.close()

    def __enter__(self) -> SolanaRpcClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run(self, call: RpcCall[T]) -> T:
        """Send one described call and parse its reply."""
        try:
            response = self._http.post(self._url, json=_payload(self._ids, call))
        except httpx.HTTPError as exc:
            raise RpcTransportError(
                f"request failed: {type(exc).__name__}", method=call.method
            ) from exc
        return _finish(call, response)

    def get_latest_blockhash(self) -> LatestBlockhash:
        """``getLatestBlockhash`` at the client's commitment."""
        return self.run(latest_blockhash_call(self._commitment))

    def get_block_height(self) -> int:
        """``getBlockHeight``."""
        return self.run(block_height_call(self._commitment))

    def get_balance(self, account: Pubkey) -> Lamports:
        """``getBalance`` in lamports."""
        return self.run(balance_call(account, self._commitment))

    def get_token_account_balance(self, token_account: Pubkey) -> TokenBalance:
        """``getTokenAccountBalance``."""
        return self.run(token_account_balance_call(token_account, self._commitment))

    def send_transaction(self, wire: bytes, *, skip_preflight: bool = False) -> str:
        """``sendTransaction``; returns the signature after checking it is ours.

        Raises:
            TransactionRejectedError: a typed rejection (simulation, signature).
            RpcResponseError: the node returned another signature.
        """
        return self.run(
            send_transaction_call(wire, self._commitment, skip_preflight=skip_preflight)
        )

    def get_signature_statuses(
        self, signatures: Sequence[str], *, search_transaction_history: bool = False
    ) -> list[SignatureStatus | None]:
        """``getSignatureStatuses``: one status per signature, ``None`` when unknown."""
        return self.run(
            signature_statuses_call(
                signatures, search_transaction_history=search_transaction_history
            )
        )


class AsyncSolanaRpcClient:
    """The asynchronous twin of :class:`SolanaRpcClient` (same calls, same errors)."""

    def __init__(
        self,
        url: str,
        *,
        commitment: Commitment = "confirmed",
        timeout: float = 30.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = url
        self._commitment: Commitment = commitment
        self._owns_client = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self._ids = itertools.count(1)

    async def aclose(self) -> None:
        """Close the HTTP connection pool if this client created it."""
        if self._owns_client:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncSolanaRpcClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def run(self, call: RpcCall[T]) -> T:
        """Send one described call and parse its reply."""
        try:
            response = await self._http.post(self._url, json=_payload(self._ids, call))
        except httpx.HTTPError as exc:
            raise RpcTransportError(
                f"request failed: {type(exc).__name__}", method=call.method
            ) from exc
        return _finish(call, response)

    async def get_latest_blockhash(self) -> LatestBlockhash:
        """``getLatestBlockhash`` at the client's commitment."""
        return await self.run(latest_blockhash_call(self._commitment))

    async def get_block_height(self) -> int:
        """``getBlockHeight``."""
        return await self.run(block_height_call(self._commitment))

    async def get_balance(self, account: Pubkey) -> Lamports:
        """``getBalance`` in lamports."""
        return await self.run(balance_call(account, self._commitment))

    async def get_token_account_balance(self, token_account: Pubkey) -> TokenBalance:
        """``getTokenAccountBalance``."""
        return await self.run(token_account_balance_call(token_account, self._commitment))

    async def send_transaction(self, wire: bytes, *, skip_preflight: bool = False) -> str:
        """``sendTransaction`` with typed rejections."""
        return await self.run(
            send_transaction_call(wire, self._commitment, skip_preflight=skip_preflight)
        )

    async def get_signature_statuses(
        self, signatures: Sequence[str], *, search_transaction_history: bool = False
    ) -> list[SignatureStatus | None]:
        """``getSignatureStatuses``."""
        return await self.run(
            signature_statuses_call(
                signatures, search_transaction_history=search_transaction_history
            )
        )


__all__ = [
    "AsyncSolanaRpcClient",
    "BlockhashNotFoundError",
    "InsufficientFundsForFeeError",
    "LatestBlockhash",
    "NodeUnhealthyError",
    "RpcCall",
    "SignatureRejectedError",
    "SignatureStatus",
    "SimulationFailedError",
    "SolanaRpcClient",
    "TokenBalance",
]
