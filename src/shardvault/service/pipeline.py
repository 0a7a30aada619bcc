"""The transaction pipeline: every state recorded, resumable after a crash.

::

    submitted -> pending_policy -> approved ---------------> signing -> signed
                               \\-> pending_approval -> approved     |
                               \\-> blocked          \\-> rejected    v
    completed <- confirming <- broadcasting <------------------------'
         (failed from signing, broadcasting or confirming; cancelled before signing)

Each step is one unit of work that re-reads the transaction under a row lock, checks
that it is still in the state the step expects, and commits the new state with its audit
event (and, where it applies, the nonce ledger change) in the same database transaction.
The ``version`` column makes a step that raced another fail instead of overwriting it.
Where nothing outside the database happens between two states, one unit of work takes
the transaction through both, each with its own audit and webhook event: an allowed EVM
or Solana transfer goes ``submitted -> pending_policy -> approved -> signing`` (policy,
nonce, serialization and the first signing attempt) in one commit, and ``signed ->
broadcasting`` in another; what is committed before each call to the signing backend or
the node is unchanged. A worker that has just committed a state goes on to the next
step without reading it back (a hint, checked again under the row lock by the step).

At-most-once rules (see docs/transactions.md for the full argument):

- **Nonce**: allocated in the same transaction that moves ``approved -> signing`` and
  records it on the transaction; confirmed in the same transaction that moves
  ``broadcasting -> confirming``; released only when the transaction fails before it
  could have reached the chain. A crash never leaves a nonce allocated and unrecorded.
- **Signing**: ``signing_attempts`` is incremented and committed before the backend is
  called (intent recorded first). A crash mid-signing loses that signature with the
  process; the retry signs the same payload, with the same nonce, so at most one of the
  signatures can ever be valid on chain.
- **Broadcast**: ``signed -> broadcasting`` commits first; in ``broadcasting`` a worker
  resuming the transaction (any but the one that just committed ``broadcasting``) first
  asks the node whether the transaction hash is already known (mined or pending) and
  only sends the raw bytes when it is not. Re-sending the *same* signed bytes is the
  only retry; nothing is ever re-signed after ``signed``. Signatures finish out of nonce
  order; a node refusing a nonce gap makes the later transaction wait for the earlier
  one, never fail.

Solana transfers (FROST Ed25519 vaults) follow the same states up to ``signed`` and stop
there: they are signed and verified but not broadcast, since no Solana node is configured
(see :data:`SOLANA_OFFLINE_BLOCKHASH`).

:class:`PipelineWorker` claims due work from the ``pipeline_work`` queue under a lease
(``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL) and advances each claimed
transaction until it must wait (approvals, confirmations) or is finished.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import base58
import httpx
from eth_hash.auto import keccak
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from shardvault.audit import Actor
from shardvault.chains import bitcoin
from shardvault.chains.amounts import Wei
from shardvault.chains.bitcoin import InsufficientFundsError
from shardvault.chains.errors import ChainError
from shardvault.chains.ethereum import (
    FeeMarketTransaction,
    assemble_with_public_key,
    encode_signed,
    erc20_transfer,
    native_transfer,
    signing_hash,
    signing_payload,
    summarize,
    transaction_hash,
)
from shardvault.chains.ethereum.address import parse_address
from shardvault.chains.ethereum.build import FeeParameters
from shardvault.chains.solana.encode import (
    attach_signature,
    compile_legacy_message,
    serialize_message,
)
from shardvault.chains.solana.encode import parse_message as parse_solana_message
from shardvault.chains.solana.encode import serialize_transaction as serialize_solana_transaction
from shardvault.chains.solana.encode import unsigned_transaction as unsigned_solana_transaction
from shardvault.chains.solana.models import LegacyMessage
from shardvault.chains.solana.models import Pubkey as SolanaPubkey
from shardvault.chains.solana.parse import decode_instruction
from shardvault.chains.solana.system import transfer as solana_transfer
from shardvault.policy import (
    AssetRegistryError,
    EvaluationContext,
    History,
    PastTransaction,
    PolicyBundle,
    TransactionRequest,
    approval_to_json,
    evaluate,
    parse_request,
    request_to_json,
)
from shardvault.policy.model import Decision, InitiatorKind, Operation, Policy
from shardvault.policy.request import Asset as PolicyAsset
from shardvault.policy.request import Initiator, Source
from shardvault.service.asset_registry import policy_view
from shardvault.service.bitcoin_previous import with_previous_transactions
from shardvault.service.bitcoin_transfers import (
    SpendableOutput,
    build_p2wpkh_spend,
    finish_p2wpkh_spend,
)
from shardvault.service.chainclients import (
    RpcResponseError,
    RpcTransportError,
    TransactionRejectedError,
)
from shardvault.service.chainclients.bitcoin import (
    AlreadyInChainError,
    BitcoinRpcClient,
    MissingInputsError,
    NodeWarmingUpError,
)
from shardvault.service.chainclients.ethereum import (
    AlreadyKnownError,
    EthereumRpcClient,
    NonceTooHighError,
    NonceTooLowError,
    Receipt,
    RpcCall,
    block_hash_call,
    block_number_call,
    receipt_call,
)
from shardvault.service.destinations import DestinationPolicy, GuardedTransport
from shardvault.service.errors import ValidationError
from shardvault.service.evm_networks import EvmNodes
from shardvault.service.initiator_requests import forwarded_request, signed_created_at
from shardvault.service.nonce_store import (
    account_key,
    allocate_in,
    prefetch_in,
    settle_if_in_flight,
)
from shardvault.service.platform import Platform
from shardvault.service.policies import active_policy
from shardvault.service.price_reports import SignedPrices, signed_prices
from shardvault.service.signing import SigningBackend, SigningError, SignRequest, key_parties
from shardvault.service.transactions import (
    bitcoin_network,
    emit_status,
    intent_asset,
    intent_network,
    stored_statements,
)
from shardvault.service.uow import UnitOfWork
from shardvault.service.work_lease import LeaseKeeper
from shardvault.service.work_signal import wait_for_work, work_committed
from shardvault.store.models_vaults import (
    TERMINAL_STATUSES,
    Asset,
    AssetKind,
    Network,
    NetworkKind,
    NonceState,
    Transaction,
    TransactionStatus,
    VaultKey,
    WalletAddress,
)
from shardvault.store.repositories import single_writer, transaction_scoped
from shardvault.store.repositories_vaults import (
    AssetRepository,
    NetworkRepository,
    NonceLedger,
    TransactionRepository,
    VaultRepository,
    WalletRepository,
    WorkQueue,
)
from shardvault.store.repositories_webhooks import WebhookRepository
from shardvault.store.types import utcnow

_log = logging.getLogger("shardvault.pipeline")

PIPELINE_ACTOR = Actor.system()
"""Who the pipeline's audit events name."""

VELOCITY_LOOKBACK = timedelta(days=31)
"""How far back the pipeline reads history for velocity limits (the longest window a
policy may sensibly use; longer windows see only this much)."""

MAX_SIGNING_ATTEMPTS = 3
"""Signing failures after which a transaction fails (and its nonce is released)."""

FaultHook = Callable[[str], None]
"""Called at named points of a step (tests use it to kill the process there)."""


EVM_NODE_TIMEOUT_S = 10.0
"""How long a call to an EVM node may take."""

BITCOIN_NODE_TIMEOUT_S = 30.0
"""How long a call to a Bitcoin Core node may take."""


@dataclass
class PipelineRuntime:
    """What the pipeline needs besides the database: the signer and chain access.

    Node calls connect only where ``rpc_policy`` allows (:mod:`.destinations`: the
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
    fault_hook: FaultHook | None = None
    rpc_policy: DestinationPolicy = field(default_factory=DestinationPolicy.for_rpc_nodes)
    evm_nodes: EvmNodes = field(default_factory=EvmNodes)
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
        :mod:`.evm_networks`)."""
        return self.evm_nodes.client(network, self._http("evm", EVM_NODE_TIMEOUT_S))

    def bitcoin_client(self, network: Network) -> BitcoinRpcClient:
        """A client of ``network``'s Bitcoin Core node (credentials from its URL)."""
        return BitcoinRpcClient(
            network.rpc_url or "", http_client=self._http("bitcoin", BITCOIN_NODE_TIMEOUT_S)
        )

    def close(self) -> None:
        """Close the node connections (a client asked for later opens new ones)."""
        with self._node_http_lock:
            clients, self._node_http = list(self._node_http.values()), {}
        for client in clients:
            client.close()


class PipelineFault(Exception):
    """An inconsistency that stops one transaction (it is marked failed)."""


@dataclass(frozen=True, slots=True)
class _Loaded:
    tx: Transaction
    asset: Asset
    network: Network
    source: WalletAddress


_ContextKey = tuple[str, str, str]
"""(workspace, wallet, source address) of a transaction."""

_CONTEXT: dict[_ContextKey, tuple[Asset, Network, WalletAddress]] = {}
_CONTEXT_LOCK = threading.Lock()
_CONTEXT_LIMIT = 10_000


def _load(uow: UnitOfWork, workspace_id: str, tx_id: str, *, lock: bool) -> _Loaded | None:
    """The transaction (locked if asked) and its asset, network and source address.

    The last three are read once per process and kept (detached from any session):
    nothing updates or deletes asset, network or address rows, so a transaction's
    context never changes, and each step of each transaction re-read them (four queries
    per step, a fifth of the server's CPU in the co-signer bench). A transaction this
    database transaction has already locked (:func:`_load_many`) is not read again.
    """
    if lock:
        locked = transaction_scoped(uow.session, "pipeline_locked").get(tx_id)
        if locked is not None:
            return _with_context(uow, workspace_id, locked)
    tx = TransactionRepository(uow.session, workspace_id).get(tx_id, lock=lock)
    if tx is None:
        return None
    if lock:
        transaction_scoped(uow.session, "pipeline_locked")[tx_id] = tx
    return _with_context(uow, workspace_id, tx)


def _load_many(
    uow: UnitOfWork, workspace_id: str, tx_ids: Sequence[str], *, lock: bool
) -> dict[str, _Loaded]:
    """:func:`_load` of several transactions in one query (a batch); those missing are
    left out."""
    rows = TransactionRepository(uow.session, workspace_id).get_many(tx_ids, lock=lock)
    if lock:
        transaction_scoped(uow.session, "pipeline_locked").update((tx.id, tx) for tx in rows)
        # Every state change of theirs in this unit of work numbers a webhook event.
        WebhookRepository(uow.session, workspace_id).lock_sequences(
            "transaction", [tx.id for tx in rows]
        )
    return {tx.id: _with_context(uow, workspace_id, tx) for tx in rows}


def _with_context(uow: UnitOfWork, workspace_id: str, tx: Transaction) -> _Loaded:
    key = (workspace_id, tx.wallet_id, tx.source_address_id)
    with _CONTEXT_LOCK:
        cached = _CONTEXT.get(key)
    if cached is None:
        wallets = WalletRepository(uow.session, workspace_id)
        wallet = wallets.get(tx.wallet_id)
        assert wallet is not None
        asset = AssetRepository(uow.session, workspace_id).get(wallet.asset_id)
        assert asset is not None
        network = NetworkRepository(uow.session, workspace_id).get(asset.network_id)
        assert network is not None
        source = wallets.address(tx.source_address_id)
        assert source is not None
        if wallet.asset_id != asset.id or source.wallet_id != wallet.id:
            raise PipelineFault("the transaction's wallet, asset and address disagree")
        for row in (asset, network, source):
            uow.session.expunge(row)
        cached = (asset, network, source)
        with _CONTEXT_LOCK:
            if len(_CONTEXT) >= _CONTEXT_LIMIT:
                _CONTEXT.clear()
            _CONTEXT[key] = cached
    asset, network, source = cached
    return _Loaded(tx, asset, network, source)


_HINTED = frozenset(
    {
        TransactionStatus.APPROVED,
        TransactionStatus.SIGNING,
        TransactionStatus.SIGNED,
        TransactionStatus.BROADCASTING,
        TransactionStatus.CONFIRMING,
    }
)
"""States a worker goes on from at once, in the same loop, after committing them
(``pending_policy`` is never committed on its own: evaluation goes on in the same unit of
work)."""

_HINTS: dict[str, tuple[TransactionStatus, _ContextKey]] = {}
_HINTS_LOCK = threading.Lock()


def _remember(tx_id: str, status: TransactionStatus, key: _ContextKey) -> None:
    with _HINTS_LOCK:
        if len(_HINTS) >= _CONTEXT_LIMIT:
            _HINTS.clear()
        _HINTS[tx_id] = (status, key)


def _hinted(tx_id: str, status: TransactionStatus | None = None) -> bool:
    """Whether this process holds a hint for ``tx_id`` (it committed a later state than
    ``submitted`` for it and has not gone on from there yet), for ``status`` if given;
    the hint is not used up."""
    with _HINTS_LOCK:
        hint = _HINTS.get(tx_id)
    return hint is not None and (status is None or hint[0] is status)


def _recall(tx_id: str) -> tuple[TransactionStatus, NetworkKind] | None:
    """The state this process last committed for ``tx_id`` (taken: a hint is used once)
    and its network kind, or ``None``. A hint saves the read before the next step; it
    can be stale (another process moved the transaction), which the step finds when it
    re-reads the row under its lock, as every step does."""
    with _HINTS_LOCK:
        hint = _HINTS.pop(tx_id, None)
    if hint is None:
        return None
    with _CONTEXT_LOCK:
        context = _CONTEXT.get(hint[1])
    return None if context is None else (hint[0], context[1].kind)


@dataclass(frozen=True, slots=True)
class _ChainState:
    """What EVM serialization asks the node: fee caps and the address's pending nonce
    count (the ledger's floor, for an address also used outside this ledger)."""

    max_fee_per_gas: Wei
    max_priority_fee_per_gas: Wei
    pending: int


def _chain_key(loaded: _Loaded) -> tuple[str, str]:
    """Whose chain state a transfer's serialization needs: (node URL, source address)."""
    return str(loaded.network.rpc_url), loaded.source.address


_FEES: dict[str, tuple[float, Wei, Wei]] = {}
_FEES_LOCK = threading.Lock()


def _chain_state(runtime: PipelineRuntime, loaded: _Loaded) -> _ChainState:
    """Fee caps (from the node at most once per ``runtime.fee_reuse_s``) and the
    pending nonce count (asked every time: a stale count would let an address used
    elsewhere get a nonce that is already taken).

    Raises:
        RpcTransportError, RpcResponseError: the node could not answer.
    """
    url = loaded.network.rpc_url
    assert url is not None
    now = time.monotonic()
    with _FEES_LOCK:
        fees = _FEES.get(url)
    client = runtime.ethereum_client(loaded.network)
    try:
        if fees is None or now - fees[0] > runtime.fee_reuse_s:
            suggested = client.suggest_fees()
            fees = (now, suggested.max_fee_per_gas, suggested.max_priority_fee_per_gas)
            with _FEES_LOCK:
                _FEES[url] = fees
        pending = client.get_transaction_count(loaded.source.address, "pending")
    finally:
        client.close()
    return _ChainState(fees[1], fees[2], pending)


_NEXT_IN_LINE: dict[tuple[int, str, int], tuple[str, str]] = {}
"""(chain id, address, nonce) -> (workspace, transaction) of a signed transaction the
node refused for a nonce gap, woken when the previous nonce goes out (:meth:`Pipeline.
_broadcast`)."""
_GAP_REFUSED: dict[str, int] = {}
"""Transactions whose last sends from this process the node refused for a nonce gap, and
how many times in a row."""

_GAP_WAIT_MAX_S = 30.0
"""The longest wait between sends of a transaction refused for a nonce gap."""
_NEXT_LOCK = threading.Lock()


def _before_nonces(uow: UnitOfWork, workspace_id: str) -> None:
    """Take, on PostgreSQL, the locks that come before an account's nonce counter: the
    workspace row (key share) and the workspace's audit chain head. Every pipeline
    transaction that touches a nonce takes them in that order (workspace, audit head,
    nonce counter); a confirmation that settled its nonce before its first audit event
    took the counter first and deadlocked against an evaluation appending before it
    allocated. Once per transaction; nothing on SQLite (one writer at a time)."""
    if single_writer(uow.session):
        return
    done = transaction_scoped(uow.session, "pipeline_lock_order")
    if workspace_id in done:
        return
    uow.workspaces().share(workspace_id)
    uow.audit.hold_head(workspace_id)
    done[workspace_id] = True


def _wake_successor(uow: UnitOfWork, chain_id: int, address: str, nonce: int) -> None:
    """Make the transaction waiting for ``nonce`` to go out (its send was refused for the
    gap) due now, in ``uow``; before the audit head and the nonce counter are locked,
    since other transactions write a queue row before they lock those (a confirmation
    that queued the successor after its audit event deadlocked on PostgreSQL)."""
    with _NEXT_LOCK:
        successor = _NEXT_IN_LINE.pop((chain_id, address, nonce + 1), None)
    if successor is not None:
        WorkQueue(uow.session).enqueue(*successor)
        uow.after_commit(work_committed)


class _SendOrder:
    """Nonces that this process's batches have allocated and not yet sent, per (chain
    id, address). Batches of one address sign at once on different workers and finish
    out of order; a node that refuses a nonce gap (hardhat's automine) then refused the
    later batch's first send, and every one after it, each refusal costing a release, a
    wake-up and a claim (two thirds of a burst's transfers met one). So a send first
    waits, briefly, while this process still holds the previous nonce unsent; a holder
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


_ORDER = _SendOrder()
_ORDER_WAIT_MAX_S = 5.0
"""The longest a send waits for this process to send the previous nonce first."""


def _transition(
    uow: UnitOfWork,
    tx: Transaction,
    status: TransactionStatus,
    *,
    reason: str | None = None,
    details: dict[str, object] | None = None,
) -> None:
    previous = tx.status
    now = utcnow()
    tx.status = status
    tx.status_reason = reason
    tx.updated_at = now
    if status in TERMINAL_STATUSES:
        tx.completed_at = now
        WorkQueue(uow.session).remove(tx.id)
    emit_status(uow, tx, previous=previous)
    if status in _HINTED:
        tx_id, key = tx.id, (tx.workspace_id, tx.wallet_id, tx.source_address_id)
        uow.after_commit(lambda: _remember(tx_id, status, key))
    event: dict[str, object] = {"from": previous.value}
    if reason is not None:
        event["reason"] = reason[:500]
    event.update(details or {})
    uow.audit.append(
        workspace_id=tx.workspace_id,
        actor=PIPELINE_ACTOR,
        action=f"transaction.{status.value}",
        resource_type="transaction",
        resource_id=tx.id,
        details=event,  # type: ignore[arg-type]
    )


# Building the chain transaction and the policy request from it.


def build_chain_transaction(
    loaded: _Loaded, *, nonce: int, fees: FeeParameters
) -> FeeMarketTransaction:
    """The EIP-1559 transaction that carries out ``loaded.tx``."""
    network, asset, tx = loaded.network, loaded.asset, loaded.tx
    assert network.chain_id is not None
    if asset.kind is AssetKind.NATIVE:
        return native_transfer(
            chain_id=network.chain_id, nonce=nonce, to=tx.destination, amount=tx.amount, fees=fees
        )
    assert asset.contract is not None
    return erc20_transfer(
        chain_id=network.chain_id,
        nonce=nonce,
        token=asset.contract,
        to=tx.destination,
        amount=tx.amount,
        decimals=asset.decimals,
        fees=fees,
    )


_TEMPLATE_FEES = FeeParameters(Wei(0), Wei(0), 21_000)


def policy_request(
    loaded: _Loaded,
    chain_tx: FeeMarketTransaction,
    *,
    initiator: str,
    vault: str,
) -> TransactionRequest:
    """The policy's view of ``chain_tx``: read back from the built transaction (its
    summary), never from the request's own fields or an opaque hash.

    Raises:
        PipelineFault: the built transaction does not do what was requested.
    """
    summary = summarize(chain_tx)
    asset = loaded.asset
    if asset.kind is AssetKind.NATIVE:
        ok = summary.kind == "native_transfer" and summary.asset == "native"
    else:
        ok = (
            summary.kind == "token_transfer"
            and summary.asset != "native"
            and asset.contract is not None
            and summary.asset == parse_address(asset.contract)
        )
    if not ok or summary.recipient is None:
        raise PipelineFault(
            f"the built transaction is a {summary.kind}, not the requested transfer"
        )
    if summary.recipient.checksummed != loaded.tx.destination:
        raise PipelineFault("the built transaction pays another recipient")
    if str(summary.amount) != loaded.tx.amount_base_units:
        raise PipelineFault("the built transaction moves another amount")
    return TransactionRequest(
        digest=bytes.fromhex(loaded.tx.intent_digest),
        operation=Operation.TRANSFER,
        created_at=int(loaded.tx.created_at.timestamp()),  # type: ignore[arg-type]
        initiator=Initiator(
            InitiatorKind.USER,
            initiator,
        ),
        source=Source(vault=vault, wallet=loaded.source.path),
        network=intent_network(loaded.network),
        destination=summary.recipient.checksummed,
        asset=PolicyAsset(intent_asset(loaded.network, asset), asset.decimals),
        amount=summary.amount,  # type: ignore[arg-type]
    )


def _fee_parameters(runtime: PipelineRuntime, loaded: _Loaded, chain: _ChainState) -> FeeParameters:
    """Fee caps from ``chain``; the gas limit of a token transfer estimated by the node
    (plus a fifth), a plain transfer's 21,000.

    Raises:
        RpcTransportError, RpcResponseError: the estimate could not be had.
    """
    if loaded.asset.kind is AssetKind.NATIVE:
        gas = 21_000
    else:
        assert loaded.network.rpc_url is not None
        client = runtime.ethereum_client(loaded.network)
        try:
            template = build_chain_transaction(loaded, nonce=0, fees=_TEMPLATE_FEES)
            assert template.to is not None
            estimate = client.estimate_gas(
                sender=parse_address(loaded.source.address), to=template.to, data=template.data
            )
        finally:
            client.close()
        gas = estimate + estimate // 5
    return FeeParameters(chain.max_fee_per_gas, chain.max_priority_fee_per_gas, gas)


def _payload_json(chain_tx: FeeMarketTransaction) -> str:
    assert chain_tx.to is not None
    return json.dumps(
        {
            "kind": "ethereum_transaction",
            "chain_id": chain_tx.chain_id,
            "nonce": chain_tx.nonce,
            "max_fee_per_gas": int(chain_tx.max_fee_per_gas),
            "max_priority_fee_per_gas": int(chain_tx.max_priority_fee_per_gas),
            "gas_limit": chain_tx.gas_limit,
            "to": chain_tx.to.checksummed,
            "value": int(chain_tx.value),
            "data": chain_tx.data.hex(),
            "signing_payload": signing_payload(chain_tx).hex(),
        },
        sort_keys=True,
    )


def _chain_tx_from_payload(text: str) -> FeeMarketTransaction:
    data = json.loads(text)
    return FeeMarketTransaction(
        chain_id=int(data["chain_id"]),
        nonce=int(data["nonce"]),
        max_priority_fee_per_gas=Wei(int(data["max_priority_fee_per_gas"])),
        max_fee_per_gas=Wei(int(data["max_fee_per_gas"])),
        gas_limit=int(data["gas_limit"]),
        to=parse_address(data["to"]),
        value=Wei(int(data["value"])),
        data=bytes.fromhex(data["data"]),
        access_list=(),
    )


SOLANA_OFFLINE_BLOCKHASH = bytes(32)
"""The recent-blockhash field of Solana messages signed without a node: a placeholder.
Such a transaction is signed and verified but cannot be broadcast (no Solana node runs
in this deployment; docs/transactions.md)."""


def build_solana_message(loaded: _Loaded, blockhash: bytes) -> LegacyMessage:
    """The legacy message of a System Program transfer from the wallet's address."""
    payer = SolanaPubkey.from_base58(loaded.source.address, field="source")
    destination = SolanaPubkey.from_base58(loaded.tx.destination, field="destination")
    instruction = solana_transfer(payer, destination, int(loaded.tx.amount_base_units))
    return compile_legacy_message(payer, [instruction], blockhash)


def solana_policy_request(
    loaded: _Loaded, message: LegacyMessage, *, initiator: str, vault: str
) -> TransactionRequest:
    """The policy's view of a Solana message, decoded back from its instructions.

    Raises:
        PipelineFault: the message is not exactly the requested transfer.
    """
    keys = [str(k) for k in message.account_keys]
    if len(message.instructions) != 1:
        raise PipelineFault("the built message holds more than the transfer")
    compiled = message.instructions[0]
    decoded = decode_instruction(
        message.account_keys[compiled.program_id_index],
        [keys[i] for i in compiled.accounts],
        compiled.data,
        "instructions[0]",
    )
    if (
        decoded.get("type") != "system_transfer"
        or decoded.get("from") != loaded.source.address
        or decoded.get("to") != loaded.tx.destination
        or decoded.get("lamports") != loaded.tx.amount_base_units
    ):
        raise PipelineFault("the built message is not the requested transfer")
    return TransactionRequest(
        digest=bytes.fromhex(loaded.tx.intent_digest),
        operation=Operation.TRANSFER,
        created_at=int(loaded.tx.created_at.timestamp()),  # type: ignore[arg-type]
        initiator=Initiator(InitiatorKind.USER, initiator),
        source=Source(vault=vault, wallet=loaded.source.path),
        network=intent_network(loaded.network),
        destination=loaded.tx.destination,
        asset=PolicyAsset(intent_asset(loaded.network, loaded.asset), loaded.asset.decimals),
        amount=int(loaded.tx.amount_base_units),  # type: ignore[arg-type]
    )


def request_for(loaded: _Loaded, *, initiator: str, vault: str) -> TransactionRequest:
    """The policy request of ``loaded``, read back from a template of its chain payload
    (zero fees and nonce for EVM, the placeholder blockhash for Solana)."""
    if loaded.network.kind is NetworkKind.SOLANA:
        message = build_solana_message(loaded, SOLANA_OFFLINE_BLOCKHASH)
        return solana_policy_request(loaded, message, initiator=initiator, vault=vault)
    if loaded.network.kind is NetworkKind.BITCOIN:
        # No template without the address's UTXOs: the request as created (its
        # destination and amount were checked then); serialization reads the same
        # view back from the PSBT and refuses any difference.
        return _bitcoin_request(
            loaded, loaded.tx.destination, int(loaded.tx.amount_base_units), initiator, vault
        )
    template = build_chain_transaction(loaded, nonce=0, fees=_TEMPLATE_FEES)
    return policy_request(loaded, template, initiator=initiator, vault=vault)


BITCOIN_CONFIRMATION_TARGET = 6
"""Blocks ``estimatesmartfee`` is asked to confirm within."""

BITCOIN_MIN_FEE_RATE = Decimal(1)
"""The fee-rate floor in sat/vB (Bitcoin Core's default minimum relay fee)."""

_UTXO_HOLDING_STATUSES = (
    TransactionStatus.SIGNING,
    TransactionStatus.SIGNED,
    TransactionStatus.BROADCASTING,
    TransactionStatus.CONFIRMING,
)
"""States in which a Bitcoin transfer holds the UTXOs its PSBT spends."""


def _bitcoin_request(
    loaded: _Loaded, destination: str, amount_sat: int, initiator: str, vault: str
) -> TransactionRequest:
    return TransactionRequest(
        digest=bytes.fromhex(loaded.tx.intent_digest),
        operation=Operation.TRANSFER,
        created_at=int(loaded.tx.created_at.timestamp()),  # type: ignore[arg-type]
        initiator=Initiator(InitiatorKind.USER, initiator),
        source=Source(vault=loaded.tx.vault_id, wallet=loaded.source.path),
        network=intent_network(loaded.network),
        destination=destination,
        asset=PolicyAsset(intent_asset(loaded.network, loaded.asset), loaded.asset.decimals),
        amount=amount_sat,  # type: ignore[arg-type]
    )


def bitcoin_policy_request(
    loaded: _Loaded, psbt: bytes, *, initiator: str, vault: str
) -> TransactionRequest:
    """The policy's view of a P2WPKH spend, read back from its PSBT the way a co-signer
    reads it (``cosigner.checks.bitcoin_p2wpkh_target``): every input spends the source
    address, the one output not paying back to it is the destination, and its value is
    the amount.

    Raises:
        PipelineFault: the PSBT is not exactly the requested transfer.
    """
    try:
        network = bitcoin_network(loaded.network)
    except ValidationError as exc:
        raise PipelineFault(str(exc)) from None
    try:
        parsed = bitcoin.parse_psbt(psbt)
        unsigned = parsed.unsigned_transaction()
        ours = bitcoin.p2wpkh_script(bytes.fromhex(loaded.source.public_key))
        for index in range(len(unsigned.inputs)):
            spent = parsed.spent_output(index)
            if spent is None or spent.script_pubkey != ours:
                raise PipelineFault(f"input {index} does not spend the source address")
        if bitcoin.address_from_script(ours, network) != loaded.source.address:
            raise PipelineFault("the source key's P2WPKH address is not the wallet's address")
        payments = [o for o in unsigned.outputs if o.script_pubkey != ours]
        if len(payments) != 1:
            raise PipelineFault("the built transaction does not pay exactly one destination")
        destination = bitcoin.address_from_script(payments[0].script_pubkey, network)
    except ChainError as exc:
        raise PipelineFault(f"the built PSBT does not parse: {exc}") from None
    if destination != loaded.tx.destination:
        raise PipelineFault("the built transaction pays another recipient")
    if str(payments[0].value) != loaded.tx.amount_base_units:
        raise PipelineFault("the built transaction moves another amount")
    return _bitcoin_request(loaded, destination, int(payments[0].value), initiator, vault)


def _bitcoin_digest(psbt: bytes) -> str:
    """SHA-256 of the unsigned transaction (no witness): stable for one PSBT."""
    unsigned = bitcoin.parse_psbt(psbt).unsigned_transaction()
    return hashlib.sha256(unsigned.serialize(include_witness=False)).hexdigest()


def _held_outpoints(uow: UnitOfWork, loaded: _Loaded) -> set[tuple[str, int]]:
    """UTXOs of the source address that other live transfers already spend.

    ``scantxoutset`` reads the confirmed UTXO set, where a coin spent by a mempool
    transaction still shows until that transaction is mined; spending it again would be
    refused as a conflict, so it is left out."""
    rows = uow.session.scalars(
        select(Transaction).where(
            Transaction.workspace_id == loaded.tx.workspace_id,
            Transaction.source_address_id == loaded.tx.source_address_id,
            Transaction.id != loaded.tx.id,
            Transaction.status.in_(_UTXO_HOLDING_STATUSES),
        )
    )
    held: set[tuple[str, int]] = set()
    for row in rows:
        if not row.chain_payload:
            continue
        payload = json.loads(row.chain_payload)
        if payload.get("kind") != "bitcoin_psbt":
            continue
        for item in payload.get("inputs", []):
            held.add((str(item["txid"]), int(item["vout"])))
    return held


def _prices(uow: UnitOfWork, workspace_id: str) -> SignedPrices:
    """The active bundle's static prices and the newest signed price reports held
    (:mod:`.price_reports`): what the evaluation here uses and the co-signers are sent."""
    return signed_prices(uow, workspace_id, active_policy(uow, workspace_id), now=int(time.time()))


def cosigner_context(
    uow: UnitOfWork,
    loaded: _Loaded,
    *,
    initiator: str,
    prices: SignedPrices | None = None,
    unapproved: bool = False,
) -> tuple[dict[str, object], tuple[dict[str, object], ...], tuple[dict[str, object], ...]]:
    """What a co-signer needs to check a signing request on its own: the metadata (who
    asks, from which vault and wallet, when, the intent's ids, and the network the
    workspace names, which a co-signer only compares with its signed registry's), the
    approvers' signed statements over the intent digest (none, not read, when the
    caller knows there are none: ``unapproved``), and the signed price reports value
    limits use."""
    tx = loaded.tx
    metadata: dict[str, object] = {
        "initiator": {"type": "user", "id": initiator},
        "source": {"vault": tx.vault_id, "wallet": loaded.source.path},
        "created_at": signed_created_at(uow, tx),
        "transaction_id": tx.id,
        "workspace_id": tx.workspace_id,
    }
    if loaded.network.kind is not NetworkKind.EVM:
        metadata["network"] = intent_network(loaded.network)
    approvals = tuple(
        approval_to_json(a)
        for a in (
            ()
            if unapproved
            else stored_statements(
                TransactionRepository(uow.session, tx.workspace_id).approvals(tx.id),
                bytes.fromhex(tx.intent_digest),
            )
        )
    )
    reports = (prices if prices is not None else _prices(uow, tx.workspace_id)).reports
    return metadata, approvals, reports


# The steps.


def _record_attempt(uow: UnitOfWork, loaded: _Loaded) -> tuple[int, VaultKey]:
    """Count one more signing attempt of ``loaded`` (committed with the caller's unit of
    work, before any backend is called) and answer it with the vault key that signs.

    Raises:
        PipelineFault: the attempts are used up.
    """
    tx = loaded.tx
    if tx.signing_attempts >= MAX_SIGNING_ATTEMPTS:
        raise PipelineFault(f"signing failed {tx.signing_attempts} times")
    tx.signing_attempts += 1
    tx.updated_at = utcnow()
    key = VaultRepository(uow.session, tx.workspace_id).key(tx.vault_id, loaded.source.scheme)
    assert key is not None
    uow.audit.append(
        workspace_id=tx.workspace_id,
        actor=PIPELINE_ACTOR,
        action="transaction.signing_attempt",
        resource_type="transaction",
        resource_id=tx.id,
        details={"attempt": tx.signing_attempts, "digest": tx.digest},
    )
    return tx.signing_attempts, key


_POLICY_STATES = (TransactionStatus.SUBMITTED, TransactionStatus.PENDING_POLICY)

_SAME_STEP: dict[TransactionStatus, tuple[TransactionStatus, ...]] = {
    TransactionStatus.SUBMITTED: (TransactionStatus.PENDING_POLICY, TransactionStatus.SIGNING),
    TransactionStatus.PENDING_POLICY: (TransactionStatus.SIGNING,),
    TransactionStatus.APPROVED: (TransactionStatus.SIGNING,),
}
"""States a step that started in the key's state may have committed before it raised a
:class:`PipelineFault` (one step runs policy, serialization and the signing round)."""


@dataclass(frozen=True, slots=True)
class _Signing:
    """A committed signing attempt and what its round needs (EVM or Solana)."""

    request: SignRequest
    attempt: int
    public_key: bytes
    chain_payload: str
    solana: bool


@dataclass(slots=True)
class _Heads:
    """The node's head and block hashes as seen by one batch of receipt lookups."""

    head: int | None = None
    hashes: dict[int, bytes | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Seen:
    """A receipt with enough confirmations in the canonical chain."""

    receipt: Receipt
    confirmations: int


@dataclass(frozen=True, slots=True)
class _Signed:
    """A verified signature and the transaction it completes, ready to store."""

    signature: str
    signed_payload: str
    tx_hash: str
    solana: bool


def _check_payload(signing: _Signing) -> None:
    """An EVM attempt's signing payload must still be its transaction's.

    Raises:
        PipelineFault: it is not.
    """
    if signing.solana:
        return
    chain_tx = _chain_tx_from_payload(signing.chain_payload)
    if bytes(keccak(signing.request.payload)) != signing_hash(chain_tx):
        raise PipelineFault("the stored signing payload does not match the transaction")


def _finish_signature(signing: _Signing, signature: bytes) -> _Signed:
    """Attach ``signature`` to the attempt's transaction, verifying it: EVM finds the
    parity by recovery (which proves it is by this address's key over this digest),
    Solana checks it over the message for the payer's key.

    Raises:
        ChainError: the signature does not verify.
    """
    if signing.solana:
        message = parse_solana_message(signing.request.payload)
        solana_tx = attach_signature(
            unsigned_solana_transaction(message), message.account_keys[0], signature
        )
        return _Signed(
            signature=signature.hex(),
            signed_payload=serialize_solana_transaction(solana_tx).hex(),
            tx_hash=base58.b58encode(signature).decode(),
            solana=True,
        )
    chain_tx = _chain_tx_from_payload(signing.chain_payload)
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    signed = assemble_with_public_key(chain_tx, r, s, signing.public_key)
    return _Signed(
        signature=signed.signature.to_bytes().hex(),
        signed_payload=encode_signed(signed).hex(),
        tx_hash=transaction_hash(signed).hex(),
        solana=False,
    )


class Pipeline:
    """The step functions; :meth:`advance` runs the one the transaction's state calls for."""

    def __init__(self, platform: Platform, runtime: PipelineRuntime) -> None:
        self.platform = platform
        self.runtime = runtime

    def advance(self, workspace_id: str, tx_id: str) -> float | None:
        """Run one step. Returns the delay in seconds before the next step is due (0 for
        at once), or ``None`` when the transaction needs no further work from the queue
        (finished, or waiting for approvals without a deadline)."""
        hint = _recall(tx_id)
        if hint is not None:
            status, kind = hint
        else:
            with self.platform.unit_of_work(read_only=True) as uow:
                loaded = _load(uow, workspace_id, tx_id, lock=False)
                if loaded is None:
                    return None
                status = loaded.tx.status
                kind = loaded.network.kind
        try:
            return self._dispatch(workspace_id, tx_id, status, kind, fresh=hint is not None)
        except PipelineFault as exc:
            self._fail(workspace_id, tx_id, status, str(exc))
            return None

    def _dispatch(
        self,
        workspace_id: str,
        tx_id: str,
        status: TransactionStatus,
        kind: NetworkKind,
        *,
        fresh: bool,
    ) -> float | None:
        match status:
            case TransactionStatus.SUBMITTED | TransactionStatus.PENDING_POLICY:
                return self._evaluate(workspace_id, tx_id)
            case TransactionStatus.PENDING_APPROVAL:
                return self._check_deadline(workspace_id, tx_id)
            case TransactionStatus.APPROVED:
                return self._serialize(workspace_id, tx_id)
            case TransactionStatus.SIGNING:
                if kind is NetworkKind.BITCOIN:
                    return self._sign_bitcoin(workspace_id, tx_id)
                return self._sign(workspace_id, tx_id)
            case TransactionStatus.SIGNED:
                return self._start_broadcast(workspace_id, tx_id)
            case TransactionStatus.BROADCASTING:
                # Fresh: this worker has just committed ``broadcasting`` itself, so the
                # bytes cannot have been sent yet and the node need not be asked first.
                return self._broadcast(workspace_id, tx_id, fresh=fresh)
            case TransactionStatus.CONFIRMING:
                return self._confirm(workspace_id, tx_id)
            case (
                TransactionStatus.COMPLETED
                | TransactionStatus.FAILED
                | TransactionStatus.REJECTED
                | TransactionStatus.BLOCKED
                | TransactionStatus.CANCELLED
            ):
                return None

    def _locked(
        self, uow: UnitOfWork, workspace_id: str, tx_id: str, expected: TransactionStatus
    ) -> _Loaded | None:
        loaded = _load(uow, workspace_id, tx_id, lock=True)
        if loaded is None or loaded.tx.status is not expected:
            return None
        return loaded

    def _fail(self, workspace_id: str, tx_id: str, status: TransactionStatus, reason: str) -> None:
        with self.platform.unit_of_work() as uow:
            loaded = _load(uow, workspace_id, tx_id, lock=True)
            # A fault in evaluation may come after the same unit of work moved the
            # transaction on from ``submitted``; it rolled back, so either state is it.
            if loaded is None or loaded.tx.status not in (status, *_SAME_STEP.get(status, ())):
                return
            tx = loaded.tx
            released = None
            # Release the nonce only if no signed bytes can exist on any node.
            if (
                tx.nonce is not None
                and tx.status in (TransactionStatus.SIGNING,)
                and tx.tx_hash is None
            ):
                chain_id = loaded.network.chain_id
                assert chain_id is not None
                _before_nonces(uow, workspace_id)
                if settle_if_in_flight(
                    uow.session, chain_id, loaded.source.address, tx.nonce, NonceState.RELEASED
                ):
                    released = tx.nonce
            _transition(
                uow,
                tx,
                TransactionStatus.FAILED,
                reason=reason,
                details={"released_nonce": released},
            )

    def _evaluate(self, workspace_id: str, tx_id: str) -> float | None:
        """Policy, and for an allowed EVM or Solana transfer also serialization and the
        first signing attempt, in one unit of work; then the signing round."""
        with self.platform.unit_of_work(read_only=True) as uow:
            peek = _load(uow, workspace_id, tx_id, lock=False)
        if peek is None or peek.tx.status not in _POLICY_STATES:
            return 0.0
        chains = self._chain_states([peek])
        with self.platform.unit_of_work() as uow:
            # Evaluations of one workspace run one at a time, so each sees every earlier
            # decision in its velocity history (the lock of evaluate_batch).
            uow.workspaces().serialize(workspace_id)
            loaded = _load(uow, workspace_id, tx_id, lock=True)
            if loaded is None or loaded.tx.status not in _POLICY_STATES:
                return 0.0
            delay, signing = self._evaluate_in(
                uow, loaded, active_policy(uow, workspace_id), _prices(uow, workspace_id), chains
            )
        self.runtime.fault("evaluated")
        if signing is not None:
            return self._sign_with(workspace_id, tx_id, signing)
        return delay

    def _chain_states(self, peeks: Sequence[_Loaded]) -> dict[tuple[str, str], _ChainState]:
        """What the node says of each EVM source address among ``peeks``, asked before
        the write transaction; an address whose node cannot answer is left out (its
        transfers are still evaluated, and serialized by a later step)."""
        chains: dict[tuple[str, str], _ChainState] = {}
        failed: set[tuple[str, str]] = set()
        for peek in peeks:
            if peek.network.kind is not NetworkKind.EVM:
                continue
            key = _chain_key(peek)
            if key in chains or key in failed:
                continue
            try:
                chains[key] = _chain_state(self.runtime, peek)
            except (RpcTransportError, RpcResponseError) as exc:
                _log.warning("node unreachable before serializing %s: %s", peek.tx.id, exc)
                failed.add(key)
        return chains

    def _evaluate_in(
        self,
        uow: UnitOfWork,
        loaded: _Loaded,
        bundle: PolicyBundle | None,
        prices: SignedPrices,
        chains: Mapping[tuple[str, str], _ChainState],
    ) -> tuple[float | None, _Signing | None]:
        """Evaluate ``loaded`` (locked, awaiting policy, under the workspace lock) in the
        caller's unit of work; an allowed EVM transfer whose node answered, or an allowed
        Solana one, is also serialized and given its first signing attempt. Answers the
        delay before its next step and that attempt."""
        workspace_id = loaded.tx.workspace_id
        tx = loaded.tx
        if tx.status is TransactionStatus.SUBMITTED:
            _transition(uow, tx, TransactionStatus.PENDING_POLICY)
        self.runtime.fault("evaluating")
        if bundle is None:
            _transition(uow, tx, TransactionStatus.BLOCKED, reason="no active policy")
            return None, None
        initiator = uow.users(workspace_id).get(tx.initiator_user_id)
        assert initiator is not None
        request = request_for(loaded, initiator=initiator.email, vault=tx.vault_id)
        try:
            request = policy_view(bundle.assets, loaded.network, loaded.asset, request)
        except AssetRegistryError as exc:
            _transition(uow, tx, TransactionStatus.BLOCKED, reason=str(exc))
            return None, None
        now = int(time.time())
        history = self._history(uow, workspace_id, tx, bundle.policy)
        context = EvaluationContext(
            now=now,  # type: ignore[arg-type]
            address_book=bundle.address_book,
            history=History(history),
            network_prices=prices.table.prices,
            price_notes=prices.table.notes,
        )
        evaluation = evaluate(bundle.policy, request, context)
        tx.policy_version = evaluation.policy_version
        tx.policy_rule = evaluation.rule
        tx.policy_evaluation = json.dumps(
            {"request": request_to_json(request), "evaluation": evaluation.to_json()},
            sort_keys=True,
        )
        details: dict[str, object] = {
            "policy_version": evaluation.policy_version,
            "rule": evaluation.rule,
            "decision": evaluation.decision.value,
        }
        if evaluation.decision is Decision.BLOCK:
            _transition(
                uow, tx, TransactionStatus.BLOCKED, reason=evaluation.summary, details=details
            )
            return None, None
        if evaluation.decision is not Decision.ALLOW:
            tx.approval_deadline = evaluation.deadline
            details["approvals_needed"] = evaluation.approvals_needed
            details["deadline"] = evaluation.deadline
            _transition(
                uow,
                tx,
                TransactionStatus.PENDING_APPROVAL,
                reason=evaluation.summary,
                details=details,
            )
            if evaluation.deadline is None:
                return None, None
            return max(evaluation.deadline - now, 0) + 1, None
        _transition(uow, tx, TransactionStatus.APPROVED, reason=evaluation.summary, details=details)
        kind = loaded.network.kind
        chain = chains.get(_chain_key(loaded))
        if kind is NetworkKind.EVM and chain is not None:
            self._serialize_evm_in(uow, loaded, chain, initiator.email)
            return 0.0, self._signing(uow, loaded, prices=prices, unapproved=True)
        if kind is NetworkKind.SOLANA:
            self._serialize_solana_in(uow, loaded, initiator.email)
            return 0.0, self._signing(uow, loaded, prices=prices, unapproved=True)
        return 0.0, None

    def _history(
        self, uow: UnitOfWork, workspace_id: str, tx: Transaction, policy: Policy
    ) -> list[PastTransaction]:
        """The past transactions the policy's velocity conditions can see: none when it
        has none, else those of its longest window (at most :data:`VELOCITY_LOOKBACK`).
        Reading and parsing the whole month for every evaluation grew with the workspace's
        traffic, under the workspace lock."""
        windows = [v.window_seconds for rule in policy.rules for v in rule.when.velocity]
        if not windows:
            return []
        since = utcnow() - min(timedelta(seconds=max(windows)), VELOCITY_LOOKBACK)
        past = []
        for row in TransactionRepository(uow.session, workspace_id).history(since, tx.id):
            if not row.policy_evaluation:
                continue
            stored = json.loads(row.policy_evaluation)
            decision = None if row.status is TransactionStatus.PENDING_APPROVAL else Decision.ALLOW
            past.append(PastTransaction(parse_request(stored["request"]), decision))
        return past

    def _check_deadline(self, workspace_id: str, tx_id: str) -> float | None:
        with self.platform.unit_of_work() as uow:
            loaded = self._locked(uow, workspace_id, tx_id, TransactionStatus.PENDING_APPROVAL)
            if loaded is None:
                return 0.0
            deadline = loaded.tx.approval_deadline
            now = int(time.time())
            if deadline is None:
                return None
            if now > deadline:
                _transition(
                    uow, loaded.tx, TransactionStatus.REJECTED, reason="approval deadline passed"
                )
                return None
            return float(deadline - now + 1)

    def _serialize(self, workspace_id: str, tx_id: str) -> float | None:
        """An approved transfer: serialization and the first signing attempt in one unit
        of work, then the signing round (Bitcoin: :meth:`_serialize_bitcoin`)."""
        with self.platform.unit_of_work(read_only=True) as uow:
            loaded = _load(uow, workspace_id, tx_id, lock=False)
            if loaded is None or loaded.tx.status is not TransactionStatus.APPROVED:
                return 0.0
        if loaded.network.kind is NetworkKind.BITCOIN:
            return self._serialize_bitcoin(workspace_id, tx_id, loaded)
        chain = (
            _chain_state(self.runtime, loaded) if loaded.network.kind is NetworkKind.EVM else None
        )
        with self.platform.unit_of_work() as uow:
            locked = self._locked(uow, workspace_id, tx_id, TransactionStatus.APPROVED)
            if locked is None:
                return 0.0
            initiator = uow.users(workspace_id).get(locked.tx.initiator_user_id)
            assert initiator is not None
            if chain is not None:
                self._serialize_evm_in(uow, locked, chain, initiator.email)
            else:
                self._serialize_solana_in(uow, locked, initiator.email)
            signing = self._signing(uow, locked)
        self.runtime.fault("serialized")
        return self._sign_with(workspace_id, tx_id, signing)

    def _serialize_evm_in(
        self, uow: UnitOfWork, locked: _Loaded, chain: _ChainState, initiator: str
    ) -> None:
        """Allocate the nonce, build the EIP-1559 transaction, check it does what the
        policy evaluated, and move ``approved -> signing`` (in the caller's unit of work).
        """
        chain_id = locked.network.chain_id
        assert chain_id is not None
        fees = _fee_parameters(self.runtime, locked, chain)
        chain_key, account = account_key(chain_id, locked.source.address)
        _before_nonces(uow, locked.tx.workspace_id)
        NonceLedger(uow.session).observe(chain_key, account, chain.pending)
        nonce = allocate_in(uow.session, chain_id, locked.source.address)
        chain_tx = build_chain_transaction(locked, nonce=nonce, fees=fees)
        # The transaction to be signed must do exactly what the policy evaluated.
        policy_request(locked, chain_tx, initiator=initiator, vault=locked.tx.vault_id)
        tx = locked.tx
        tx.nonce = nonce
        tx.chain_payload = _payload_json(chain_tx)
        tx.digest = signing_hash(chain_tx).hex()
        _transition(
            uow,
            tx,
            TransactionStatus.SIGNING,
            details={"nonce": nonce, "digest": tx.digest, "gas_limit": fees.gas_limit},
        )

    def _serialize_solana_in(self, uow: UnitOfWork, locked: _Loaded, initiator: str) -> None:
        """Build the Solana message, check it, and move ``approved -> signing``."""
        message = build_solana_message(locked, SOLANA_OFFLINE_BLOCKHASH)
        solana_policy_request(locked, message, initiator=initiator, vault=locked.tx.vault_id)
        raw = serialize_message(message)
        tx = locked.tx
        tx.chain_payload = json.dumps(
            {"kind": "solana_message", "message": raw.hex(), "broadcast": False},
            sort_keys=True,
        )
        tx.digest = hashlib.sha256(raw).hexdigest()
        _transition(uow, tx, TransactionStatus.SIGNING, details={"digest": tx.digest})

    def _signing(
        self,
        uow: UnitOfWork,
        loaded: _Loaded,
        *,
        prices: SignedPrices | None = None,
        unapproved: bool = False,
    ) -> _Signing:
        """Record one more signing attempt of ``loaded`` (in ``signing``, EVM or Solana)
        and build its request to the backend; committed by the caller before the backend
        is called. ``unapproved``: the policy allowed it in this unit of work, so it has
        no approvals (approvals are taken only in ``pending_approval``) and none are read
        (in a batch that query flushed the session once per transfer)."""
        tx = loaded.tx
        attempt, key = _record_attempt(uow, loaded)
        assert tx.chain_payload is not None
        solana = loaded.network.kind is NetworkKind.SOLANA
        payload = json.loads(tx.chain_payload)
        initiator = uow.users(tx.workspace_id).get(tx.initiator_user_id)
        metadata, approvals, reports = cosigner_context(
            uow,
            loaded,
            initiator=initiator.email if initiator is not None else "unknown",
            prices=prices,
            unapproved=unapproved,
        )
        request = SignRequest(
            workspace_id=tx.workspace_id,
            vault_id=tx.vault_id,
            backend_key_id=key.backend_key_id,
            scheme="eddsa-ed25519" if solana else "ecdsa-secp256k1",
            path=loaded.source.path,
            payload_kind="solana_message" if solana else "ethereum_transaction",
            payload=bytes.fromhex(payload["message" if solana else "signing_payload"]),
            session=f"{tx.id}:{attempt}",
            metadata=metadata,
            approvals=approvals,
            price_reports=reports,
            initiator_request=forwarded_request(uow, tx),
            min_signers=key.min_signers,
            parties=key_parties(json.loads(key.cosigners)),
        )
        return _Signing(
            request, attempt, bytes.fromhex(loaded.source.public_key), tx.chain_payload, solana
        )

    def _sign(self, workspace_id: str, tx_id: str) -> float | None:
        """A transaction found in ``signing`` (a retry, or a worker resuming after a
        crash): a new attempt, then the round."""
        with self.platform.unit_of_work() as uow:
            loaded = self._locked(uow, workspace_id, tx_id, TransactionStatus.SIGNING)
            if loaded is None:
                return 0.0
            signing = self._signing(uow, loaded)
        return self._sign_with(workspace_id, tx_id, signing)

    def _sign_with(self, workspace_id: str, tx_id: str, signing: _Signing) -> float | None:
        """The signing round of a committed attempt; the signature is verified, stored,
        and (EVM) the transaction moves on to ``broadcasting`` in the same commit."""
        self.runtime.fault("signing")
        _check_payload(signing)
        try:
            signature = self.runtime.backend.sign(signing.request)
        except SigningError as exc:
            _log.warning("signing %s attempt %d failed: %s", tx_id, signing.attempt, exc)
            return self.runtime.broadcast_retry_s
        signed = _finish_signature(signing, signature)
        with self.platform.unit_of_work() as uow:
            delay = self._store_signed(uow, workspace_id, tx_id, signing.attempt, signed)
        self.runtime.fault("signed")
        return delay

    def _store_signed(
        self, uow: UnitOfWork, workspace_id: str, tx_id: str, attempt: int, signed: _Signed
    ) -> float | None:
        """Store a verified signature of attempt ``attempt``: ``signed``, and for EVM
        ``broadcasting`` in the same commit (Solana stops at ``signed``). Answers the
        delay before the next step (0 also when the attempt is no longer current)."""
        loaded = self._locked(uow, workspace_id, tx_id, TransactionStatus.SIGNING)
        if loaded is None or loaded.tx.signing_attempts != attempt:
            return 0.0
        tx = loaded.tx
        tx.signature = signed.signature
        tx.signed_payload = signed.signed_payload
        tx.tx_hash = signed.tx_hash
        if signed.solana:
            _transition(
                uow,
                tx,
                TransactionStatus.SIGNED,
                reason="signed and verified; not broadcast (no Solana node configured)",
                details={"tx_hash": tx.tx_hash},
            )
            return None
        _transition(uow, tx, TransactionStatus.SIGNED, details={"tx_hash": tx.tx_hash})
        self._into_broadcasting(uow, loaded)
        return 0.0

    def evaluate_batch(self, workspace_id: str, tx_ids: Sequence[str]) -> dict[str, float | None]:
        """Transfers of one workspace awaiting policy, taken together (a burst).

        One unit of work evaluates them all (and serializes and records the first
        signing attempt of the allowed EVM and Solana ones), their signing requests go
        to the backend at once, and one more unit of work stores the signatures (EVM:
        and moves them on to ``broadcasting``). Each transaction passes through exactly
        the states, with the audit and webhook events, of :meth:`_evaluate`, and what
        is committed before the backend is called is the same; the batch only shares
        commits, the workspace lock and round trips. Answers each transaction's delay
        before its next step (as :meth:`advance` does); a transaction missing from the
        answer is left as it was. An error leaves the evaluation uncommitted (every
        transaction as it was), so the caller can take them one at a time.
        """
        with self.platform.unit_of_work(read_only=True) as uow:
            found = _load_many(uow, workspace_id, tx_ids, lock=False)
        peeks = [found[t] for t in tx_ids if t in found and found[t].tx.status in _POLICY_STATES]
        if not peeks:
            return {}
        chains = self._chain_states(peeks)
        delays: dict[str, float | None] = {}
        signings: dict[str, _Signing] = {}
        with self.platform.unit_of_work() as uow:
            # One evaluation per workspace at a time. Not FOR UPDATE: a cancellation or
            # approval locks its transaction's row and then inserts its events, whose
            # foreign key takes FOR KEY SHARE on the workspace, which FOR UPDATE blocks;
            # with this batch waiting on that row, PostgreSQL found a deadlock.
            uow.workspaces().serialize(workspace_id)
            locked = _load_many(uow, workspace_id, [p.tx.id for p in peeks], lock=True)
            bundle = active_policy(uow, workspace_id)
            prices = _prices(uow, workspace_id)
            for peek in peeks:
                tx_id = peek.tx.id
                loaded = locked.get(tx_id)
                if loaded is None or loaded.tx.status not in _POLICY_STATES:
                    delays[tx_id] = 0.0
                    continue
                delays[tx_id], signing = self._evaluate_in(uow, loaded, bundle, prices, chains)
                if signing is None:
                    continue
                signings[tx_id] = signing
                chain_id, nonce = loaded.network.chain_id, loaded.tx.nonce
                if chain_id is not None and nonce is not None:
                    uow.after_commit(
                        functools.partial(
                            _ORDER.hold, tx_id, chain_id, loaded.source.address, nonce
                        )
                    )
        self.runtime.fault("evaluated")
        delays.update(self._sign_batch(workspace_id, signings))
        return delays

    def _sign_batch(
        self, workspace_id: str, signings: Mapping[str, _Signing]
    ) -> dict[str, float | None]:
        """The signing rounds of committed attempts, all asked of the backend at once;
        the signatures stored in one unit of work. A transaction whose round failed
        waits as in :meth:`_sign_with`; one that cannot be finished here (a payload that
        no longer matches, a signature that does not verify) goes on alone."""
        delays: dict[str, float | None] = {}
        ready: dict[str, _Signing] = {}
        for tx_id, signing in signings.items():
            self.runtime.fault("signing")
            try:
                _check_payload(signing)
            except PipelineFault:
                delays[tx_id] = 0.0  # the single path fails it, with the reason
                continue
            ready[tx_id] = signing
        if not ready:
            return delays
        answers = self.runtime.backend.sign_many([s.request for s in ready.values()])
        finished: dict[str, tuple[int, _Signed]] = {}
        for (tx_id, signing), answer in zip(ready.items(), answers, strict=True):
            if isinstance(answer, SigningError):
                _log.warning("signing %s attempt %d failed: %s", tx_id, signing.attempt, answer)
                delays[tx_id] = self.runtime.broadcast_retry_s
                continue
            try:
                finished[tx_id] = (signing.attempt, _finish_signature(signing, answer))
            except ChainError as exc:
                _log.warning("signature of %s attempt %d refused: %s", tx_id, signing.attempt, exc)
                delays[tx_id] = self.runtime.broadcast_retry_s
        if finished:
            with self.platform.unit_of_work() as uow:
                _load_many(uow, workspace_id, list(finished), lock=True)
                for tx_id, (attempt, signed) in finished.items():
                    delays[tx_id] = self._store_signed(uow, workspace_id, tx_id, attempt, signed)
            self.runtime.fault("signed")
        return delays

    def _into_broadcasting(self, uow: UnitOfWork, loaded: _Loaded) -> None:
        loaded.tx.broadcast_attempts += 1
        _transition(
            uow,
            loaded.tx,
            TransactionStatus.BROADCASTING,
            details={"tx_hash": loaded.tx.tx_hash, "attempt": loaded.tx.broadcast_attempts},
        )

    def _start_broadcast(self, workspace_id: str, tx_id: str) -> float | None:
        with self.platform.unit_of_work() as uow:
            loaded = self._locked(uow, workspace_id, tx_id, TransactionStatus.SIGNED)
            if loaded is None:
                return 0.0
            if loaded.network.kind is NetworkKind.SOLANA:
                return None  # Signed and verified, never broadcast (see _store_signed).
            self._into_broadcasting(uow, loaded)
        return 0.0

    def _known_on_chain(self, client: EthereumRpcClient, tx_hash: bytes) -> bool:
        if client.get_transaction_receipt(tx_hash) is not None:
            return True
        return client.request("eth_getTransactionByHash", ["0x" + tx_hash.hex()]) is not None

    def _broadcast(self, workspace_id: str, tx_id: str, *, fresh: bool = False) -> float | None:
        """Send the signed bytes, then commit ``confirming``."""
        with self.platform.unit_of_work(read_only=True) as uow:
            loaded = _load(uow, workspace_id, tx_id, lock=False)
            if loaded is None or loaded.tx.status is not TransactionStatus.BROADCASTING:
                return 0.0
        if loaded.network.kind is NetworkKind.BITCOIN:
            return self._broadcast_bitcoin(workspace_id, tx_id, loaded)
        outcome = self._send_evm(loaded, fresh=fresh)
        if not isinstance(outcome, str):
            return outcome
        self.runtime.fault("broadcast_sent")
        with self.platform.unit_of_work() as uow:
            self._confirming_in(uow, loaded, outcome)
        return 0.0

    def _send_evm(self, loaded: _Loaded, *, fresh: bool) -> str | float:
        """Send an EVM transaction's signed bytes (read in ``broadcasting``); answers
        ``"sent"`` or ``"already_known"``, or the delay before trying again.

        Signatures finish out of nonce order; a node that will not take a nonce gap
        (hardhat's automine refuses it, "nonce too high") makes the later one wait for
        its predecessor instead of failing (a failure there used to leave its nonce in
        flight and every later nonce of the address stuck behind it).

        Raises:
            PipelineFault: the node refused the transaction for good.
        """
        tx = loaded.tx
        tx_id, workspace_id = tx.id, tx.workspace_id
        chain_id, nonce = loaded.network.chain_id, tx.nonce
        address = loaded.source.address
        assert chain_id is not None
        assert nonce is not None
        assert tx.tx_hash is not None
        assert tx.signed_payload is not None
        assert loaded.network.rpc_url is not None
        tx_hash = bytes.fromhex(tx.tx_hash)
        client = self.runtime.ethereum_client(loaded.network)
        try:
            # On resume the transaction may already be out: never send before asking,
            # unless nothing can have been sent since this process last looked (it just
            # committed ``broadcasting``, or the node just refused the bytes for a gap).
            with _NEXT_LOCK:
                refusals = _GAP_REFUSED.pop(tx_id, 0)
            if not (fresh or refusals > 0) and self._known_on_chain(client, tx_hash):
                return "already_known"
            _ORDER.wait_turn(chain_id, address, nonce, _ORDER_WAIT_MAX_S)
            try:
                returned = client.send_raw_transaction(bytes.fromhex(tx.signed_payload))
                if returned != tx_hash:
                    raise PipelineFault("the node reports another transaction hash")
            except AlreadyKnownError:
                return "already_known"
            except NonceTooHighError:
                # The previous nonce has not reached the node yet: wait for it (woken
                # when it goes out from this process), never fail for it. The wait
                # grows, for a gap nothing here will fill (docs/transactions.md).
                refusals += 1
                log = _log.warning if refusals % 10 == 0 else _log.info
                log(
                    "broadcast of %s (nonce %d of %s) waits for nonce %d to reach the "
                    "node (%d refusals)",
                    tx_id, nonce, address, nonce - 1, refusals,
                )  # fmt: skip
                with _NEXT_LOCK:
                    if len(_NEXT_IN_LINE) >= _CONTEXT_LIMIT:
                        _NEXT_IN_LINE.clear()  # they still look again on their own
                        _GAP_REFUSED.clear()
                    _NEXT_IN_LINE[(chain_id, address, nonce)] = (workspace_id, tx_id)
                    _GAP_REFUSED[tx_id] = refusals
                wait = self.runtime.nonce_order_wait_s * float(2 ** min(refusals - 1, 16))
                return min(wait, _GAP_WAIT_MAX_S)
            except NonceTooLowError:
                if not self._known_on_chain(client, tx_hash):
                    raise PipelineFault(
                        "the node says the nonce is used, by another transaction"
                    ) from None
                return "already_known"
            except TransactionRejectedError as exc:
                raise PipelineFault(f"the node refused the transaction: {exc}") from None
        except RpcTransportError as exc:
            _log.warning("broadcast of %s: node unreachable (%s); retrying", tx_id, exc)
            return self.runtime.broadcast_retry_s
        finally:
            client.close()
        return "sent"

    def _confirming_in(self, uow: UnitOfWork, sent: _Loaded, outcome: str) -> bool:
        """``broadcasting -> confirming`` of a sent EVM transaction, its nonce confirmed
        in the ledger, and the transaction next in line for its address woken; false
        if another step moved the transaction first."""
        tx_id, workspace_id = sent.tx.id, sent.tx.workspace_id
        chain_id, nonce = sent.network.chain_id, sent.tx.nonce
        address = sent.source.address
        assert chain_id is not None
        assert nonce is not None
        locked = self._locked(uow, workspace_id, tx_id, TransactionStatus.BROADCASTING)
        if locked is None:
            return False
        _wake_successor(uow, chain_id, address, nonce)
        _before_nonces(uow, workspace_id)
        settle_if_in_flight(uow.session, chain_id, address, nonce, NonceState.CONFIRMED)
        _transition(
            uow,
            locked.tx,
            TransactionStatus.CONFIRMING,
            details={"tx_hash": locked.tx.tx_hash, "broadcast": outcome},
        )
        return True

    def _confirm(self, workspace_id: str, tx_id: str) -> float | None:
        with self.platform.unit_of_work(read_only=True) as uow:
            loaded = _load(uow, workspace_id, tx_id, lock=False)
            if loaded is None or loaded.tx.status is not TransactionStatus.CONFIRMING:
                return 0.0
        if loaded.network.kind is NetworkKind.BITCOIN:
            return self._confirm_bitcoin(workspace_id, tx_id, loaded)
        seen = self._receipts([loaded])[0]
        if not isinstance(seen, _Seen):
            return seen
        with self.platform.unit_of_work() as uow:
            return self._completed_in(uow, loaded, seen)

    def _receipts(self, loads: Sequence[_Loaded]) -> list[_Seen | float]:
        """For confirming EVM transfers of one node, each one's receipt once it has the
        network's confirmations in the canonical chain, else the delay before looking
        again: their receipts and the node's head in one JSON-RPC batch, the hashes of
        the blocks they name in one more. A lookup that failed alone is looked at again
        later, as one that found no receipt."""
        poll = self.runtime.confirmation_poll_s
        heads = _Heads()
        assert loads[0].network.rpc_url is not None
        client = self.runtime.ethereum_client(loads[0].network)
        try:
            calls: list[RpcCall[Any]] = [
                receipt_call(bytes.fromhex(loaded.tx.tx_hash or "")) for loaded in loads
            ]
            *found, head = client.run_many([*calls, block_number_call()])
            heads.head = head if isinstance(head, int) else None
            numbers = sorted({r.block_number for r in found if isinstance(r, Receipt)})
            for number, answer in zip(
                numbers, client.run_many([block_hash_call(n) for n in numbers]), strict=True
            ):
                if answer is None or isinstance(answer, bytes):
                    heads.hashes[number] = answer
        except RpcTransportError:
            return [poll] * len(loads)
        finally:
            client.close()
        out: list[_Seen | float] = []
        for loaded, receipt in zip(loads, found, strict=True):
            if not isinstance(receipt, Receipt) or receipt.block_number not in heads.hashes:
                out.append(poll)
            else:
                out.append(self._judged(loaded, receipt, heads))
        return out

    def _judged(self, loaded: _Loaded, receipt: Receipt, heads: _Heads) -> _Seen | float:
        """``receipt`` as seen with ``heads``: confirmed enough in the canonical chain,
        or the delay before looking again."""
        if heads.hashes.get(receipt.block_number) != receipt.block_hash or heads.head is None:
            return self.runtime.confirmation_poll_s
        confirmations = max(heads.head - receipt.block_number + 1, 0)
        if confirmations < loaded.network.required_confirmations:
            return self.runtime.confirmation_poll_s
        return _Seen(receipt, confirmations)

    def _completed_in(self, uow: UnitOfWork, loaded: _Loaded, seen: _Seen) -> float | None:
        """``confirming -> completed`` (or ``failed``: reverted) of a confirmed EVM
        transaction, in the caller's unit of work."""
        locked = self._locked(
            uow, loaded.tx.workspace_id, loaded.tx.id, TransactionStatus.CONFIRMING
        )
        if locked is None:
            return 0.0
        receipt = seen.receipt
        locked.tx.confirmations = seen.confirmations
        locked.tx.block_number = receipt.block_number
        details: dict[str, object] = {
            "block_number": receipt.block_number,
            "block_hash": receipt.block_hash.hex(),
            "confirmations": seen.confirmations,
            "gas_used": receipt.gas_used,
        }
        if receipt.success:
            _transition(uow, locked.tx, TransactionStatus.COMPLETED, details=details)
        else:
            _transition(
                uow,
                locked.tx,
                TransactionStatus.FAILED,
                reason="reverted on chain",
                details=details,
            )
        return None

    def finish_batch(self, workspace_id: str, tx_ids: Sequence[str]) -> dict[str, float | None]:
        """The EVM transfers of one workspace that this process has just moved to
        ``broadcasting`` (after :meth:`evaluate_batch`): sent in the given order (nonce
        order), then moved to ``confirming`` in one unit of work, in which those whose
        receipts already have their confirmations also move on. Each passes through the
        states of :meth:`_broadcast` and :meth:`_confirm`; answers the delays, as
        :meth:`evaluate_batch` does (a transaction missing from the answer, or answered
        0, goes on alone)."""
        fresh = [t for t in tx_ids if _hinted(t, TransactionStatus.BROADCASTING)]
        if not fresh:
            return {}
        for tx_id in fresh:
            _recall(tx_id)  # used here: the bytes cannot have been sent yet
        with self.platform.unit_of_work(read_only=True) as uow:
            found = _load_many(uow, workspace_id, fresh, lock=False)
        loads = [
            found[t]
            for t in fresh
            if t in found
            and found[t].tx.status is TransactionStatus.BROADCASTING
            and found[t].network.kind is NetworkKind.EVM
        ]
        delays: dict[str, float | None] = {}
        sent: list[tuple[_Loaded, str]] = []
        for loaded in loads:
            try:
                outcome = self._send_evm(loaded, fresh=True)
            except PipelineFault as exc:
                _ORDER.done([loaded.tx.id])
                self._fail(workspace_id, loaded.tx.id, TransactionStatus.BROADCASTING, str(exc))
                delays[loaded.tx.id] = None
                continue
            _ORDER.done([loaded.tx.id])
            if isinstance(outcome, str):
                sent.append((loaded, outcome))
            else:
                delays[loaded.tx.id] = outcome
        if not sent:
            return delays
        self.runtime.fault("broadcast_sent")
        # The receipts are asked for before ``confirming`` is committed: those already
        # confirmed (a node that mines at once, a fast chain) are then completed in the
        # same unit of work, one write transaction fewer; the others wait as before.
        by_node: dict[str | None, list[_Loaded]] = {}
        for loaded, _ in sent:
            by_node.setdefault(loaded.network.rpc_url, []).append(loaded)
        receipts = {
            loaded.tx.id: receipt
            for group in by_node.values()
            for loaded, receipt in zip(group, self._receipts(group), strict=True)
        }
        moved = []
        with self.platform.unit_of_work() as uow:
            _load_many(uow, workspace_id, [loaded.tx.id for loaded, _ in sent], lock=True)
            by_account: dict[tuple[int, str], list[int]] = {}
            for loaded, _ in sent:
                chain_id, nonce = loaded.network.chain_id, loaded.tx.nonce
                if chain_id is not None and nonce is not None:
                    by_account.setdefault((chain_id, loaded.source.address), []).append(nonce)
                    _wake_successor(uow, chain_id, loaded.source.address, nonce)
            if by_account:
                _before_nonces(uow, workspace_id)
            for (chain_id, address), nonces in by_account.items():
                prefetch_in(uow.session, chain_id, address, nonces)
            for loaded, outcome in sent:
                delays[loaded.tx.id] = 0.0
                if self._confirming_in(uow, loaded, outcome):
                    moved.append(loaded)
            for loaded in moved:
                receipt = receipts[loaded.tx.id]
                if isinstance(receipt, _Seen):
                    delays[loaded.tx.id] = self._completed_in(uow, loaded, receipt)
                else:
                    delays[loaded.tx.id] = receipt
        for loaded in moved:
            _recall(loaded.tx.id)  # the ``confirming`` hint: used here
        return delays

    # Bitcoin (P2WPKH spends of the vault's ECDSA key; docs/transactions.md "Bitcoin").

    def _serialize_bitcoin(self, workspace_id: str, tx_id: str, loaded: _Loaded) -> float | None:
        """Choose coins of the source address, build the PSBT, check it reads back as the
        request, store it and move to ``signing``. Node trouble retries; a spend that
        cannot be built (too little money, dust) fails the transaction."""
        try:
            bitcoin_network(loaded.network)
        except ValidationError as exc:
            raise PipelineFault(str(exc)) from None
        with self.platform.unit_of_work() as uow:
            held = _held_outpoints(uow, loaded)
        client = self.runtime.bitcoin_client(loaded.network)
        try:
            scan = client.scan_utxos([f"addr({loaded.source.address})"])
            estimate = client.estimate_smart_fee(BITCOIN_CONFIRMATION_TARGET)
        except (RpcTransportError, RpcResponseError) as exc:
            _log.warning("serializing %s: node trouble (%s); retrying", tx_id, exc)
            return self.runtime.broadcast_retry_s
        finally:
            client.close()
        rate = BITCOIN_MIN_FEE_RATE
        if estimate is not None:
            rate = max(rate, Decimal(estimate.sat_per_kvb) / 1000)
        utxos = [
            SpendableOutput(u.outpoint.txid_hex, u.outpoint.index, int(u.value), u.block_hash)
            for u in scan.unspents
            if (u.outpoint.txid_hex, u.outpoint.index) not in held
        ]
        try:
            spend = build_p2wpkh_spend(
                network=loaded.network.name,
                source_address=loaded.source.address,
                source_pubkey=bytes.fromhex(loaded.source.public_key),
                utxos=utxos,
                destination=loaded.tx.destination,
                amount_sat=int(loaded.tx.amount_base_units),
                fee_rate_sat_per_vb=rate,
            )
        except InsufficientFundsError as exc:
            raise PipelineFault(
                f"insufficient funds: the source address's {len(utxos)} spendable outputs "
                f"({sum(u.amount_sat for u in utxos)} sat) cannot pay "
                f"{loaded.tx.amount_base_units} sat and the fee at {rate} sat/vB ({exc})"
            ) from None
        except ChainError as exc:
            raise PipelineFault(f"cannot build the Bitcoin spend: {exc}") from None
        # Co-signers prove every input's amount from its previous transaction.
        try:
            with self.runtime.bitcoin_client(loaded.network) as client:
                spend = with_previous_transactions(client, spend)
        except (RpcTransportError, RpcResponseError) as exc:
            _log.warning("serializing %s: node trouble (%s); retrying", tx_id, exc)
            return self.runtime.broadcast_retry_s
        except ChainError as exc:
            raise PipelineFault(f"cannot prove the inputs' amounts: {exc}") from None
        with self.platform.unit_of_work() as uow:
            # One serialization per workspace at a time, so two transfers never take
            # the same coins (the lock of evaluate_batch).
            uow.workspaces().serialize(workspace_id)
            locked = self._locked(uow, workspace_id, tx_id, TransactionStatus.APPROVED)
            if locked is None:
                return 0.0
            taken = {(u.txid, u.vout) for u in spend.inputs}
            if taken & _held_outpoints(uow, locked):
                return 0.0  # Another transfer took a coin meanwhile: build again.
            initiator = uow.users(workspace_id).get(locked.tx.initiator_user_id)
            assert initiator is not None
            # The PSBT to be signed must do exactly what the policy evaluated.
            bitcoin_policy_request(
                locked, spend.psbt, initiator=initiator.email, vault=locked.tx.vault_id
            )
            tx = locked.tx
            tx.chain_payload = json.dumps(
                {
                    "kind": "bitcoin_psbt",
                    "psbt": spend.psbt.hex(),
                    "fee_sat": spend.fee_sat,
                    "change_sat": spend.change_sat,
                    "vsize": spend.vsize,
                    "fee_rate_sat_per_vb": str(rate),
                    "inputs": [
                        {"txid": u.txid, "vout": u.vout, "amount_sat": u.amount_sat}
                        for u in spend.inputs
                    ],
                },
                sort_keys=True,
            )
            tx.digest = _bitcoin_digest(spend.psbt)
            _transition(
                uow,
                tx,
                TransactionStatus.SIGNING,
                details={
                    "digest": tx.digest,
                    "inputs": spend.input_count,
                    "fee_sat": spend.fee_sat,
                    "change_sat": spend.change_sat,
                },
            )
        self.runtime.fault("serialized")
        return 0.0

    def _sign_bitcoin(self, workspace_id: str, tx_id: str) -> float | None:
        """One signature per input (same PSBT, ``input_index`` i), each attempt counted
        and committed before the backend is called, as :meth:`_sign` does; then every
        signature is verified and attached, and the raw transaction and txid stored."""
        with self.platform.unit_of_work() as uow:
            loaded = self._locked(uow, workspace_id, tx_id, TransactionStatus.SIGNING)
            if loaded is None:
                return 0.0
            tx = loaded.tx
            attempt, key = _record_attempt(uow, loaded)
            assert tx.chain_payload is not None
            psbt = bytes.fromhex(json.loads(tx.chain_payload)["psbt"])
            initiator = uow.users(workspace_id).get(tx.initiator_user_id)
            email = initiator.email if initiator is not None else "unknown"
            # What is signed must still be the stored, evaluated transfer.
            if _bitcoin_digest(psbt) != tx.digest:
                raise PipelineFault("the stored PSBT does not match the transaction digest")
            bitcoin_policy_request(loaded, psbt, initiator=email, vault=tx.vault_id)
            metadata, approvals, reports = cosigner_context(uow, loaded, initiator=email)
            inputs = len(bitcoin.parse_psbt(psbt).unsigned_transaction().inputs)
            requests = [
                SignRequest(
                    workspace_id=workspace_id,
                    vault_id=tx.vault_id,
                    backend_key_id=key.backend_key_id,
                    scheme="ecdsa-secp256k1",
                    path=loaded.source.path,
                    payload_kind="bitcoin_psbt",
                    payload=psbt,
                    session=f"{tx.id}:{attempt}:{index}",
                    metadata=metadata,
                    approvals=approvals,
                    price_reports=reports,
                    initiator_request=forwarded_request(uow, tx),
                    input_index=index,
                    min_signers=key.min_signers,
                    parties=key_parties(json.loads(key.cosigners)),
                )
                for index in range(inputs)
            ]
            public_key = bytes.fromhex(loaded.source.public_key)
        self.runtime.fault("signing")
        signatures: list[bytes] = []
        try:
            for request in requests:
                signatures.append(self.runtime.backend.sign(request))
            # Finishing verifies every signature against its input's sighash first.
            raw, txid = finish_p2wpkh_spend(psbt, signatures, public_key)
        except (SigningError, ChainError) as exc:
            _log.warning("signing %s attempt %d failed: %s", tx_id, attempt, exc)
            return self.runtime.broadcast_retry_s
        with self.platform.unit_of_work() as uow:
            loaded = self._locked(uow, workspace_id, tx_id, TransactionStatus.SIGNING)
            if loaded is None or loaded.tx.signing_attempts != attempt:
                return 0.0
            tx = loaded.tx
            # The column holds one signature; every input's is in the witnesses.
            tx.signature = signatures[0].hex()
            tx.signed_payload = raw.hex()
            tx.tx_hash = txid
            _transition(
                uow,
                tx,
                TransactionStatus.SIGNED,
                details={"tx_hash": txid, "signatures": len(signatures)},
            )
        self.runtime.fault("signed")
        return 0.0

    def _broadcast_bitcoin(self, workspace_id: str, tx_id: str, loaded: _Loaded) -> float | None:
        """Ask the node for the txid first; send the same signed bytes only when it does
        not know them. A typed rejection fails the transaction; node trouble retries."""
        tx = loaded.tx
        assert tx.tx_hash is not None
        assert tx.signed_payload is not None
        client = self.runtime.bitcoin_client(loaded.network)
        outcome = "sent"
        try:
            # On resume the transaction may already be out: never send before asking.
            if client.get_transaction_status(tx.tx_hash) is not None:
                outcome = "already_known"
            else:
                try:
                    client.send_raw_transaction(bytes.fromhex(tx.signed_payload))
                except AlreadyInChainError:
                    outcome = "already_known"
                except MissingInputsError as exc:
                    # Its coins are spent: by this very transaction (then the node knows
                    # it) or by another one, which is final for this transfer.
                    if client.get_transaction_status(tx.tx_hash) is None:
                        raise PipelineFault(f"the node refused the transaction: {exc}") from None
                    outcome = "already_known"
                except TransactionRejectedError as exc:
                    raise PipelineFault(f"the node refused the transaction: {exc}") from None
        except (RpcTransportError, NodeWarmingUpError) as exc:
            _log.warning("broadcast of %s: node unavailable (%s); retrying", tx_id, exc)
            return self.runtime.broadcast_retry_s
        except RpcResponseError as exc:
            _log.warning("broadcast of %s: node error (%s); retrying", tx_id, exc)
            return self.runtime.broadcast_retry_s
        finally:
            client.close()
        self.runtime.fault("broadcast_sent")
        with self.platform.unit_of_work() as uow:
            locked = self._locked(uow, workspace_id, tx_id, TransactionStatus.BROADCASTING)
            if locked is None:
                return 0.0
            _transition(
                uow,
                locked.tx,
                TransactionStatus.CONFIRMING,
                details={"tx_hash": locked.tx.tx_hash, "broadcast": outcome},
            )
        return 0.0

    def _confirm_bitcoin(self, workspace_id: str, tx_id: str, loaded: _Loaded) -> float | None:
        """Poll the txid's confirmations until the network's required count."""
        assert loaded.tx.tx_hash is not None
        client = self.runtime.bitcoin_client(loaded.network)
        try:
            status = client.get_transaction_status(loaded.tx.tx_hash)
            height = client.get_block_count() if status is not None else 0
        except (RpcTransportError, RpcResponseError):
            return self.runtime.confirmation_poll_s
        finally:
            client.close()
        if status is None or status.confirmations < loaded.network.required_confirmations:
            return self.runtime.confirmation_poll_s
        with self.platform.unit_of_work() as uow:
            locked = self._locked(uow, workspace_id, tx_id, TransactionStatus.CONFIRMING)
            if locked is None:
                return 0.0
            locked.tx.confirmations = status.confirmations
            locked.tx.block_number = height - status.confirmations + 1
            _transition(
                uow,
                locked.tx,
                TransactionStatus.COMPLETED,
                details={
                    "block_number": locked.tx.block_number,
                    "block_hash": status.block_hash,
                    "confirmations": status.confirmations,
                },
            )
        return None


IDLE_POLL_S = 1.0
"""The longest an idle worker waits before it looks at the queue again. Work this
process queues wakes a worker at once; work queued by another process (a second server
on the same database, a tool) is seen within this time."""

MIN_IDLE_S = 0.01
"""The shortest wait after an empty claim, so that an item another worker is claiming
cannot make this one spin."""


DEFAULT_BATCH_SIZE = 32
"""Items a worker claims at once. A burst's transfers of one workspace share one
evaluation commit, one round of signing requests and one commit per later step
(:meth:`PipelineWorker._batch`), so their fixed costs are paid once per batch: in the
co-signer bench, batches of 32 instead of 8 took the server's CPU per transfer in a
burst from about 15 to 12 ms (docs/performance.md). A batch whose presignatures ran
out presigns them one after another, 32 in about 7 s here and 15 s at the slowest
presigning rate measured: inside the claim's lease (:attr:`PipelineRuntime.lease_s`)."""

MAX_BATCH_SIZE = 256
"""The largest batch size a worker accepts."""


class PipelineWorker:
    """Claims due work from the queue and advances it (module docstring)."""

    def __init__(
        self,
        platform: Platform,
        runtime: PipelineRuntime,
        *,
        worker_id: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH_SIZE}")
        self.platform = platform
        self.runtime = runtime
        self.pipeline = Pipeline(platform, runtime)
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        self.batch_size = batch_size

    def run_once(self, *, limit: int | None = None) -> int:
        """Claim up to ``limit`` (default: the worker's batch size) due items and
        advance each as far as it goes now.
        Transfers of one workspace awaiting policy are evaluated and signed together
        (:meth:`Pipeline.evaluate_batch`), then each goes on alone, in claim order (for
        EVM transfers of one address, nonce order). Returns how many items were
        claimed."""
        limit = self.batch_size if limit is None else limit
        with self.platform.unit_of_work() as uow:
            claimed = [
                (w.workspace_id, w.transaction_id)
                for w in WorkQueue(uow.session).claim(
                    self.worker_id, lease_s=self.runtime.lease_s, limit=limit
                )
            ]
        if len(claimed) == limit:
            work_committed()  # more may be due: another idle worker claims the next ones
        ids = [tx_id for _, tx_id in claimed]
        with LeaseKeeper(self.platform, self.worker_id, ids, self.runtime.lease_s):
            batched = self._batch(claimed)
            # What a batch left waiting or finished is given back in one commit, before
            # the rest goes on (a transfer woken meanwhile must not be re-delayed after).
            self._settle({t: d for t, d in batched.items() if d != 0.0})
            for workspace_id, tx_id in claimed:
                if batched.get(tx_id, 0.0) == 0.0:
                    self._work(workspace_id, tx_id)
        return len(claimed)

    def _batch(self, claimed: Sequence[tuple[str, str]]) -> dict[str, float | None]:
        """Evaluate and sign together the claimed transfers of each workspace that may
        await policy (two or more; a transfer with a hint has gone past it). Answers the
        delays :meth:`Pipeline.evaluate_batch` gave; after an error there, none (each
        transfer then goes on alone, from the state it was left in)."""
        groups: dict[str, list[str]] = {}
        for workspace_id, tx_id in claimed:
            if not _hinted(tx_id):
                groups.setdefault(workspace_id, []).append(tx_id)
        delays: dict[str, float | None] = {}
        for workspace_id, tx_ids in groups.items():
            if len(tx_ids) < 2:
                continue
            try:
                done = self.pipeline.evaluate_batch(workspace_id, tx_ids)
                delays.update(done)
                going = [t for t in tx_ids if done.get(t) == 0.0]
                _ORDER.done([t for t in tx_ids if t not in going])  # not sent in this batch
                if going:
                    delays.update(self.pipeline.finish_batch(workspace_id, going))
            except Exception:
                # One transfer's fault (or a raced row) undoes the shared evaluation;
                # the single path meets it again and fails only that transfer.
                _log.warning(
                    "batch of %d transfers goes on one at a time", len(tx_ids), exc_info=True
                )
            finally:
                _ORDER.done(tx_ids)  # nonces not sent here are not waited for
        return delays

    def _work(self, workspace_id: str, tx_id: str) -> None:
        """Advance ``tx_id`` until it must wait, then give its item back or finish it."""
        delay: float | None = 0.0
        try:
            while delay == 0.0:
                delay = self.pipeline.advance(workspace_id, tx_id)
        except StaleDataError:
            delay = 0.0  # another step won the race; look again at once
        except Exception:
            _log.exception("pipeline step for %s failed; retrying later", tx_id)
            delay = self.runtime.broadcast_retry_s
        self._settle({tx_id: delay})

    def _settle(self, delays: Mapping[str, float | None]) -> None:
        """Finish the items that need no more steps (``None``), give the others back
        due after their delay; one commit."""
        if not delays:
            return
        now = utcnow()
        with self.platform.unit_of_work() as uow:
            queue = WorkQueue(uow.session)
            queue.finish_many([t for t, d in delays.items() if d is None], self.worker_id)
            for tx_id, delay in delays.items():
                if delay is not None:
                    queue.release(tx_id, self.worker_id, now + timedelta(seconds=delay))

    def run(self, stop: threading.Event, *, max_idle_s: float = IDLE_POLL_S) -> None:
        """Work until ``stop`` is set. When a claim comes back empty, wait until the
        queue's next item falls due (a read, outside the write lock), at most
        ``max_idle_s`` (work another process queued has no other way to reach this
        one), and at once when this process commits new work (:mod:`.work_signal`)."""
        while not stop.is_set():
            if self.run_once() > 0:
                continue
            wait = self.idle_wait(max_idle_s)
            if wait > 0:
                wait_for_work(wait)

    def idle_wait(self, max_idle_s: float = IDLE_POLL_S) -> float:
        """Seconds until the queue's next item can be claimed, between
        :data:`MIN_IDLE_S` (an item that looks due but was not claimable: another
        worker's claim is committing) and ``max_idle_s``."""
        with self.platform.unit_of_work(read_only=True) as uow:
            at = WorkQueue(uow.session).next_claimable()
        if at is None:
            return max_idle_s
        return min(max_idle_s, max(MIN_IDLE_S, (at - utcnow()).total_seconds()))

    def drain(self, *, timeout_s: float = 60.0, until: Callable[[], bool] | None = None) -> None:
        """Work until nothing is due (or ``until()`` holds); for tools and tests."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if until is not None and until():
                return
            if self.run_once() == 0:
                if until is None:
                    with self.platform.unit_of_work() as uow:
                        due = WorkQueue(uow.session).due()
                    if due == 0:
                        return
                time.sleep(0.05)
        raise TimeoutError("the pipeline did not settle in time")
