"""Assets unique per network and contract, one native asset per network; signed price
reports.

Revision ID: 0008_asset_registry
Revises: 0007_initiator_requests
Create Date: 2026-12-08 10:00:00

A workspace that already holds two assets of one contract, or two native assets of one
network, cannot take the new constraints: the upgrade stops and names them, so an admin
removes one (the one a policy should not be valued at) and runs it again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shardvault.store.types

revision: str = "0008_asset_registry"
down_revision: str | None = "0007_initiator_requests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _refuse_duplicates() -> None:
    duplicates = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT workspace_id, network_id, COALESCE(contract, '(native)') AS what "
                "FROM assets GROUP BY workspace_id, network_id, COALESCE(contract, '(native)') "
                "HAVING COUNT(*) > 1"
            )
        )
        .all()
    )
    if duplicates:
        listed = "; ".join(f"workspace {w}, network {n}: {c}" for w, n, c in duplicates)
        raise RuntimeError(
            f"assets must be unique per network and contract (one native per network): {listed}"
        )


def upgrade() -> None:
    _refuse_duplicates()
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.create_index(
            "uq_assets_native_per_network",
            ["workspace_id", "network_id"],
            unique=True,
            sqlite_where=sa.text("kind = 'native'"),
            postgresql_where=sa.text("kind = 'native'"),
        )
        # Unique indexes, not constraints: SQLite adds an index in place, where a
        # constraint would recreate the table that transactions reference.
        batch_op.create_index(
            "uq_assets_workspace_id_network_id_contract",
            ["workspace_id", "network_id", "contract"],
            unique=True,
        )
    op.create_table(
        "price_reports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("asset", sa.String(length=64), nullable=False),
        sa.Column("signer", sa.String(length=64), nullable=False),
        sa.Column("price", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=64), nullable=False),
        sa.Column("observed_at", sa.BigInteger(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("received_at", shardvault.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_price_reports_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_reports")),
        sa.UniqueConstraint("workspace_id", "id", name=op.f("uq_price_reports_workspace_id_id")),
        sa.UniqueConstraint(
            "workspace_id",
            "network",
            "asset",
            "signer",
            name=op.f("uq_price_reports_workspace_id_network_asset_signer"),
        ),
    )
    with op.batch_alter_table("price_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_price_reports_workspace_id"), ["workspace_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("price_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_price_reports_workspace_id"))
    op.drop_table("price_reports")
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_index("uq_assets_workspace_id_network_id_contract")
        batch_op.drop_index(
            "uq_assets_native_per_network",
            sqlite_where=sa.text("kind = 'native'"),
            postgresql_where=sa.text("kind = 'native'"),
        )
