"""Custody domain: networks, assets, vaults and keys, wallets, addresses, address book,
policy versions, transactions, approvals, nonces and the pipeline work queue.

Revision ID: 0002_vaults_transactions
Revises: 0001
Create Date: 2026-11-25 14:04:24.612149
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shardvault.store.types

revision: str = "0002_vaults_transactions"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "nonce_allocations",
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=128), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "in_flight",
                "released",
                "confirmed",
                name="nonce_state",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("updated_at", shardvault.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain", "address", "nonce", name=op.f("pk_nonce_allocations")),
    )
    op.create_table(
        "nonce_counters",
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=128), nullable=False),
        sa.Column("next_nonce", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", shardvault.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain", "address", name=op.f("pk_nonce_counters")),
    )
    op.create_table(
        "address_book_entries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=128), nullable=False),
        sa.Column("whitelists", sa.Text(), nullable=False),
        sa.Column("created_at", shardvault.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_address_book_entries_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_address_book_entries")),
        sa.UniqueConstraint(
            "workspace_id", "id", name=op.f("uq_address_book_entries_workspace_id_id")
        ),
        sa.UniqueConstraint(
            "workspace_id", "name", name=op.f("uq_address_book_entries_workspace_id_name")
        ),
    )
    with op.batch_alter_table("address_book_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_address_book_entries_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "networks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "evm",
                "bitcoin",
                "solana",
                name="network_kind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("chain_id", sa.BigInteger(), nullable=True),
        sa.Column("coin_type", sa.Integer(), nullable=False),
        sa.Column("rpc_url", sa.String(length=2048), nullable=True),
        sa.Column("required_confirmations", sa.Integer(), nullable=False),
        sa.Column("created_at", shardvault.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_networks_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_networks")),
        sa.UniqueConstraint("workspace_id", "id", name=op.f("uq_networks_workspace_id_id")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_networks_workspace_id_name")),
    )
    with op.batch_alter_table("networks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_networks_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "policy_chains",
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("pinned_admins", sa.Text(), nullable=False),
        sa.Column("created_at", shardvault.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_policy_chains_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_policy_chains")),
    )
    op.create_table(
        "policy_versions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "proposed",
                "active",
                "superseded",
                name="policy_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("address_book", sa.Text(), nullable=True),
        sa.Column("admins", sa.Text(), nullable=True),
        sa.Column("bundle", sa.Text(), nullable=True),
        sa.Column("bundle_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", shardvault.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("activated_at", shardvault.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_policy_versions_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_versions")),
        sa.UniqueConstraint("workspace_id", "id", name=op.f("uq_policy_versions_workspace_id_id")),
    )
    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_policy_versions_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "vaults",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column(
            "custody_mode",
            sa.Enum(
                "mpc", name="custody_mode", native_enum=False, create_constraint=True, length=16
            ),
            nullable=False,
        ),
        sa.Column("created_at", shardvault.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_vaults_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vaults")),
        sa.UniqueConstraint("workspace_id", "id", name=op.f("uq_vaults_workspace_id_id")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_vaults_workspace_id_name")),
        sa.UniqueConstraint("workspace_id", "number", name=op.f("uq_vaults_workspace_id_number")),
    )
    with op.batch_alter_table("vaults", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vaults_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "assets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "native",
                "erc20",
                name="asset_kind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("contract", sa.String(length=128), nullable=True),
        sa.Column("decimals", sa.Integer(), nullable=False),
        sa.Column("price", sa.String(length=80), nullable=True),
        sa.Column("created_at", shardvault.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "network_id"],
            ["networks.workspace_id", "networks.id"],
            name=op.f("fk_assets_workspace_id_network_id_networks"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_assets_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assets")),
        sa.UniqueConstraint("workspace_id", "id", name=op.f("uq_assets_workspace_id_id")),
        sa.UniqueConstraint("workspace_id", "symbol", name=op.f("uq_assets_workspace_id_symbol")),
    )
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assets_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "vault_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("vault_id", sa.String(length=36), nullable=False),
        sa.Column("scheme", sa.String(length=32), nullable=False),
        sa.Column("public_key", sa.String(length=130), nullable=False),
        sa.Column("chain_code", sa.String(length=64), nullable=False),
        sa.Column("min_signers", sa.Integer(), nullable=False),
        sa.Column("max_signers", sa.Integer(), nullable=False),
        sa.Column("cosigners", sa.Text(), nullable=False),
        sa.Column("backend", sa.String(length=64), nullable=False),
        sa.Column("backend_key_id", sa.String(length=128), nullable=False),
        sa.Column("created_at", shardvault.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "vault_id"],
            ["vaults.workspace_id", "vaults.id"],
            name=op.f("fk_vault_keys_workspace_id_vault_id_vaults"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_vault_keys_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vault_keys")),
        sa.UniqueConstraint("vault_id", "scheme", name=op.f("uq_vault_keys_vault_id_scheme")),
        sa.UniqueConstraint("workspace_id", "id", name=op.f("uq_vault_keys_workspace_id_id")),
    )
    with op.batch_alter_table("vault_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_vault_keys_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "wallets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("vault_id", sa.String(length=36), nullable=False),
        sa.Column("asset_id", sa.String(length=36), nullable=False),
        sa.Column("next_index", sa.Integer(), nullable=False),
        sa.Column("created_at", shardvault.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "asset_id"],
            ["assets.workspace_id", "assets.id"],
            name=op.f("fk_wallets_workspace_id_asset_id_assets"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "vault_id"],
            ["vaults.workspace_id", "vaults.id"],
            name=op.f("fk_wallets_workspace_id_vault_id_vaults"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_wallets_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallets")),
        sa.UniqueConstraint("vault_id", "asset_id", name=op.f("uq_wallets_vault_id_asset_id")),
        sa.UniqueConstraint("workspace_id", "id", name=op.f("uq_wallets_workspace_id_id")),
    )
    with op.batch_alter_table("wallets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wallets_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "addresses",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("wallet_id", sa.String(length=36), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=128), nullable=False),
        sa.Column("scheme", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=128), nullable=False),
        sa.Column("public_key", sa.String(length=130), nullable=False),
        sa.Column("created_at", shardvault.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "wallet_id"],
            ["wallets.workspace_id", "wallets.id"],
            name=op.f("fk_addresses_workspace_id_wallet_id_wallets"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_addresses_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_addresses")),
        sa.UniqueConstraint("wallet_id", "index", name=op.f("uq_addresses_wallet_id_index")),
        sa.UniqueConstraint("workspace_id", "id", name=op.f("uq_addresses_workspace_id_id")),
    )
    with op.batch_alter_table("addresses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_addresses_workspace_address", ["workspace_id", "address"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_addresses_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "transactions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("vault_id", sa.String(length=36), nullable=False),
        sa.Column("wallet_id", sa.String(length=36), nullable=False),
        sa.Column("source_address_id", sa.String(length=36), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("destination", sa.String(length=128), nullable=False),
        sa.Column("amount", sa.String(length=80), nullable=False),
        sa.Column("amount_base_units", sa.String(length=80), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("initiator_user_id", sa.String(length=36), nullable=False),
        sa.Column("initiator_api_key_id", sa.String(length=36), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "submitted",
                "pending_policy",
                "pending_approval",
                "approved",
                "signing",
                "signed",
                "broadcasting",
                "confirming",
                "completed",
                "failed",
                "rejected",
                "blocked",
                "cancelled",
                name="transaction_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("status_reason", sa.String(length=500), nullable=True),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("policy_rule", sa.String(length=128), nullable=True),
        sa.Column("policy_evaluation", sa.Text(), nullable=True),
        sa.Column("approval_deadline", sa.BigInteger(), nullable=True),
        sa.Column("intent_digest", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("chain_payload", sa.Text(), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=True),
        sa.Column("signature", sa.String(length=260), nullable=True),
        sa.Column("signed_payload", sa.Text(), nullable=True),
        sa.Column("tx_hash", sa.String(length=128), nullable=True),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("signing_attempts", sa.Integer(), nullable=False),
        sa.Column("broadcast_attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", shardvault.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shardvault.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", shardvault.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "source_address_id"],
            ["addresses.workspace_id", "addresses.id"],
            name=op.f("fk_transactions_workspace_id_source_address_id_addresses"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "vault_id"],
            ["vaults.workspace_id", "vaults.id"],
            name=op.f("fk_transactions_workspace_id_vault_id_vaults"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "wallet_id"],
            ["wallets.workspace_id", "wallets.id"],
            name=op.f("fk_transactions_workspace_id_wallet_id_wallets"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_transactions_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.UniqueConstraint("workspace_id", "id", name=op.f("uq_transactions_workspace_id_id")),
    )
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_transactions_workspace_created", ["workspace_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_transactions_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "approvals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("transaction_id", sa.String(length=36), nullable=False),
        sa.Column("approver", sa.String(length=128), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("signature", sa.String(length=260), nullable=False),
        sa.Column("api_key_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", shardvault.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "transaction_id"],
            ["transactions.workspace_id", "transactions.id"],
            name=op.f("fk_approvals_workspace_id_transaction_id_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_approvals_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
        sa.UniqueConstraint(
            "transaction_id", "approver", name=op.f("uq_approvals_transaction_id_approver")
        ),
        sa.UniqueConstraint("workspace_id", "id", name=op.f("uq_approvals_workspace_id_id")),
    )
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_approvals_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "pipeline_work",
        sa.Column("transaction_id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column(
            "available_at", shardvault.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("lease_until", shardvault.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_pipeline_work_transaction_id_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_pipeline_work_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("transaction_id", name=op.f("pk_pipeline_work")),
    )
    with op.batch_alter_table("pipeline_work", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pipeline_work_available_at"), ["available_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("pipeline_work", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pipeline_work_available_at"))

    op.drop_table("pipeline_work")
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approvals_workspace_id"))

    op.drop_table("approvals")
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transactions_workspace_id"))
        batch_op.drop_index("ix_transactions_workspace_created")

    op.drop_table("transactions")
    with op.batch_alter_table("addresses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_addresses_workspace_id"))
        batch_op.drop_index("ix_addresses_workspace_address")

    op.drop_table("addresses")
    with op.batch_alter_table("wallets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wallets_workspace_id"))

    op.drop_table("wallets")
    with op.batch_alter_table("vault_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vault_keys_workspace_id"))

    op.drop_table("vault_keys")
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assets_workspace_id"))

    op.drop_table("assets")
    with op.batch_alter_table("vaults", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vaults_workspace_id"))

    op.drop_table("vaults")
    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_versions_workspace_id"))

    op.drop_table("policy_versions")
    op.drop_table("policy_chains")
    with op.batch_alter_table("networks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_networks_workspace_id"))

    op.drop_table("networks")
    with op.batch_alter_table("address_book_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_address_book_entries_workspace_id"))

    op.drop_table("address_book_entries")
    op.drop_table("nonce_counters")
    op.drop_table("nonce_allocations")
