"""What the pipeline needs besides the database, and the memory it keeps between steps.

Every cache the steps use is an object owned by a :class:`PipelineRuntime`: the workers
of one server share its runtime (and so its caches), and a test that makes a fresh
runtime starts with empty ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import httpx

from shardvault.chains.amounts import Wei
from shardvault.lifecycle import TransactionStatus
from shardvault.service.chainclients.bitcoin import BitcoinRpcClient
from shardvault.service.chainclients.ethereum import EthereumRpcClient
from shardvault.service.destinations import DestinationPolicy, GuardedTransport
from shardvault.service.evm_networks import EvmNodes
from shardvault.service.signing import SigningBackend
from shardvault.store.models_vaults import Asset, Network, NetworkKind, WalletAddress

FaultHook = Callable[[str], None]
"""Called at named points of a step (tests use it to kill the process there)."""

EVM_NODE_TIMEOUT_S = 10.0
"""How long a call to an EVM node may take."""

BITCOIN_NODE_TIMEOUT_S = 30.0
"""How long a call to a Bitcoin Core node may take."""

CACHE_LIMIT = 10_000
"""The most entries one cache holds before it is emptied (each is only a shortcut)."""


class PipelineFault(Exception):
    """An inconsistency that stops one transaction (it is marked failed)."""


class NodeRefusal(PipelineFault):
    """The node refused the signed bytes for good: they are in no mempool, so what
    they would have used (an EVM nonce) is free again."""


ContextKey = tuple[str, str, str]
"""(workspace, wallet, source address) of a transaction."""

Context = tuple[Asset, Network, WalletAddress]


K = TypeVar("K")
V = TypeVar("V")


class _Bounded(Generic[K, V]):
    """A thread-safe map emptied when it reaches :data:`CACHE_LIMIT` (each entry is only
    a shortcut, so losing them all costs reads, never correctness)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._items.get(key)

    def put(self, key: K, value: V) -> None:
        with self._lock:
            if len(self._items) >= CACHE_LIMIT:
                self._items.clear()
            self._items[key] = value

    def pop(self, key: K) -> V | None:
        with self._lock:
            return self._items.pop(key, None)


class ContextCache(_Bounded[ContextKey, Context]):
    """A transaction's asset, network and source address, read once per runtime and kept
    detached from any session: nothing updates or deletes those rows, so a transaction's
    context never changes (re-reading them was four queries per step)."""


class Hints:
    """The state this runtime last committed for a transaction it goes on with at once:
    a hint saves reading the row back before the next step. It can be stale (another
    process moved the transaction), which the step finds when it re-reads the row under
    its lock, as every step does."""

    def __init__(self) -> None:
        self._items: _Bounded[str, tuple[TransactionStatus, ContextKey]] = _Bounded()

    def remember(self, tx_id: str, status: TransactionStatus, key: ContextKey) -> None:
        self._items.put(tx_id, (status, key))

    def holds(self, tx_id: str, status: TransactionStatus | None = None) -> bool:
        """Whether a hint for ``tx_id`` is held (for ``status``, if given); not used up."""
        hint = self._items.get(tx_id)
        return hint is not None and (status is None or hint[0] is status)

    def take(self, tx_id: str) -> tuple[TransactionStatus, ContextKey] | None:
        """The hint for ``tx_id``, used up."""
        return self._items.pop(tx_id)


@dataclass(frozen=True, slots=True)
class SuggestedFees:
    """An EVM node's fee suggestion and when it was had (monotonic seconds)."""

    at: float
    max_fee_per_gas: Wei
    max_priority_fee_per_gas: Wei


class FeeCache:
    """The last fee suggestion of each EVM node, reused for ``fee_reuse_s``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, SuggestedFees] = {}

    def fresh(self, url: str, max_age_s: float) -> SuggestedFees | None:
        with self._lock:
            fees = self._items.get(url)
        if fees is None or time.monotonic() - fees.at > max_age_s:
            return None
        return fees

    def put(self, url: str, fees: SuggestedFees) -> None:
        with self._lock:
            self._items[url] = fees


class SendOrder:
    """Nonces that this runtime's batches have allocated and not yet sent, per (chain
    id, address). Batches of one address sign at once on different workers and finish
    out of order; a node that refuses a nonce gap (hardhat's automine) then refused the
    later batch's first send, and every one after it, each refusal costing a release, a
    wake-up and a claim (two thirds of a burst's transfers met one). So a send first
    waits, briefly, while this runtime still holds the previous nonce unsent; a holder
    that gives up (its signing failed, an error) lets go, and after the wait the node's
    answer rules as before."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held: dict[tuple[int, str], set[int]] = {}
        self._by_tx: dict[str, tuple[tuple[int, str], int]] = {}

    def hold(self, tx_id: str, chain_id: int, address: str, nonce: int) -> None:
        with self._cond:
            key = (chain_id, address)
            self._held.setdefault(key, set()).add(nonce)
            self._by_tx[tx_id] = (key, nonce)

    def done(self, tx_ids: Sequence[str]) -> None:
        """``tx_ids`` were sent or given up (those not held are ignored)."""
        with self._cond:
            for tx_id in tx_ids:
                held = self._by_tx.pop(tx_id, None)
                if held is None:
                    continue
                key, nonce = held
                nonces = self._held.get(key)
                if nonces is not None:
                    nonces.discard(nonce)
                    if not nonces:
                        del self._held[key]
            self._cond.notify_all()

    def wait_turn(self, chain_id: int, address: str, nonce: int, timeout: float) -> None:
        """Wait (at most ``timeout`` s) while the previous nonce is held unsent."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while nonce - 1 in self._held.get((chain_id, address), ()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)


class GapWaits:
    """Signed EVM transactions the node refused for a nonce gap: who waits for which
    nonce to go out (woken when it does), and how many refusals in a row each met."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[tuple[int, str, int], tuple[str, str]] = {}
        self._refusals: dict[str, int] = {}

    def take_refusals(self, tx_id: str) -> int:
        with self._lock:
            return self._refusals.pop(tx_id, 0)

    def wait_for_previous(
        self, chain_id: int, address: str, nonce: int, workspace_id: str, tx_id: str, refusals: int
    ) -> None:
        with self._lock:
            if len(self._next) >= CACHE_LIMIT:
                self._next.clear()  # they still look again on their own
                self._refusals.clear()
            self._next[(chain_id, address, nonce)] = (workspace_id, tx_id)
            self._refusals[tx_id] = refusals

    def successor(self, chain_id: int, address: str, nonce: int) -> tuple[str, str] | None:
        """(workspace, transaction) waiting for ``nonce`` to go out, taken."""
        with self._lock:
            return self._next.pop((chain_id, address, nonce + 1), None)


@dataclass
class PipelineRuntime:
    """What the pipeline needs besides the database: the signer, chain access and the
    caches its steps share.

    Node calls connect only where ``rpc_policy`` allows (:mod:`..destinations`: the
    address a node's name resolves to is checked at every connection), through one
    pooled HTTP client per kind of node, made on first use: a new client per call built a
    TLS context each time (CA bundle loaded: ~10 ms of CPU) and a new connection.
    """

    backend: SigningBackend
    lease_s: float = 30.0
    confirmation_poll_s: float = 1.0
    broadcast_retry_s: float = 2.0
    # How long a signed EVM transaction waits before sending again when the node refused
    # it for a nonce gap (woken at once when the previous nonce goes out from here).
    nonce_order_wait_s: float = 1.0
    # How long the node's fee suggestion is reused (about a block on a fast chain; the
    # fee cap has headroom over the base fee).
    fee_reuse_s: float = 1.0
    # How long a broadcast transaction may stay unconfirmed, from its first broadcast,
    # before it ends ``failed`` (None: it is watched for ever).
    max_unconfirmed_s: float | None = 6 * 3600.0
    fault_hook: FaultHook | None = None
    rpc_policy: DestinationPolicy = field(default_factory=DestinationPolicy.for_rpc_nodes)
    evm_nodes: EvmNodes = field(default_factory=EvmNodes)
    contexts: ContextCache = field(default_factory=ContextCache, init=False, repr=False)
    hints: Hints = field(default_factory=Hints, init=False, repr=False)
    fees: FeeCache = field(default_factory=FeeCache, init=False, repr=False)
    send_order: SendOrder = field(default_factory=SendOrder, init=False, repr=False)
    gaps: GapWaits = field(default_factory=GapWaits, init=False, repr=False)
    _node_http: dict[str, httpx.Client] = field(default_factory=dict, init=False, repr=False)
    _node_http_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def fault(self, point: str) -> None:
        if self.fault_hook is not None:
            self.fault_hook(point)

    def _http(self, kind: str, timeout_s: float) -> httpx.Client:
        """The shared, guarded HTTP client of ``kind``'s nodes (thread-safe). The RPC
        clients do not close a client they were given."""
        with self._node_http_lock:
            client = self._node_http.get(kind)
            if client is None:
                client = httpx.Client(
                    transport=GuardedTransport(self.rpc_policy, max_connections=64),
                    timeout=timeout_s,
                    follow_redirects=False,
                )
                self._node_http[kind] = client
            return client

    def ethereum_client(self, network: Network) -> EthereumRpcClient:
        """A client of ``network``'s EVM nodes (failover, private broadcast:
        :mod:`..evm_networks`)."""
        return self.evm_nodes.client(network, self._http("evm", EVM_NODE_TIMEOUT_S))

    def bitcoin_client(self, network: Network) -> BitcoinRpcClient:
        """A client of ``network``'s Bitcoin Core node (credentials from its URL)."""
        return BitcoinRpcClient(
            network.rpc_url or "", http_client=self._http("bitcoin", BITCOIN_NODE_TIMEOUT_S)
        )

    def recall(self, tx_id: str) -> tuple[TransactionStatus, NetworkKind] | None:
        """The state this runtime last committed for ``tx_id`` (the hint is used up) and
        its network kind, or ``None``."""
        hint = self.hints.take(tx_id)
        if hint is None:
            return None
        context = self.contexts.get(hint[1])
        return None if context is None else (hint[0], context[1].kind)

    def close(self) -> None:
        """Close the node connections (a client asked for later opens new ones)."""
        with self._node_http_lock:
            clients, self._node_http = list(self._node_http.values()), {}
        for client in clients:
            client.close()
