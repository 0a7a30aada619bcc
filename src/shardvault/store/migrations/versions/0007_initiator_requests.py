"""The initiator's own signed create request, kept with its transaction.

Revision ID: 0007_initiator_requests
Revises: 0006_address_attestations
Create Date: 2026-12-07 14:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shardvault.store.types

revision: str = "0007_initiator_requests"
down_revision: str | None = "0006_address_attestations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "initiator_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("transaction_id", sa.String(length=36), nullable=False),
        sa.Column("api_key_id", sa.String(length=64), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", shardvault.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "transaction_id"],
            ["transactions.workspace_id", "transactions.id"],
            name=op.f("fk_initiator_requests_workspace_id_transaction_id_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_initiator_requests_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_initiator_requests")),
        sa.UniqueConstraint(
            "workspace_id",
            "transaction_id",
            name=op.f("uq_initiator_requests_workspace_id_transaction_id"),
        ),
    )
    with op.batch_alter_table("initiator_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_initiator_requests_workspace_id"), ["workspace_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("initiator_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_initiator_requests_workspace_id"))

    op.drop_table("initiator_requests")
