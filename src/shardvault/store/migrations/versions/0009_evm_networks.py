"""EVM networks as data: fallback RPC URLs, a private broadcast URL, the native coin's
symbol and the fee model of each network.

Revision ID: 0009_evm_networks
Revises: 0008_asset_registry
Create Date: 2026-12-09 10:00:00

Existing networks keep their one ``rpc_url`` (no fallback, no broadcast URL), take the
EIP-1559 fee model (the only one the pipeline builds) and leave ``native_symbol`` NULL,
which reads as the well-known table's symbol of their chain id.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_evm_networks"
down_revision: str | None = "0008_asset_registry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Columns are added and dropped in place (ALTER TABLE, which SQLite 3.35 and later
# does for both), never by the batch mode's copy of the table: assets reference
# networks, and dropping the old table under them fails their foreign keys.


def upgrade() -> None:
    op.add_column(
        "networks", sa.Column("fallback_rpc_urls", sa.Text(), server_default="[]", nullable=False)
    )
    op.add_column("networks", sa.Column("broadcast_url", sa.String(length=2048), nullable=True))
    op.add_column("networks", sa.Column("native_symbol", sa.String(length=32), nullable=True))
    op.add_column(
        "networks",
        sa.Column("fee_model", sa.String(length=16), server_default="eip1559", nullable=False),
    )


def downgrade() -> None:
    for column in ("fee_model", "native_symbol", "broadcast_url", "fallback_rpc_urls"):
        op.drop_column("networks", column)
