"""Vault creations: a vault request's key generations as a persisted job.

Revision ID: 0011_vault_creations
Revises: 0010_transaction_replacements
Create Date: 2026-12-10 10:00:00

Vaults created before this revision have no row here (their requests ran inside the
HTTP request); nothing is back-filled.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shardvault.store.types

revision: str = "0011_vault_creations"
down_revision: str | None = "0010_transaction_replacements"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vault_creations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("vault_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("schemes", sa.Text(), nullable=False),
        sa.Column("min_signers", sa.Integer(), nullable=False),
        sa.Column("max_signers", sa.Integer(), nullable=False),
        sa.Column("initiator", sa.String(length=320), nullable=False),
        sa.Column("api_key_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", shardvault.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", shardvault.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_vault_creations_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vault_creations")),
        sa.UniqueConstraint("workspace_id", "id", name=op.f("uq_vault_creations_workspace_id_id")),
        sa.UniqueConstraint(
            "workspace_id",
            "idempotency_key",
            name=op.f("uq_vault_creations_workspace_id_idempotency_key"),
        ),
    )
    with op.batch_alter_table("vault_creations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_vault_creations_workspace_id"), ["workspace_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_vault_creations_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("vault_creations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vault_creations_state"))
        batch_op.drop_index(batch_op.f("ix_vault_creations_workspace_id"))
    op.drop_table("vault_creations")
