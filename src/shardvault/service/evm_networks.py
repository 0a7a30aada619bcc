"""EVM networks as data: what a workspace registers for a chain id, checked once, and the
node client the pipeline reads a network through.

A network names its chain id (any valid EIP-155 id), its nodes (one or more JSON-RPC
URLs, tried in order when one cannot be reached), an optional private broadcast URL
(``eth_sendRawTransaction`` goes there and nowhere else, so a signed transfer reaches no
public mempool before it is mined: a protection against front-running that relays such
as Flashbots Protect or a builder's private RPC offer), the symbol of its native coin,
its confirmation depth and its fee model. Every URL passes the SSRF guard
(:mod:`.destinations`) when it is registered and again, resolved, at every connection.

Which chain ids the co-signers accept is not decided here: the admin quorum lists a
network in the signed asset registry of a policy bundle (:mod:`shardvault.policy.
registry`), and a co-signer refuses any chain id its registry does not list. A
well-known chain id (:data:`shardvault.chains.ethereum.KNOWN_NETWORKS`) keeps the
table's native symbol here, as the registry requires.

:class:`EvmNodes` (one per pipeline runtime) makes :class:`FailoverEthereumClient` s:
each read goes to the node that answered last and moves on to the next in order when
that one cannot be reached (a transport error, never a JSON-RPC error: a node that
answers is believed); after ``retry_first_s`` the first node is tried first again.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from shardvault.chains.bitcoin import NETWORK_NAMES as BITCOIN_NETWORK_NAMES
from shardvault.chains.errors import ChainError
from shardvault.chains.ethereum import WELL_KNOWN_NAMES, well_known
from shardvault.chains.ethereum.models import check_chain_id
from shardvault.service.chainclients import ChainClientError, RpcTransportError
from shardvault.service.chainclients.ethereum import EthereumRpcClient, RpcCall
from shardvault.service.destinations import DestinationPolicy
from shardvault.service.errors import ValidationError
from shardvault.store.models_vaults import EvmFeeModel, Network

T = TypeVar("T")

MAX_RPC_URLS = 8
"""The most nodes one network lists."""

_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")

LEGACY_REFUSAL = (
    "legacy gas-price networks are not supported: the pipeline builds EIP-1559 (type 2) "
    "transactions only, so register a chain that takes them (fee_model eip1559)"
)
"""Why a network with the legacy fee model is refused (docs/transactions.md)."""


@dataclass(frozen=True, slots=True)
class EvmNetworkSettings:
    """An EVM network's settings as registered: checked, normalised."""

    chain_id: int
    native_symbol: str
    fee_model: EvmFeeModel
    rpc_urls: tuple[str, ...]
    broadcast_url: str | None


def check_evm_network(
    *,
    name: str,
    chain_id: int | None,
    native_symbol: str | None,
    fee_model: str,
    rpc_urls: Sequence[str],
    broadcast_url: str | None,
    rpc_policy: DestinationPolicy,
) -> EvmNetworkSettings:
    """Check what a workspace registers for an EVM network (module docstring).

    ``native_symbol`` defaults to the well-known table's for a well-known chain id, and
    to ``ETH`` for any other; a well-known chain id keeps the table's symbol. Any other
    chain id may not take ``name`` if the name is a well-known network's or a Bitcoin
    network's (the registry gives each chain id its network name).

    Raises:
        ValidationError: naming the field: no or an invalid chain id; another chain id
            under a well-known or Bitcoin network's name; a symbol that is
            not 1-32 of A-Z a-z 0-9 . _ - or not the well-known one; the legacy fee
            model (not supported) or another; more than :data:`MAX_RPC_URLS` nodes, a
            node listed twice, or a URL the SSRF guard refuses.
    """
    if chain_id is None:
        raise ValidationError("chain_id", "an EVM network needs its EIP-155 chain id")
    try:
        check_chain_id(chain_id)
    except ChainError as exc:
        raise ValidationError("chain_id", exc.reason) from None
    known = well_known(chain_id)
    if known is None and (name in WELL_KNOWN_NAMES or name in BITCOIN_NETWORK_NAMES):
        raise ValidationError(
            "name",
            f"{name!r} names another network (a well-known EVM chain id or a Bitcoin "
            f"network), not chain id {chain_id}",
        )
    symbol = native_symbol
    if symbol is None:
        symbol = known.native_symbol if known is not None else "ETH"
    if not _SYMBOL.match(symbol):
        raise ValidationError("native_symbol", "must be 1-32 of A-Z, a-z, 0-9, '.', '_', '-'")
    if known is not None and symbol != known.native_symbol:
        raise ValidationError(
            "native_symbol",
            f"chain id {chain_id} is {known.name}, whose native coin is {known.native_symbol}",
        )
    if fee_model == EvmFeeModel.LEGACY.value:
        raise ValidationError("fee_model", LEGACY_REFUSAL)
    if fee_model != EvmFeeModel.EIP1559.value:
        raise ValidationError("fee_model", "must be eip1559 (or legacy, which is refused)")
    return EvmNetworkSettings(
        chain_id,
        symbol,
        EvmFeeModel.EIP1559,
        check_rpc_urls(rpc_urls, rpc_policy),
        check_broadcast_url(broadcast_url, rpc_policy),
    )


def check_rpc_urls(urls: Sequence[str], rpc_policy: DestinationPolicy) -> tuple[str, ...]:
    """A network's nodes, in order, each through the SSRF guard (credentials allowed).

    Raises:
        ValidationError: too many, one listed twice, or one the guard refuses (the field
            is ``rpc_urls[i]``, or ``rpc_url`` for the only one).
    """
    if len(urls) > MAX_RPC_URLS:
        raise ValidationError("rpc_urls", f"at most {MAX_RPC_URLS} nodes")
    checked: list[str] = []
    for i, url in enumerate(urls):
        where = "rpc_url" if len(urls) == 1 else f"rpc_urls[{i}]"
        url = rpc_policy.check_url(url, field=where, allow_credentials=True)
        if url in checked:
            raise ValidationError(where, "lists a node twice")
        checked.append(url)
    return tuple(checked)


def check_broadcast_url(url: str | None, rpc_policy: DestinationPolicy) -> str | None:
    """The private broadcast endpoint, through the SSRF guard (credentials allowed).

    Raises:
        ValidationError: ``broadcast_url`` refused by the guard.
    """
    if url is None:
        return None
    return rpc_policy.check_url(url, field="broadcast_url", allow_credentials=True)


def rpc_urls_of(network: Network) -> tuple[str, ...]:
    """A network's nodes in the order they are tried (its ``rpc_url`` first)."""
    fallbacks = json.loads(network.fallback_rpc_urls or "[]")
    first = (network.rpc_url,) if network.rpc_url else ()
    return first + tuple(str(url) for url in fallbacks)


def native_symbol_of(network: Network) -> str | None:
    """An EVM network's native symbol: its own, else (a row made before the column
    existed) the well-known table's; ``None`` for another chain family or an unknown
    chain id without one."""
    if network.native_symbol is not None:
        return network.native_symbol
    known = well_known(network.chain_id)
    return None if known is None else known.native_symbol


# --- Reading a network's nodes ----------------------------------------------------


@dataclass
class EvmNodes:
    """Makes the clients of networks' nodes and remembers, per list of nodes, which one
    answered last (module docstring). Thread-safe; one per pipeline runtime."""

    retry_first_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _answered: dict[tuple[str, ...], tuple[int, float]] = field(
        default_factory=dict, init=False, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def client(self, network: Network, http_client: httpx.Client) -> FailoverEthereumClient:
        """A client of ``network``'s nodes over ``http_client`` (not closed by it).

        Raises:
            ValueError: the network has no node.
        """
        return FailoverEthereumClient(
            rpc_urls_of(network), network.broadcast_url, http_client=http_client, nodes=self
        )

    def first(self, urls: tuple[str, ...]) -> int:
        """The index of the node to ask first."""
        with self._lock:
            answered = self._answered.get(urls)
        if answered is None or self.clock() - answered[1] > self.retry_first_s:
            return 0
        return answered[0]

    def answered(self, urls: tuple[str, ...], index: int) -> None:
        """Node ``index`` of ``urls`` answered (or, for the first node, forget the rest)."""
        with self._lock:
            if index == 0:
                self._answered.pop(urls, None)
            elif urls not in self._answered or self._answered[urls][0] != index:
                self._answered[urls] = (index, self.clock())


class FailoverEthereumClient(EthereumRpcClient):
    """An :class:`EthereumRpcClient` over a network's nodes: every call goes to one node
    and, when it cannot be reached, to the next (module docstring); a transaction is
    sent only to the broadcast URL when the network has one.

    Raises as :class:`EthereumRpcClient` does; :class:`RpcTransportError` only when no
    node could be reached (the last node's error) or the broadcast URL could not.
    """

    def __init__(
        self,
        rpc_urls: Sequence[str],
        broadcast_url: str | None,
        *,
        http_client: httpx.Client,
        nodes: EvmNodes | None = None,
    ) -> None:
        if not rpc_urls:
            raise ValueError("a network without a node")
        super().__init__(rpc_urls[0], http_client=http_client)
        self._urls = tuple(rpc_urls)
        self._nodes_memory = nodes if nodes is not None else EvmNodes()
        self._clients = [EthereumRpcClient(u, http_client=http_client) for u in self._urls]
        self._broadcast = (
            None
            if broadcast_url is None
            else EthereumRpcClient(broadcast_url, http_client=http_client)
        )

    def _failover(self, attempt: Callable[[EthereumRpcClient], T]) -> T:
        start = self._nodes_memory.first(self._urls)
        error: RpcTransportError | None = None
        for step in range(len(self._clients)):
            index = (start + step) % len(self._clients)
            try:
                result = attempt(self._clients[index])
            except RpcTransportError as exc:
                error = exc
                continue
            self._nodes_memory.answered(self._urls, index)
            return result
        assert error is not None
        raise error

    def request(self, method: str, params: Sequence[object] = ()) -> object:
        """One JSON-RPC request to the first node that can be reached."""
        return self._failover(lambda node: node.request(method, params))

    def run(self, call: RpcCall[T]) -> T:
        """A described call; a broadcast goes to the broadcast URL when there is one."""
        if call.broadcast and self._broadcast is not None:
            return self._broadcast.run(call)
        return super().run(call)

    def run_many(self, calls: Sequence[RpcCall[Any]]) -> list[object | ChainClientError]:
        """A batch to the first node that can be reached; with a broadcast among the
        calls and a broadcast URL, each call on its own (see :meth:`run`)."""
        if self._broadcast is not None and any(c.broadcast for c in calls):
            return self.run_each(calls)
        return self._failover(lambda node: node.run_many(calls))
