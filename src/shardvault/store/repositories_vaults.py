"""Repositories of the custody domain, the nonce ledger and the pipeline's work queue.

As in :mod:`shardvault.store.repositories`, every tenant repository is bound to one
workspace and adds ``workspace_id = :bound`` to each query. The nonce ledger and the work
queue are keyed by chain account and transaction; they lock rows so that concurrent
allocators and workers on PostgreSQL (READ COMMITTED) never hand out the same nonce or
claim the same work, and SQLite's ``BEGIN IMMEDIATE`` serializes them there.

Repositories never commit; the caller's unit of work does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, case, delete, func, or_, select, update
from sqlalchemy.orm import Session

from shardvault.store.models_vaults import (
    AddressBookEntry,
    Approval,
    Asset,
    AssetKind,
    Network,
    NonceAllocation,
    NonceCounter,
    NonceState,
    PipelineWork,
    PolicyChainState,
    PolicyStatus,
    PolicyVersion,
    Transaction,
    TransactionStatus,
    Vault,
    VaultKey,
    Wallet,
    WalletAddress,
)
from shardvault.store.repositories import (
    deferred_writes,
    flush_unless_deferred,
    insert_ignoring_conflict,
    transaction_scoped,
)
from shardvault.store.types import UTCDateTime, utcnow


class _Bound:
    def __init__(self, session: Session, workspace_id: str) -> None:
        self._session = session
        self.workspace_id = workspace_id

    def _add(self, row: object) -> None:
        self._session.add(row)
        self._session.flush()


class NetworkRepository(_Bound):
    """Networks of one workspace."""

    def add(self, row: Network) -> Network:
        row.workspace_id = self.workspace_id
        self._add(row)
        return row

    def get(self, network_id: str) -> Network | None:
        return self._session.scalar(
            select(Network).where(
                Network.workspace_id == self.workspace_id, Network.id == network_id
            )
        )

    def by_name(self, name: str) -> Network | None:
        return self._session.scalar(
            select(Network).where(Network.workspace_id == self.workspace_id, Network.name == name)
        )

    def list(self) -> Sequence[Network]:
        return self._session.scalars(
            select(Network).where(Network.workspace_id == self.workspace_id).order_by(Network.name)
        ).all()


class AssetRepository(_Bound):
    """Assets of one workspace."""

    def add(self, row: Asset) -> Asset:
        row.workspace_id = self.workspace_id
        self._add(row)
        return row

    def get(self, asset_id: str) -> Asset | None:
        return self._session.scalar(
            select(Asset).where(Asset.workspace_id == self.workspace_id, Asset.id == asset_id)
        )

    def by_symbol(self, symbol: str) -> Asset | None:
        return self._session.scalar(
            select(Asset).where(Asset.workspace_id == self.workspace_id, Asset.symbol == symbol)
        )

    def on_network(self, network_id: str, contract: str | None) -> Asset | None:
        """The asset of ``contract`` on the network (``None``: its native asset)."""
        query = select(Asset).where(
            Asset.workspace_id == self.workspace_id, Asset.network_id == network_id
        )
        if contract is None:
            query = query.where(Asset.kind == AssetKind.NATIVE)
        else:
            query = query.where(Asset.contract == contract)
        return self._session.scalar(query)

    def list(self) -> Sequence[Asset]:
        return self._session.scalars(
            select(Asset).where(Asset.workspace_id == self.workspace_id).order_by(Asset.symbol)
        ).all()


class VaultRepository(_Bound):
    """Vaults of one workspace and their root keys."""

    def add(self, *, name: str, row: Vault) -> Vault:
        row.workspace_id = self.workspace_id
        row.name = name
        row.number = self.next_number()
        self._add(row)
        return row

    def next_number(self) -> int:
        current = self._session.scalar(
            select(func.max(Vault.number)).where(Vault.workspace_id == self.workspace_id)
        )
        return 0 if current is None else int(current) + 1

    def get(self, vault_id: str) -> Vault | None:
        return self._session.scalar(
            select(Vault).where(Vault.workspace_id == self.workspace_id, Vault.id == vault_id)
        )

    def by_name(self, name: str) -> Vault | None:
        return self._session.scalar(
            select(Vault).where(Vault.workspace_id == self.workspace_id, Vault.name == name)
        )

    def list(self, *, limit: int, after_id: str | None = None) -> Sequence[Vault]:
        query = select(Vault).where(Vault.workspace_id == self.workspace_id)
        if after_id is not None:
            query = query.where(Vault.id > after_id)
        return self._session.scalars(query.order_by(Vault.id).limit(limit)).all()

    def add_key(self, row: VaultKey) -> VaultKey:
        row.workspace_id = self.workspace_id
        self._add(row)
        return row

    def keys(self, vault_id: str) -> Sequence[VaultKey]:
        return self._session.scalars(
            select(VaultKey)
            .where(VaultKey.workspace_id == self.workspace_id, VaultKey.vault_id == vault_id)
            .order_by(VaultKey.scheme)
        ).all()

    def key(self, vault_id: str, scheme: str) -> VaultKey | None:
        # A vault's keys never change once made: one found is kept for the rest of the
        # database transaction (a batch signing many transfers of one vault).
        found = transaction_scoped(self._session, "vault_keys")
        name = (self.workspace_id, vault_id, scheme)
        key = found.get(name)
        if key is None:
            key = self._session.scalar(
                select(VaultKey).where(
                    VaultKey.workspace_id == self.workspace_id,
                    VaultKey.vault_id == vault_id,
                    VaultKey.scheme == scheme,
                )
            )
            if key is not None:
                found[name] = key
        return key


class WalletRepository(_Bound):
    """Wallets and addresses of one workspace."""

    def add(self, row: Wallet) -> Wallet:
        row.workspace_id = self.workspace_id
        self._add(row)
        return row

    def get(self, wallet_id: str, *, lock: bool = False) -> Wallet | None:
        query = select(Wallet).where(
            Wallet.workspace_id == self.workspace_id, Wallet.id == wallet_id
        )
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        return self._session.scalar(query)

    def find(self, vault_id: str, asset_id: str) -> Wallet | None:
        return self._session.scalar(
            select(Wallet).where(
                Wallet.workspace_id == self.workspace_id,
                Wallet.vault_id == vault_id,
                Wallet.asset_id == asset_id,
            )
        )

    def list(self, vault_id: str | None = None) -> Sequence[Wallet]:
        query = select(Wallet).where(Wallet.workspace_id == self.workspace_id)
        if vault_id is not None:
            query = query.where(Wallet.vault_id == vault_id)
        return self._session.scalars(query.order_by(Wallet.id)).all()

    def add_address(self, row: WalletAddress) -> WalletAddress:
        row.workspace_id = self.workspace_id
        self._add(row)
        return row

    def addresses(self, wallet_id: str) -> Sequence[WalletAddress]:
        return self._session.scalars(
            select(WalletAddress)
            .where(
                WalletAddress.workspace_id == self.workspace_id,
                WalletAddress.wallet_id == wallet_id,
            )
            .order_by(WalletAddress.index)
        ).all()

    def address(self, address_id: str) -> WalletAddress | None:
        return self._session.scalar(
            select(WalletAddress).where(
                WalletAddress.workspace_id == self.workspace_id, WalletAddress.id == address_id
            )
        )

    def with_source(
        self, wallet_id: str, index: int
    ) -> tuple[Wallet, Asset, Network, WalletAddress | None] | None:
        """A wallet with its asset, network and its address at ``index`` (``None``
        where it has none), in one query: the read of every transfer request."""
        row = self._session.execute(
            select(Wallet, Asset, Network, WalletAddress)
            .join(
                Asset, and_(Asset.id == Wallet.asset_id, Asset.workspace_id == Wallet.workspace_id)
            )
            .join(
                Network,
                and_(Network.id == Asset.network_id, Network.workspace_id == Asset.workspace_id),
            )
            .outerjoin(
                WalletAddress,
                and_(
                    WalletAddress.wallet_id == Wallet.id,
                    WalletAddress.workspace_id == Wallet.workspace_id,
                    WalletAddress.index == index,
                ),
            )
            .where(Wallet.workspace_id == self.workspace_id, Wallet.id == wallet_id)
        ).one_or_none()
        if row is None:
            return None
        wallet, asset, network, address = row
        return wallet, asset, network, address


class AddressBookRepository(_Bound):
    """Address-book entries of one workspace."""

    def add(self, row: AddressBookEntry) -> AddressBookEntry:
        row.workspace_id = self.workspace_id
        self._add(row)
        return row

    def get(self, entry_id: str) -> AddressBookEntry | None:
        return self._session.scalar(
            select(AddressBookEntry).where(
                AddressBookEntry.workspace_id == self.workspace_id, AddressBookEntry.id == entry_id
            )
        )

    def by_name(self, name: str) -> AddressBookEntry | None:
        return self._session.scalar(
            select(AddressBookEntry).where(
                AddressBookEntry.workspace_id == self.workspace_id, AddressBookEntry.name == name
            )
        )

    def list(self) -> Sequence[AddressBookEntry]:
        return self._session.scalars(
            select(AddressBookEntry)
            .where(AddressBookEntry.workspace_id == self.workspace_id)
            .order_by(AddressBookEntry.name)
        ).all()

    def remove(self, entry: AddressBookEntry) -> None:
        self._session.delete(entry)
        self._session.flush()


class PolicyRepository(_Bound):
    """Policy versions of one workspace and its pinned admin set."""

    def add(self, row: PolicyVersion) -> PolicyVersion:
        row.workspace_id = self.workspace_id
        self._add(row)
        return row

    def get(self, policy_id: str, *, lock: bool = False) -> PolicyVersion | None:
        query = select(PolicyVersion).where(
            PolicyVersion.workspace_id == self.workspace_id, PolicyVersion.id == policy_id
        )
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        return self._session.scalar(query)

    def active(self) -> PolicyVersion | None:
        return self._session.scalar(
            select(PolicyVersion).where(
                PolicyVersion.workspace_id == self.workspace_id,
                PolicyVersion.status == PolicyStatus.ACTIVE,
            )
        )

    def chain(self) -> Sequence[PolicyVersion]:
        """Every bundle ever activated (active and superseded), oldest first."""
        return self._session.scalars(
            select(PolicyVersion)
            .where(
                PolicyVersion.workspace_id == self.workspace_id,
                PolicyVersion.status.in_([PolicyStatus.ACTIVE, PolicyStatus.SUPERSEDED]),
            )
            .order_by(PolicyVersion.version)
        ).all()

    def list(self) -> Sequence[PolicyVersion]:
        return self._session.scalars(
            select(PolicyVersion)
            .where(PolicyVersion.workspace_id == self.workspace_id)
            .order_by(PolicyVersion.created_at, PolicyVersion.id)
        ).all()

    def pinned_admins(self, *, lock: bool = False) -> PolicyChainState | None:
        query = select(PolicyChainState).where(PolicyChainState.workspace_id == self.workspace_id)
        if lock:
            query = query.with_for_update()
        return self._session.scalar(query)

    def pin_admins(self, document: str) -> None:
        self._session.add(
            PolicyChainState(
                workspace_id=self.workspace_id, pinned_admins=document, created_at=utcnow()
            )
        )
        self._session.flush()


class TransactionRepository(_Bound):
    """Transactions and approvals of one workspace."""

    def add(self, row: Transaction) -> Transaction:
        row.workspace_id = self.workspace_id
        self._add(row)
        return row

    def get(self, transaction_id: str, *, lock: bool = False) -> Transaction | None:
        query = select(Transaction).where(
            Transaction.workspace_id == self.workspace_id, Transaction.id == transaction_id
        )
        if lock:
            query = query.with_for_update()
        return self._session.scalar(query.execution_options(populate_existing=True))

    def get_many(self, transaction_ids: Sequence[str], *, lock: bool = False) -> list[Transaction]:
        """Those of ``transaction_ids`` that exist, in one query (locked if asked, in id
        order, so two callers locking overlapping sets cannot deadlock)."""
        query = (
            select(Transaction)
            .where(
                Transaction.workspace_id == self.workspace_id,
                Transaction.id.in_(list(transaction_ids)),
            )
            .order_by(Transaction.id)
        )
        if lock:
            query = query.with_for_update()
        return list(self._session.scalars(query.execution_options(populate_existing=True)))

    def list(
        self,
        *,
        limit: int,
        after_id: str | None = None,
        status: TransactionStatus | None = None,
    ) -> Sequence[Transaction]:
        query = select(Transaction).where(Transaction.workspace_id == self.workspace_id)
        if status is not None:
            query = query.where(Transaction.status == status)
        if after_id is not None:
            query = query.where(Transaction.id > after_id)
        return self._session.scalars(query.order_by(Transaction.id).limit(limit)).all()

    def history(self, since: datetime, exclude_id: str) -> Sequence[Transaction]:
        """Transactions created since ``since`` (for velocity), except ``exclude_id``."""
        return self._session.scalars(
            select(Transaction)
            .where(
                Transaction.workspace_id == self.workspace_id,
                Transaction.created_at >= since,
                Transaction.id != exclude_id,
                Transaction.status.not_in(
                    [
                        TransactionStatus.BLOCKED,
                        TransactionStatus.REJECTED,
                        TransactionStatus.CANCELLED,
                        TransactionStatus.FAILED,
                        TransactionStatus.SUBMITTED,
                        TransactionStatus.PENDING_POLICY,
                    ]
                ),
            )
            .order_by(Transaction.created_at)
        ).all()

    def add_approval(self, row: Approval) -> bool:
        """Insert a statement unless this approver already gave one; ``False`` if so."""
        return insert_ignoring_conflict(
            self._session,
            Approval,
            {
                "id": row.id,
                "workspace_id": self.workspace_id,
                "transaction_id": row.transaction_id,
                "approver": row.approver,
                "decision": row.decision,
                "policy_version": row.policy_version,
                "signed_at": row.signed_at,
                "signature": row.signature,
                "api_key_id": row.api_key_id,
                "created_at": row.created_at,
            },
        )

    def approvals(self, transaction_id: str) -> Sequence[Approval]:
        return self._session.scalars(
            select(Approval)
            .where(
                Approval.workspace_id == self.workspace_id,
                Approval.transaction_id == transaction_id,
            )
            .order_by(Approval.created_at, Approval.id)
            .execution_options(populate_existing=True)
        ).all()


# Nonces.


class NonceLedger:
    """Account nonces per (chain, address), on the caller's session.

    Every operation first locks the account's counter row (created on first use), so
    concurrent allocations of one account run one at a time, on both backends, and the
    counter, the released set and the in-flight set always change together.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def _lock(self, chain: str, address: str) -> NonceCounter:
        # Locked until the transaction ends (observe then allocate lock it once).
        counters = transaction_scoped(self._session, "nonce_counters")
        counter = counters.get((chain, address))
        if counter is None:
            counter = counters[(chain, address)] = self._read_and_lock(chain, address)
        return counter

    def _read_and_lock(self, chain: str, address: str) -> NonceCounter:
        insert_ignoring_conflict(
            self._session,
            NonceCounter,
            {"chain": chain, "address": address, "next_nonce": 0, "updated_at": utcnow()},
        )
        counter = self._session.scalar(
            select(NonceCounter)
            .where(NonceCounter.chain == chain, NonceCounter.address == address)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert counter is not None  # inserted above or by a committed transaction
        return counter

    def _allocation(self, chain: str, address: str, nonce: int) -> NonceAllocation | None:
        return self._session.scalar(
            select(NonceAllocation)
            .where(
                NonceAllocation.chain == chain,
                NonceAllocation.address == address,
                NonceAllocation.nonce == nonce,
            )
            .execution_options(populate_existing=True)
        )

    def _held(self) -> dict[tuple[str, str, int], NonceAllocation | None]:
        # Allocations read (or made) under their account's lock in this transaction:
        # none can change under it, so a later settle of the same nonce needs no query.
        return transaction_scoped(self._session, "nonce_allocations")

    def prefetch(self, chain: str, address: str, nonces: Sequence[int]) -> None:
        """Lock the account and read the allocations of ``nonces`` in one query, for
        this transaction's later :meth:`settle` calls (a batch settles several)."""
        self._lock(chain, address)
        held = self._held()
        wanted = [n for n in dict.fromkeys(nonces) if (chain, address, n) not in held]
        if not wanted:
            return
        rows = self._session.scalars(
            select(NonceAllocation)
            .where(
                NonceAllocation.chain == chain,
                NonceAllocation.address == address,
                NonceAllocation.nonce.in_(wanted),
            )
            .execution_options(populate_existing=True)
        ).all()
        for nonce in wanted:
            held[(chain, address, nonce)] = None
        for row in rows:
            held[(chain, address, int(row.nonce))] = row

    def allocate(self, chain: str, address: str, max_nonce: int) -> int | None:
        """Reserve the lowest released nonce, else the next fresh one; ``None`` when the
        account's nonces are exhausted."""
        counter = self._lock(chain, address)
        # With the counter locked, no other transaction can release a nonce of the
        # address; one that found none released need not look again until it releases
        # one itself (a batch allocating several nonces of one address).
        none_released = transaction_scoped(self._session, "nonces_none_released")
        released = None
        if (chain, address) not in none_released:
            released = self._session.scalar(
                select(NonceAllocation)
                .where(
                    NonceAllocation.chain == chain,
                    NonceAllocation.address == address,
                    NonceAllocation.state == NonceState.RELEASED,
                )
                .order_by(NonceAllocation.nonce)
                .limit(1)
                .execution_options(populate_existing=True)
            )
        now = utcnow()
        if released is not None:
            released.state = NonceState.IN_FLIGHT
            released.updated_at = now
            self._held()[(chain, address, int(released.nonce))] = released
            flush_unless_deferred(self._session)
            return int(released.nonce)
        none_released[(chain, address)] = True
        nonce = int(counter.next_nonce)
        if nonce > max_nonce:
            return None
        counter.next_nonce = nonce + 1
        counter.updated_at = now
        # Not flushed here where writes are deferred (SQLite): with the counter locked no
        # other row can hold this nonce, and the commit writes a batch's together.
        allocation = NonceAllocation(
            chain=chain, address=address, nonce=nonce, state=NonceState.IN_FLIGHT, updated_at=now
        )
        self._session.add(allocation)
        self._held()[(chain, address, nonce)] = allocation
        flush_unless_deferred(self._session)
        return nonce

    def settle(self, chain: str, address: str, nonce: int, state: NonceState) -> bool:
        """Move an in-flight nonce to ``state``; ``False`` if it is not in flight."""
        self.prefetch(chain, address, [nonce])
        allocation = self._held()[(chain, address, nonce)]
        if allocation is None or allocation.state is not NonceState.IN_FLIGHT:
            return False
        allocation.state = state
        allocation.updated_at = utcnow()
        if state is NonceState.RELEASED:
            for name in ("nonces_none_released", "nonces_observed"):
                transaction_scoped(self._session, name).pop((chain, address), None)
        flush_unless_deferred(self._session)
        return True

    def state_of(self, chain: str, address: str, nonce: int) -> NonceState | None:
        allocation = self._allocation(chain, address, nonce)
        return None if allocation is None else allocation.state

    def observe(self, chain: str, address: str, pending_nonce: int) -> None:
        """Skip past nonces the chain already counts; drop released ones below it."""
        counter = self._lock(chain, address)
        if pending_nonce > counter.next_nonce:
            counter.next_nonce = pending_nonce
            counter.updated_at = utcnow()
        # Released nonces below a count this transaction already cleared are gone (the
        # counter is locked: only this transaction could release one, and it forgets
        # the count when it does).
        observed = transaction_scoped(self._session, "nonces_observed")
        if observed.get((chain, address), -1) >= pending_nonce:
            return
        observed[(chain, address)] = pending_nonce
        self._session.execute(
            delete(NonceAllocation).where(
                NonceAllocation.chain == chain,
                NonceAllocation.address == address,
                NonceAllocation.state == NonceState.RELEASED,
                NonceAllocation.nonce < pending_nonce,
            )
        )
        self._session.flush()


# The pipeline's work queue.

_WORK = cast(Table, PipelineWork.__table__)


class WorkQueue:
    """Due pipeline work, claimed under a lease (see :class:`PipelineWork`)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def enqueue(self, workspace_id: str, transaction_id: str, at: datetime | None = None) -> None:
        """Make ``transaction_id`` due at ``at`` (now by default), keeping a live lease."""
        when = at or utcnow()
        inserted = insert_ignoring_conflict(
            self._session,
            PipelineWork,
            {
                "transaction_id": transaction_id,
                "workspace_id": workspace_id,
                "available_at": when,
                "attempts": 0,
            },
        )
        if not inserted:
            self._session.execute(
                update(PipelineWork)
                .where(PipelineWork.transaction_id == transaction_id)
                .values(available_at=when)
            )

    def claim(self, worker: str, *, lease_s: float, limit: int = 1) -> list[PipelineWork]:
        """Claim up to ``limit`` due items for ``worker`` for ``lease_s`` seconds."""
        now = utcnow()
        query = (
            select(PipelineWork)
            .where(
                PipelineWork.available_at <= now,
                or_(PipelineWork.lease_until.is_(None), PipelineWork.lease_until < now),
            )
            .order_by(PipelineWork.available_at)
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        if self._session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = list(self._session.scalars(query).all())
        for row in rows:
            row.claimed_by = worker
            row.lease_until = now + timedelta(seconds=lease_s)
            row.attempts += 1
        self._session.flush()
        return rows

    def renew(self, transaction_ids: Sequence[str], worker: str, *, lease_s: float) -> int:
        """Extend ``worker``'s lease on the items it still holds to ``lease_s`` seconds
        from now (a step that takes longer than a lease, such as a signature whose quorum
        fails over, must not be claimed again meanwhile). Answers how many it holds."""
        if not transaction_ids:
            return 0
        work = _WORK.c
        result = self._session.execute(
            update(_WORK)
            .where(work.transaction_id.in_(list(transaction_ids)), work.claimed_by == worker)
            .values(lease_until=utcnow() + timedelta(seconds=lease_s))
        )
        return int(getattr(result, "rowcount", 0) or 0)

    # finish, remove and release are Core statements on the table, run without an
    # autoflush: they need none of the session's pending changes written first (the
    # queue's rows are only written by these statements, by enqueue's insert and by
    # claim, which flushes its own), and the transaction's last flush writes a batch's
    # changes together.

    def finish(self, transaction_id: str, worker: str) -> None:
        """Remove the item (its transaction needs no more steps) if ``worker`` holds it."""
        self.finish_many([transaction_id], worker)

    def finish_many(self, transaction_ids: Sequence[str], worker: str) -> None:
        """:meth:`finish` of several items in one statement."""
        if not transaction_ids:
            return
        work = _WORK.c
        with deferred_writes(self._session):
            self._session.execute(
                delete(_WORK).where(
                    work.transaction_id.in_(list(transaction_ids)),
                    or_(work.claimed_by == worker, work.claimed_by.is_(None)),
                )
            )

    def remove(self, transaction_id: str) -> None:
        """Remove the item whoever holds it."""
        with deferred_writes(self._session):
            self._session.execute(delete(_WORK).where(_WORK.c.transaction_id == transaction_id))

    def release(self, transaction_id: str, worker: str, at: datetime) -> None:
        """Give up ``worker``'s lease and make the item due again at ``at``."""
        work = _WORK.c
        with deferred_writes(self._session):
            self._session.execute(
                update(_WORK)
                .where(and_(work.transaction_id == transaction_id, work.claimed_by == worker))
                .values(available_at=at, claimed_by=None, lease_until=None)
            )

    def next_claimable(self) -> datetime | None:
        """When the earliest item can next be claimed (its ``available_at``, or the end of
        a live lease if later); ``None`` for an empty queue. A read: it takes no lock."""
        work = _WORK.c
        ready = case(
            (
                and_(work.lease_until.is_not(None), work.lease_until > work.available_at),
                work.lease_until,
            ),
            else_=work.available_at,
        )
        at: datetime | None = self._session.scalar(select(func.min(ready, type_=UTCDateTime())))
        return at

    def due(self) -> int:
        """How many items are due now (claimed ones included)."""
        return int(
            self._session.scalar(
                select(func.count())
                .select_from(PipelineWork)
                .where(PipelineWork.available_at <= utcnow())
            )
            or 0
        )
