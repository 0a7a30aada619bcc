"""The custody domain's tables: networks and assets, vaults and their keys, wallets and
addresses, the address book, policy versions, transactions and approvals, nonces and the
pipeline's work queue.

Tenancy follows :mod:`shardvault.store.models`: every tenant row carries ``workspace_id``,
has a ``(workspace_id, id)`` unique key, and points at its parents through composite
foreign keys that include ``workspace_id``, so the database itself refuses a link across
workspaces. Two tables are not tenant rows: ``nonce_counters``/``nonce_allocations``
(an account nonce belongs to a (chain, address) pair, which exists once on the chain
whatever the workspace) and ``pipeline_work`` carries the workspace only for routing.

Transactions carry a ``version`` column used for optimistic concurrency (SQLAlchemy's
``version_id_col``): an update that lost a race raises ``StaleDataError`` instead of
overwriting another step's state.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shardvault.lifecycle import TERMINAL
from shardvault.lifecycle import TransactionStatus as TransactionStatus
from shardvault.store.models import Base, _enum, new_id
from shardvault.store.types import UTCDateTime, utcnow


class NetworkKind(enum.StrEnum):
    """The chain family a network belongs to."""

    EVM = "evm"
    BITCOIN = "bitcoin"
    SOLANA = "solana"


class AssetKind(enum.StrEnum):
    """How an asset moves: the network's native coin or an ERC-20 token contract."""

    NATIVE = "native"
    ERC20 = "erc20"


class CustodyMode(enum.StrEnum):
    """Where a vault's keys live (DESIGN.md, custody modes); only ``mpc`` exists today."""

    MPC = "mpc"


TERMINAL_STATUSES = TERMINAL
"""States a transaction never leaves (owned by :mod:`shardvault.lifecycle`)."""


class PolicyStatus(enum.StrEnum):
    """The life of a policy version: written, proposed as a bundle, in force, replaced."""

    DRAFT = "draft"
    PROPOSED = "proposed"
    ACTIVE = "active"
    SUPERSEDED = "superseded"


class NonceState(enum.StrEnum):
    """An allocated nonce is in flight until it is confirmed (spent) or released."""

    IN_FLIGHT = "in_flight"
    RELEASED = "released"
    CONFIRMED = "confirmed"


class EvmFeeModel(enum.StrEnum):
    """How an EVM network prices gas: EIP-1559 fee caps, or a legacy gas price."""

    EIP1559 = "eip1559"
    LEGACY = "legacy"


class Network(Base):
    """A chain the workspace uses: an EVM chain (by chain id), Bitcoin or Solana.

    ``rpc_url`` is the node the pipeline asks first; ``fallback_rpc_urls`` (a JSON list)
    those it tries next, in order, when a node cannot be reached; ``broadcast_url``, if
    set, the one endpoint that receives signed EVM transactions (a private relay, so
    they reach no public mempool first). ``native_symbol`` names an EVM chain's native
    coin (``NULL`` in rows made before it existed: the well-known table's).
    """

    __tablename__ = "networks"
    __table_args__ = (
        UniqueConstraint("workspace_id", "id"),
        UniqueConstraint("workspace_id", "name"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[NetworkKind] = mapped_column(_enum(NetworkKind, "network_kind"))
    chain_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    coin_type: Mapped[int] = mapped_column(Integer)
    rpc_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    required_confirmations: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    fallback_rpc_urls: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    broadcast_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    native_symbol: Mapped[str | None] = mapped_column(String(32), default=None)
    fee_model: Mapped[str] = mapped_column(
        String(16), default=EvmFeeModel.EIP1559.value, server_default=EvmFeeModel.EIP1559.value
    )


class Asset(Base):
    """Something a wallet holds: a network's native coin or an ERC-20 token on it.

    One asset per (network, contract) and one native coin per network: a second row
    for either would let a price or a symbol be read from the wrong one.
    """

    __tablename__ = "assets"
    __table_args__ = (
        UniqueConstraint("workspace_id", "id"),
        UniqueConstraint("workspace_id", "symbol"),
        Index(
            "uq_assets_workspace_id_network_id_contract",
            "workspace_id",
            "network_id",
            "contract",
            unique=True,
        ),
        Index(
            "uq_assets_native_per_network",
            "workspace_id",
            "network_id",
            unique=True,
            sqlite_where=text("kind = 'native'"),
            postgresql_where=text("kind = 'native'"),
        ),
        ForeignKeyConstraint(
            ["workspace_id", "network_id"], ["networks.workspace_id", "networks.id"]
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    network_id: Mapped[str] = mapped_column(String(36))
    symbol: Mapped[str] = mapped_column(String(32))
    kind: Mapped[AssetKind] = mapped_column(_enum(AssetKind, "asset_kind"))
    contract: Mapped[str | None] = mapped_column(String(128), default=None)
    decimals: Mapped[int] = mapped_column(Integer)
    price: Mapped[str | None] = mapped_column(String(80), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Vault(Base):
    """A set of keys under one custody mode; ``number`` is its BIP44 account index."""

    __tablename__ = "vaults"
    __table_args__ = (
        UniqueConstraint("workspace_id", "id"),
        UniqueConstraint("workspace_id", "name"),
        UniqueConstraint("workspace_id", "number"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    number: Mapped[int] = mapped_column(Integer)
    custody_mode: Mapped[CustodyMode] = mapped_column(_enum(CustodyMode, "custody_mode"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class VaultKey(Base):
    """One scheme's root key of a vault, from its DKG: public key, chain code, quorum.

    ``backend_key_id`` names the key in the signing backend (where the shares live);
    ``cosigners`` is the JSON list of co-signer (party) ids that hold a share.
    """

    __tablename__ = "vault_keys"
    __table_args__ = (
        UniqueConstraint("workspace_id", "id"),
        UniqueConstraint("vault_id", "scheme"),
        ForeignKeyConstraint(["workspace_id", "vault_id"], ["vaults.workspace_id", "vaults.id"]),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    vault_id: Mapped[str] = mapped_column(String(36))
    scheme: Mapped[str] = mapped_column(String(32))
    public_key: Mapped[str] = mapped_column(String(130))
    chain_code: Mapped[str] = mapped_column(String(64))
    min_signers: Mapped[int] = mapped_column(Integer)
    max_signers: Mapped[int] = mapped_column(Integer)
    cosigners: Mapped[str] = mapped_column(Text)
    backend: Mapped[str] = mapped_column(String(64))
    backend_key_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Wallet(Base):
    """A vault's holding of one asset; its addresses are numbered from 0."""

    __tablename__ = "wallets"
    __table_args__ = (
        UniqueConstraint("workspace_id", "id"),
        UniqueConstraint("vault_id", "asset_id"),
        ForeignKeyConstraint(["workspace_id", "vault_id"], ["vaults.workspace_id", "vaults.id"]),
        ForeignKeyConstraint(["workspace_id", "asset_id"], ["assets.workspace_id", "assets.id"]),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    vault_id: Mapped[str] = mapped_column(String(36))
    asset_id: Mapped[str] = mapped_column(String(36))
    next_index: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WalletAddress(Base):
    """An address derived for a wallet at ``m/44/<coin>/<vault number>/0/<index>``."""

    __tablename__ = "addresses"
    __table_args__ = (
        UniqueConstraint("workspace_id", "id"),
        UniqueConstraint("wallet_id", "index"),
        ForeignKeyConstraint(["workspace_id", "wallet_id"], ["wallets.workspace_id", "wallets.id"]),
        Index("ix_addresses_workspace_address", "workspace_id", "address"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    wallet_id: Mapped[str] = mapped_column(String(36))
    index: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(128))
    scheme: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(128))
    public_key: Mapped[str] = mapped_column(String(130))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AddressBookEntry(Base):
    """A named counterparty address; ``whitelists`` is a JSON list of whitelist names."""

    __tablename__ = "address_book_entries"
    __table_args__ = (
        UniqueConstraint("workspace_id", "id"),
        UniqueConstraint("workspace_id", "name"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    network: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(128))
    whitelists: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PolicyVersion(Base):
    """A policy document through its life: draft, proposed bundle, active, superseded.

    ``document`` is the canonical policy JSON; once proposed, ``bundle`` holds the bundle's
    transport form (payload and the admins' signatures so far) and ``bundle_hash`` its hash.
    """

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("workspace_id", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[PolicyStatus] = mapped_column(_enum(PolicyStatus, "policy_status"))
    document: Mapped[str] = mapped_column(Text)
    address_book: Mapped[str | None] = mapped_column(Text, default=None)
    admins: Mapped[str | None] = mapped_column(Text, default=None)
    bundle: Mapped[str | None] = mapped_column(Text, default=None)
    bundle_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class PolicyChainState(Base):
    """Per workspace: the admin set pinned when the first bundle was proposed."""

    __tablename__ = "policy_chains"

    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    pinned_admins: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Transaction(Base):
    """A transfer request and everything the pipeline learned and did for it."""

    __tablename__ = "transactions"
    __table_args__ = (
        UniqueConstraint("workspace_id", "id"),
        ForeignKeyConstraint(["workspace_id", "vault_id"], ["vaults.workspace_id", "vaults.id"]),
        ForeignKeyConstraint(["workspace_id", "wallet_id"], ["wallets.workspace_id", "wallets.id"]),
        ForeignKeyConstraint(
            ["workspace_id", "source_address_id"], ["addresses.workspace_id", "addresses.id"]
        ),
        Index("ix_transactions_workspace_created", "workspace_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    vault_id: Mapped[str] = mapped_column(String(36))
    wallet_id: Mapped[str] = mapped_column(String(36))
    source_address_id: Mapped[str] = mapped_column(String(36))
    operation: Mapped[str] = mapped_column(String(32))
    destination: Mapped[str] = mapped_column(String(128))
    amount: Mapped[str] = mapped_column(String(80))
    amount_base_units: Mapped[str] = mapped_column(String(80))
    note: Mapped[str | None] = mapped_column(String(500), default=None)
    initiator_user_id: Mapped[str] = mapped_column(String(36))
    initiator_api_key_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[TransactionStatus] = mapped_column(
        _enum(TransactionStatus, "transaction_status")
    )
    status_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    policy_version: Mapped[int | None] = mapped_column(Integer, default=None)
    policy_rule: Mapped[str | None] = mapped_column(String(128), default=None)
    policy_evaluation: Mapped[str | None] = mapped_column(Text, default=None)
    approval_deadline: Mapped[int | None] = mapped_column(BigInteger, default=None)
    intent_digest: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[int | None] = mapped_column(BigInteger, default=None)
    chain_payload: Mapped[str | None] = mapped_column(Text, default=None)
    digest: Mapped[str | None] = mapped_column(String(64), default=None)
    signature: Mapped[str | None] = mapped_column(String(260), default=None)
    signed_payload: Mapped[str | None] = mapped_column(Text, default=None)
    tx_hash: Mapped[str | None] = mapped_column(String(128), default=None)
    confirmations: Mapped[int] = mapped_column(Integer, default=0)
    block_number: Mapped[int | None] = mapped_column(BigInteger, default=None)
    signing_attempts: Mapped[int] = mapped_column(Integer, default=0)
    broadcast_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class Replacement(Base):
    """A replacement of a sent transaction (:mod:`shardvault.lifecycle.replacements`):
    the same nonce or coins signed again with a higher fee, or as a cancel."""

    __tablename__ = "transaction_replacements"
    __table_args__ = (
        UniqueConstraint("transaction_id", "seq"),
        ForeignKeyConstraint(
            ["workspace_id", "transaction_id"], ["transactions.workspace_id", "transactions.id"]
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    transaction_id: Mapped[str] = mapped_column(String(36), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    requested_by: Mapped[str] = mapped_column(String(36))
    replaces_tx_hash: Mapped[str] = mapped_column(String(128))
    """The hash of the version this one was built to replace (the newest sent then)."""
    chain_payload: Mapped[str | None] = mapped_column(Text, default=None)
    digest: Mapped[str | None] = mapped_column(String(64), default=None)
    signature: Mapped[str | None] = mapped_column(String(260), default=None)
    signed_payload: Mapped[str | None] = mapped_column(Text, default=None)
    tx_hash: Mapped[str | None] = mapped_column(String(128), default=None)
    fee: Mapped[str | None] = mapped_column(Text, default=None)
    """JSON of the fee it pays (EVM fee caps in wei, or Bitcoin's fee in sat)."""
    signing_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Approval(Base):
    """One approver's signed statement about a transaction (approve or reject)."""

    __tablename__ = "approvals"
    __table_args__ = (
        UniqueConstraint("workspace_id", "id"),
        UniqueConstraint("transaction_id", "approver"),
        ForeignKeyConstraint(
            ["workspace_id", "transaction_id"], ["transactions.workspace_id", "transactions.id"]
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    transaction_id: Mapped[str] = mapped_column(String(36))
    approver: Mapped[str] = mapped_column(String(128))
    decision: Mapped[str] = mapped_column(String(16))
    policy_version: Mapped[int] = mapped_column(Integer)
    signed_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """The statement's signed time (Unix seconds, the approver's clock); ``None`` for a
    format v1 statement (stored before migration 0005), which counts nowhere."""
    signature: Mapped[str] = mapped_column(String(260))
    api_key_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NonceCounter(Base):
    """The next fresh nonce of one (chain, address); allocators lock this row."""

    __tablename__ = "nonce_counters"

    chain: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(128), primary_key=True)
    next_nonce: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NonceAllocation(Base):
    """One handed-out nonce and where it stands (in flight, released or confirmed)."""

    __tablename__ = "nonce_allocations"

    chain: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(128), primary_key=True)
    nonce: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    state: Mapped[NonceState] = mapped_column(_enum(NonceState, "nonce_state"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PipelineWork(Base):
    """A transaction waiting for the pipeline's next step.

    A worker claims a due row (``available_at`` passed, no live lease) with ``FOR UPDATE
    SKIP LOCKED`` on PostgreSQL (``BEGIN IMMEDIATE`` serializes claimers on SQLite), sets
    a lease, commits, and runs the step. A worker that dies leaves its lease to expire,
    after which another worker claims the row and resumes from the persisted state.
    """

    __tablename__ = "pipeline_work"

    transaction_id: Mapped[str] = mapped_column(ForeignKey("transactions.id"), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    available_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
