"""Replacements of sent transactions: a fee bump or a cancel of the same nonce (coins).

Revision ID: 0010_transaction_replacements
Revises: 0009_evm_networks
Create Date: 2026-12-07 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shardvault.store.types import UTCDateTime

revision: str = "0010_transaction_replacements"
down_revision: str | None = "0009_evm_networks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transaction_replacements",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column(
            "workspace_id", sa.String(length=36), sa.ForeignKey("workspaces.id"), nullable=False
        ),
        sa.Column("transaction_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=500), nullable=True),
        sa.Column("requested_by", sa.String(length=36), nullable=False),
        sa.Column("replaces_tx_hash", sa.String(length=128), nullable=False),
        sa.Column("chain_payload", sa.Text(), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=True),
        sa.Column("signature", sa.String(length=260), nullable=True),
        sa.Column("signed_payload", sa.Text(), nullable=True),
        sa.Column("tx_hash", sa.String(length=128), nullable=True),
        sa.Column("fee", sa.Text(), nullable=True),
        sa.Column("signing_attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("transaction_id", "seq"),
        sa.ForeignKeyConstraint(
            ["workspace_id", "transaction_id"], ["transactions.workspace_id", "transactions.id"]
        ),
    )
    op.create_index(
        "ix_transaction_replacements_workspace_id", "transaction_replacements", ["workspace_id"]
    )
    op.create_index(
        "ix_transaction_replacements_transaction_id",
        "transaction_replacements",
        ["transaction_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_transaction_replacements_transaction_id", "transaction_replacements")
    op.drop_index("ix_transaction_replacements_workspace_id", "transaction_replacements")
    op.drop_table("transaction_replacements")
