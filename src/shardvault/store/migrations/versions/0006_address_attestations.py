"""Address attestations: each co-signer's signed statement about a wallet address.

Revision ID: 0006_address_attestations
Revises: 0005_approval_signed_at
Create Date: 2026-12-09 10:00:00

Addresses made before this revision have no attestation until they are attested again
(``POST /v1/wallets/{id}/addresses/{address_id}/attest``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shardvault.store.types

revision: str = "0006_address_attestations"
down_revision: str | None = "0005_approval_signed_at"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "address_attestations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("address_id", sa.String(length=36), nullable=False),
        sa.Column("party", sa.Integer(), nullable=False),
        sa.Column("signing_key", sa.String(length=64), nullable=False),
        sa.Column("encryption_key", sa.String(length=64), nullable=False),
        sa.Column("binding", sa.String(length=128), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("attested_at", shardvault.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "address_id"],
            ["addresses.workspace_id", "addresses.id"],
            name=op.f("fk_address_attestations_workspace_id_address_id_addresses"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_address_attestations_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_address_attestations")),
        sa.UniqueConstraint(
            "address_id", "party", name=op.f("uq_address_attestations_address_id_party")
        ),
        sa.UniqueConstraint(
            "workspace_id", "id", name=op.f("uq_address_attestations_workspace_id_id")
        ),
    )
    with op.batch_alter_table("address_attestations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_address_attestations_workspace_id"), ["workspace_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("address_attestations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_address_attestations_workspace_id"))
    op.drop_table("address_attestations")
