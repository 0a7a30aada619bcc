"""Clients of blockchain nodes (JSON-RPC over HTTP), used by broadcast and confirmation.

Each chain has its own module (``ethereum``; Bitcoin and Solana alongside). They share the
error categories below: a caller can retry on :class:`RpcTransportError`, must not blindly
retry on :class:`TransactionRejectedError`, and reports :class:`RpcResponseError` as a
node-side failure. Node responses are untrusted input: malformed results raise
:class:`RpcResponseError` naming the method, never a raw exception.
"""

from shardvault.errors import ShardvaultError


class ChainClientError(ShardvaultError):
    """Root of the chain clients' errors."""

    def __init__(self, message: str, *, method: str | None = None) -> None:
        self.method = method
        super().__init__(f"{method}: {message}" if method else message)


class RpcTransportError(ChainClientError):
    """The node could not be reached or answered with something that is not JSON-RPC."""


class RpcResponseError(ChainClientError):
    """The node answered with a JSON-RPC error object or a malformed result."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        code: int | None = None,
    ) -> None:
        self.code = code
        self.node_message = message
        super().__init__(message, method=method)


class TransactionRejectedError(RpcResponseError):
    """The node refused a transaction at broadcast."""


__all__ = [
    "ChainClientError",
    "RpcResponseError",
    "RpcTransportError",
    "TransactionRejectedError",
]
