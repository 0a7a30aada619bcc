"""Approval statements v2: the signed time each approval's lifetime counts from.

Statements stored before (format v1) keep ``signed_at`` NULL: they no longer count, and
the approvers of transactions still waiting sign again.

Revision ID: 0005_approval_signed_at
Revises: 0004_paired_cosigners
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_approval_signed_at"
down_revision: str | None = "0004_paired_cosigners"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signed_at", sa.BigInteger(), nullable=True))
    # A v1 statement of a transaction still waiting for approvals no longer counts, and
    # the one row per (transaction, approver) would refuse its approver's new statement.
    op.execute(
        "DELETE FROM approvals WHERE transaction_id IN "
        "(SELECT id FROM transactions WHERE status = 'pending_approval')"
    )


def downgrade() -> None:
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.drop_column("signed_at")
