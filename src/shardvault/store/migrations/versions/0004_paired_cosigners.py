"""Remote co-signers: pairing records and one-time pairing tokens.

Revision ID: 0004_paired_cosigners
Revises: 0003_webhooks
Create Date: 2026-12-07 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shardvault.store.types

revision: str = "0004_paired_cosigners"
down_revision: str | None = "0003_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "paired_cosigners",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("party", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("signing_key", sa.String(length=64), nullable=False),
        sa.Column("encryption_key", sa.String(length=64), nullable=False),
        sa.Column("binding", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("paired_at", shardvault.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_paired_cosigners_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paired_cosigners")),
        sa.UniqueConstraint("workspace_id", "id", name=op.f("uq_paired_cosigners_workspace_id_id")),
        sa.UniqueConstraint(
            "workspace_id", "party", name=op.f("uq_paired_cosigners_workspace_id_party")
        ),
        sa.UniqueConstraint(
            "workspace_id",
            "signing_key",
            name=op.f("uq_paired_cosigners_workspace_id_signing_key"),
        ),
    )
    with op.batch_alter_table("paired_cosigners", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_paired_cosigners_workspace_id"), ["workspace_id"], unique=False
        )
    op.create_table(
        "cosigner_pairing_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("party", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", shardvault.store.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", shardvault.store.types.UTCDateTime(), nullable=False),
        sa.Column("used_at", shardvault.store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_cosigner_pairing_tokens_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cosigner_pairing_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_cosigner_pairing_tokens_token_hash")),
    )
    with op.batch_alter_table("cosigner_pairing_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cosigner_pairing_tokens_workspace_id"), ["workspace_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("cosigner_pairing_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cosigner_pairing_tokens_workspace_id"))
    op.drop_table("cosigner_pairing_tokens")
    with op.batch_alter_table("paired_cosigners", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_paired_cosigners_workspace_id"))
    op.drop_table("paired_cosigners")
