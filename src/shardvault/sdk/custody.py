"""Vaults, wallets, transactions and approvals in the SDK (policies and the address book:
:mod:`.policies`):
typed models and the client methods (mixed into the async and sync clients).

Approving takes the approver's Ed25519 private key: :func:`sign_approval` builds the
statement docs/policy.md defines over the transaction's intent digest, which the client
recomputes from the transfer it shows (:mod:`shardvault.sdk.approvals`), signs it
locally and sends only the signature. Admin signatures of policy bundles work the same
way (:func:`sign_bundle`).
"""

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, TypeAdapter

from shardvault.policy.approvals import ApprovalVerdict, approval_message
from shardvault.policy.intent import TransferIntent, intent_digest
from shardvault.sdk.approvals import checked_intent
from shardvault.sdk.errors import SdkError, TransportError

R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)

KEYGEN_TIMEOUT_S = 900.0
"""How long ``create_vault`` waits for the server's key generation."""

PROGRESS_POLL_S = 0.25
"""How often ``create_vault`` reads its key generation's progress (when asked to)."""

RECONNECT_S = 1.0
"""How long a vault request waits before asking a server it could not reach again."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Network(_Model):
    id: str
    name: str
    kind: str
    chain_id: int | None
    coin_type: int
    rpc_url: str | None
    required_confirmations: int
    rpc_urls: list[str] = []
    broadcast_url: str | None = None
    native_symbol: str | None = None
    native_decimals: int = 18
    fee_model: str | None = None


class Asset(_Model):
    id: str
    symbol: str
    network: str
    kind: str
    contract: str | None
    decimals: int
    price: str | None


_NETWORK_LIST = TypeAdapter(list[Network])
_ASSET_LIST = TypeAdapter(list[Asset])


class VaultKey(_Model):
    scheme: str
    public_key: str
    chain_code: str
    min_signers: int
    max_signers: int
    cosigners: list[str]
    backend: str
    quorums_overlap: bool = True
    """Whether any two quorums share a co-signer (2 * min_signers > max_signers)."""
    warning: str | None = None
    """Why the threshold is weaker, when quorums can be disjoint."""


class Vault(_Model):
    id: str
    name: str
    number: int
    custody_mode: str
    keys: list[VaultKey]
    created_at: datetime


class SchemeProgress(_Model):
    scheme: str
    steps_done: int
    steps_total: int


class VaultCreation(_Model):
    """How far a vault request's key generations have come (``GET /v1/vault-creations``)."""

    idempotency_key: str
    vault_id: str
    state: Literal["generating", "finished", "failed"]
    schemes: list[SchemeProgress]
    steps_done: int
    steps_total: int
    elapsed_s: float
    attempts: int = 1
    """Runs of the key generations so far (a restart of the server runs them again)."""
    error: str | None = None
    """Why a ``failed`` creation failed."""


class VaultPage(_Model):
    data: list[Vault]
    next_cursor: str | None


class Address(_Model):
    """An address as the server shows it. ``attestations`` are the co-signers' signed
    statements about it; count them with :mod:`shardvault.sdk.addresses` against the
    co-signers you pinned (``attested`` is only the server's word)."""

    id: str
    wallet_id: str
    index: int
    path: str
    address: str
    public_key: str
    created_at: datetime
    vault_id: str | None = None
    scheme: str | None = None
    attestations: list[dict[str, Any]] = []
    attested: bool = False


class Wallet(_Model):
    id: str
    vault_id: str
    asset: str
    network: str
    addresses: list[Address]
    created_at: datetime


class WalletList(_Model):
    data: list[Wallet]


class Approval(_Model):
    approver: str
    decision: str
    policy_version: int
    signed_at: int | None = None
    created_at: datetime


class Transaction(_Model):
    id: str
    workspace_id: str
    vault_id: str
    wallet_id: str
    source_address: str
    network: str
    intent_network: str
    asset: str
    intent_asset: str
    asset_decimals: int
    operation: str
    destination: str
    amount: str
    amount_base_units: str
    note: str | None
    status: str
    status_reason: str | None
    intent_digest: str
    policy_version: int | None
    policy_rule: str | None
    approvals_needed: dict[str, int]
    approval_deadline: int | None
    approvals: list[Approval]
    nonce: int | None
    digest: str | None
    signature: str | None
    signed_payload: str | None
    tx_hash: str | None
    confirmations: int
    block_number: int | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    version: int


class TransactionPage(_Model):
    data: list[Transaction]
    next_cursor: str | None


FINAL_STATUSES = frozenset({"completed", "failed", "rejected", "blocked", "cancelled"})
"""Transaction states that never change again."""


def sign_approval(
    key: Ed25519PrivateKey,
    *,
    approver: str,
    intent_digest: str,
    policy_version: int,
    signed_at: int,
    decision: Literal["approve", "reject"] = "approve",
) -> str:
    """Sign the approval statement (docs/policy.md, "Approvals") locally, dated
    ``signed_at`` (Unix seconds); returns the signature in hex. The statement's lifetime
    counts from ``signed_at``, so send the same value with it."""
    message = approval_message(
        approver,
        bytes.fromhex(intent_digest),
        ApprovalVerdict(decision),
        policy_version,
        signed_at,
    )
    return key.sign(message).hex()


def sign_bundle(key: Ed25519PrivateKey, signing_message: str) -> str:
    """An admin's signature over a proposed bundle's ``signing_message`` (hex)."""
    return key.sign(bytes.fromhex(signing_message)).hex()


class AsyncCustodyMixin:
    """Custody methods of :class:`~shardvault.sdk.client.AsyncShardvaultClient`."""

    if TYPE_CHECKING:

        async def request(
            self,
            method: str,
            path: str,
            *,
            params: Mapping[str, str | int] | None = None,
            json_body: Mapping[str, object] | None = None,
            idempotency_key: str | None = None,
            authenticated: bool = True,
            timeout_s: float | None = None,
            headers: Mapping[str, str] | None = None,
        ) -> httpx.Response: ...

    async def _custody_call(
        self,
        method: str,
        path: str,
        model: type[M],
        *,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, object] | None = None,
        idempotency_key: str | None = None,
        idempotent: bool = True,
        timeout_s: float | None = None,
    ) -> M:
        mutating = method != "GET" and idempotent
        response = await self.request(
            method,
            path,
            params={k: v for k, v in (params or {}).items() if v is not None},
            json_body=body if body is not None else ({} if method == "POST" else None),
            idempotency_key=(idempotency_key or str(uuid.uuid4())) if mutating else None,
            timeout_s=timeout_s,
        )
        return model.model_validate(response.json())

    async def configure_network(
        self,
        *,
        name: str,
        kind: Literal["evm", "bitcoin", "solana"],
        chain_id: int | None = None,
        rpc_url: str | None = None,
        required_confirmations: int = 1,
        idempotency_key: str | None = None,
        rpc_urls: list[str] | None = None,
        broadcast_url: str | None = None,
        native_symbol: str | None = None,
        fee_model: Literal["eip1559", "legacy"] | None = None,
    ) -> Network:
        body: dict[str, object] = {
            "name": name,
            "kind": kind,
            "required_confirmations": required_confirmations,
        }
        optional: dict[str, object | None] = {
            "chain_id": chain_id,
            "rpc_url": rpc_url,
            "rpc_urls": rpc_urls,
            "broadcast_url": broadcast_url,
            "native_symbol": native_symbol,
            "fee_model": fee_model,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return await self._custody_call(
            "POST", "/v1/networks", Network, body=body, idempotency_key=idempotency_key
        )

    async def add_asset(
        self,
        *,
        symbol: str,
        network: str,
        kind: Literal["native", "erc20"] = "native",
        contract: str | None = None,
        decimals: int | None = None,
        price: str | None = None,
        idempotency_key: str | None = None,
    ) -> Asset:
        body: dict[str, object] = {"symbol": symbol, "network": network, "kind": kind}
        for name, value in (("contract", contract), ("decimals", decimals), ("price", price)):
            if value is not None:
                body[name] = value
        return await self._custody_call(
            "POST", "/v1/assets", Asset, body=body, idempotency_key=idempotency_key
        )

    async def list_networks(self) -> list[Network]:
        response = await self.request("GET", "/v1/networks")
        return _NETWORK_LIST.validate_python(response.json())

    async def list_assets(self) -> list[Asset]:
        response = await self.request("GET", "/v1/assets")
        return _ASSET_LIST.validate_python(response.json())

    async def create_vault(
        self,
        *,
        name: str,
        schemes: list[str] | None = None,
        min_signers: int = 2,
        max_signers: int = 3,
        idempotency_key: str | None = None,
        on_progress: Callable[[VaultCreation], None] | None = None,
    ) -> Vault:
        """Create a vault, waiting for its key generations (about a second per scheme
        when the co-signers' prime pools are warm; seconds to minutes when they must
        search safe primes); ``on_progress``, if given, is called with how far they have
        come each time that changes (read from ``GET /v1/vault-creations/{key}`` about
        every quarter of a second). A server that restarts meanwhile is asked again with
        the same key: it runs the same creation again, and one vault results."""
        body = {
            "name": name,
            "schemes": schemes or ["ecdsa-secp256k1"],
            "min_signers": min_signers,
            "max_signers": max_signers,
        }
        key = idempotency_key or str(uuid.uuid4())
        # Wait for the key generation rather than time out and retry into a second one.
        creating = asyncio.ensure_future(self._create_vault_waiting(body, key))
        if on_progress is not None:
            try:
                await self._watch_creation(creating, key, on_progress)
            except BaseException:
                # The callback failed (or this call was cancelled): stop waiting for the
                # answer. The server goes on; the same key retries without a new vault.
                creating.cancel()
                raise
        return await creating

    async def _create_vault_waiting(self, body: Mapping[str, object], key: str) -> Vault:
        """``POST /v1/vaults`` until it answers: a server that cannot be reached (it
        restarts, say) is asked again with the same key for up to
        :data:`KEYGEN_TIMEOUT_S`; the restarted server runs the same job again and
        answers with its vault."""
        deadline = time.monotonic() + KEYGEN_TIMEOUT_S
        while True:
            try:
                return await self._custody_call(
                    "POST",
                    "/v1/vaults",
                    Vault,
                    body=body,
                    idempotency_key=key,
                    timeout_s=KEYGEN_TIMEOUT_S,
                )
            except TransportError:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(RECONNECT_S)

    async def start_vault_creation(
        self,
        *,
        name: str,
        schemes: list[str] | None = None,
        min_signers: int = 2,
        max_signers: int = 3,
        idempotency_key: str | None = None,
    ) -> VaultCreation:
        """Start creating a vault and return at once (``Prefer: respond-async``): follow
        it with :meth:`get_vault_creation` (same ``idempotency_key``) until ``finished``,
        then read the vault ``vault_id``. The job survives a restart of the server."""
        body = {
            "name": name,
            "schemes": schemes or ["ecdsa-secp256k1"],
            "min_signers": min_signers,
            "max_signers": max_signers,
        }
        key = idempotency_key or str(uuid.uuid4())
        response = await self.request(
            "POST",
            "/v1/vaults",
            json_body=body,
            idempotency_key=key,
            headers={"Prefer": "respond-async"},
        )
        if response.status_code == 202:
            return VaultCreation.model_validate(response.json())
        # Finished already (a retry of a finished creation answers with its vault).
        return await self.get_vault_creation(key)

    async def get_vault_creation(self, idempotency_key: str) -> VaultCreation:
        """How far the vault request with ``idempotency_key`` has come."""
        return await self._custody_call(
            "GET", f"/v1/vault-creations/{quote(idempotency_key, safe='')}", VaultCreation
        )

    async def _watch_creation(
        self,
        creating: asyncio.Future[Vault],
        key: str,
        on_progress: Callable[[VaultCreation], None],
    ) -> None:
        last: VaultCreation | None = None
        while True:
            await asyncio.wait({creating}, timeout=PROGRESS_POLL_S)
            if creating.done():
                return
            try:
                now = await self._custody_call(
                    "GET", f"/v1/vault-creations/{quote(key, safe='')}", VaultCreation
                )
            except SdkError:
                continue  # not started yet (a 404), or a hiccup: the request decides
            if last is None or (now.steps_done, now.state) != (last.steps_done, last.state):
                last = now
                on_progress(now)

    async def get_vault(self, vault_id: str) -> Vault:
        return await self._custody_call("GET", f"/v1/vaults/{vault_id}", Vault)

    async def list_vaults(self, *, limit: int = 50, cursor: str | None = None) -> VaultPage:
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        return await self._custody_call("GET", "/v1/vaults", VaultPage, params=params)

    async def create_wallet(
        self, *, vault_id: str, asset: str, idempotency_key: str | None = None
    ) -> Wallet:
        body = {"vault_id": vault_id, "asset": asset}
        return await self._custody_call(
            "POST", "/v1/wallets", Wallet, body=body, idempotency_key=idempotency_key
        )

    async def get_wallet(self, wallet_id: str) -> Wallet:
        return await self._custody_call("GET", f"/v1/wallets/{wallet_id}", Wallet)

    async def list_wallets(self, *, vault_id: str | None = None) -> WalletList:
        params: dict[str, str | int] = {} if vault_id is None else {"vault_id": vault_id}
        return await self._custody_call("GET", "/v1/wallets", WalletList, params=params)

    async def new_address(self, wallet_id: str, *, idempotency_key: str | None = None) -> Address:
        return await self._custody_call(
            "POST",
            f"/v1/wallets/{wallet_id}/addresses",
            Address,
            idempotency_key=idempotency_key,
        )

    async def create_transaction(
        self,
        *,
        wallet_id: str,
        destination: str,
        amount: str,
        note: str | None = None,
        source_index: int = 0,
        idempotency_key: str | None = None,
    ) -> Transaction:
        body: dict[str, object] = {
            "wallet_id": wallet_id,
            "destination": destination,
            "amount": amount,
            "source_index": source_index,
        }
        if note is not None:
            body["note"] = note
        return await self._custody_call(
            "POST", "/v1/transactions", Transaction, body=body, idempotency_key=idempotency_key
        )

    async def get_transaction(self, transaction_id: str) -> Transaction:
        return await self._custody_call("GET", f"/v1/transactions/{transaction_id}", Transaction)

    async def list_transactions(
        self, *, limit: int = 50, cursor: str | None = None, status: str | None = None
    ) -> TransactionPage:
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        if status is not None:
            params["status"] = status
        return await self._custody_call("GET", "/v1/transactions", TransactionPage, params=params)

    async def cancel_transaction(
        self, transaction_id: str, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> Transaction:
        body = {} if reason is None else {"reason": reason}
        return await self._custody_call(
            "POST",
            f"/v1/transactions/{transaction_id}/cancel",
            Transaction,
            body=body,
            idempotency_key=idempotency_key,
        )

    async def submit_approval(
        self,
        transaction_id: str,
        *,
        approver: str,
        decision: Literal["approve", "reject"],
        policy_version: int,
        signed_at: int,
        signature: str,
        idempotency_key: str | None = None,
    ) -> Transaction:
        body = {
            "approver": approver,
            "decision": decision,
            "policy_version": policy_version,
            "signed_at": signed_at,
            "signature": signature,
        }
        return await self._custody_call(
            "POST",
            f"/v1/transactions/{transaction_id}/approvals",
            Transaction,
            body=body,
            idempotency_key=idempotency_key,
        )

    async def approve_transaction(
        self,
        transaction_id: str,
        *,
        approver: str,
        key: Ed25519PrivateKey,
        decision: Literal["approve", "reject"] = "approve",
        on_review: Callable[[Transaction, TransferIntent], None] | None = None,
    ) -> Transaction:
        """Fetch the transaction, recompute its intent digest from the fields it shows
        (:func:`~shardvault.sdk.approvals.checked_intent`), sign the statement over that
        digest locally, dated by this client's clock, send it. ``on_review``, if given,
        sees the checked transaction and its intent before anything is signed (raise in
        it to sign nothing).

        Raises:
            DigestMismatchError: the server's ``intent_digest`` is not the digest of the
                transfer it shows (nothing is signed).
            ValueError: the transaction has not been evaluated by a policy yet.
        """
        tx = await self.get_transaction(transaction_id)
        intent = checked_intent(tx, transaction_id)
        if tx.policy_version is None:
            raise ValueError(f"transaction {transaction_id} has not been evaluated yet")
        if on_review is not None:
            on_review(tx, intent)
        # Dated once the approver has reviewed: the lifetime counts from here.
        signed_at = int(time.time())
        signature = sign_approval(
            key,
            approver=approver,
            intent_digest=intent_digest(intent).hex(),
            policy_version=tx.policy_version,
            signed_at=signed_at,
            decision=decision,
        )
        return await self.submit_approval(
            transaction_id,
            approver=approver,
            decision=decision,
            policy_version=tx.policy_version,
            signed_at=signed_at,
            signature=signature,
        )


class CustodyMixin:
    """Custody methods of :class:`~shardvault.sdk.client.ShardvaultClient` (synchronous):
    each runs the async client's method of the same name."""

    if TYPE_CHECKING:

        def _run(self, coroutine: Coroutine[Any, Any, R]) -> R: ...

    @property
    def _custody(self) -> AsyncCustodyMixin:
        client = getattr(self, "_client")  # noqa: B009
        assert isinstance(client, AsyncCustodyMixin)
        return client

    def configure_network(self, **kwargs: Any) -> Network:
        return self._run(self._custody.configure_network(**kwargs))

    def add_asset(self, **kwargs: Any) -> Asset:
        return self._run(self._custody.add_asset(**kwargs))

    def list_networks(self) -> list[Network]:
        return self._run(self._custody.list_networks())

    def list_assets(self) -> list[Asset]:
        return self._run(self._custody.list_assets())

    def create_vault(self, **kwargs: Any) -> Vault:
        return self._run(self._custody.create_vault(**kwargs))

    def start_vault_creation(self, **kwargs: Any) -> VaultCreation:
        return self._run(self._custody.start_vault_creation(**kwargs))

    def get_vault_creation(self, idempotency_key: str) -> VaultCreation:
        return self._run(self._custody.get_vault_creation(idempotency_key))

    def get_vault(self, vault_id: str) -> Vault:
        return self._run(self._custody.get_vault(vault_id))

    def list_vaults(self, **kwargs: Any) -> VaultPage:
        return self._run(self._custody.list_vaults(**kwargs))

    def create_wallet(self, **kwargs: Any) -> Wallet:
        return self._run(self._custody.create_wallet(**kwargs))

    def get_wallet(self, wallet_id: str) -> Wallet:
        return self._run(self._custody.get_wallet(wallet_id))

    def list_wallets(self, **kwargs: Any) -> WalletList:
        return self._run(self._custody.list_wallets(**kwargs))

    def new_address(self, wallet_id: str, **kwargs: Any) -> Address:
        return self._run(self._custody.new_address(wallet_id, **kwargs))

    def create_transaction(self, **kwargs: Any) -> Transaction:
        return self._run(self._custody.create_transaction(**kwargs))

    def get_transaction(self, transaction_id: str) -> Transaction:
        return self._run(self._custody.get_transaction(transaction_id))

    def list_transactions(self, **kwargs: Any) -> TransactionPage:
        return self._run(self._custody.list_transactions(**kwargs))

    def cancel_transaction(self, transaction_id: str, **kwargs: Any) -> Transaction:
        return self._run(self._custody.cancel_transaction(transaction_id, **kwargs))

    def submit_approval(self, transaction_id: str, **kwargs: Any) -> Transaction:
        return self._run(self._custody.submit_approval(transaction_id, **kwargs))

    def approve_transaction(self, transaction_id: str, **kwargs: Any) -> Transaction:
        return self._run(self._custody.approve_transaction(transaction_id, **kwargs))
