"""Migrations and engines on both backends: upgrade from empty, head equals the models,
SQLite runs with WAL, foreign keys and a busy timeout, URLs pick the right driver."""

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from shardvault.store import (
    Database,
    SchemaNotCurrentError,
    UnsupportedDatabaseError,
    create_engine_for,
    current_revision,
    default_database_url,
    downgrade,
    ensure_current,
    head_revision,
    migrate,
    normalize_url,
)
from shardvault.store.models import Base

EXPECTED_TABLES = {
    "alembic_version",
    "workspaces",
    "users",
    "api_keys",
    "used_nonces",
    "idempotency_records",
    "audit_chain_heads",
    "audit_events",
    "audit_checkpoints",
    # Webhooks (migration 0003_webhooks).
    "webhook_endpoints",
    "webhook_resource_sequences",
    "webhook_events",
    "webhook_deliveries",
    "webhook_attempts",
    # Remote co-signers (migration 0004_paired_cosigners).
    "paired_cosigners",
    "cosigner_pairing_tokens",
    # Address attestations (migration 0006_address_attestations).
    "address_attestations",
    # The initiators' signed requests (migration 0007_initiator_requests).
    "initiator_requests",
    # Signed price reports (migration 0008_asset_registry).
    "price_reports",
    # Replacements of sent transactions (migration 0010_transaction_replacements).
    "transaction_replacements",
    # Custody domain (migration 0002_vaults_transactions).
    "networks",
    "assets",
    "vaults",
    "vault_keys",
    "wallets",
    "addresses",
    "address_book_entries",
    "policy_versions",
    "policy_chains",
    "transactions",
    "approvals",
    "nonce_counters",
    "nonce_allocations",
    "pipeline_work",
    # Vault creation jobs (migration 0011_vault_creations).
    "vault_creations",
}


def test_upgrade_from_empty_reaches_head(db_url: str) -> None:
    engine = create_engine_for(db_url)
    try:
        assert current_revision(engine) is None
        with pytest.raises(SchemaNotCurrentError):
            ensure_current(engine)
        migrate(db_url)
        assert current_revision(engine) == head_revision()
        ensure_current(engine)
        assert set(inspect(engine).get_table_names()) == EXPECTED_TABLES
        migrate(db_url)  # A second run is a no-op.
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_migration_head_matches_the_models(db_url: str) -> None:
    """Autogenerate finds nothing to do: the migrations describe exactly the models."""
    migrate(db_url)
    engine = create_engine_for(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_downgrade_to_empty_and_back(db_url: str) -> None:
    migrate(db_url)
    downgrade(db_url, "base")
    engine = create_engine_for(db_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    migrate(db_url)


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/sub/dir/x.db")
    try:
        with database.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
    finally:
        database.dispose()


def test_foreign_keys_are_enforced(database: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    from shardvault.store.models import Role, User

    with pytest.raises(IntegrityError), database.transaction() as session:  # noqa: PT012
        session.add(
            User(workspace_id="no-such-workspace", name="x", email="x@y.z", role=Role.VIEWER)
        )
        session.flush()


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///x.db", "sqlite+pysqlite"),
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg"),
    ],
)
def test_urls_pick_the_supported_driver(url: str, driver: str) -> None:
    assert normalize_url(url).drivername == driver


@pytest.mark.parametrize("url", ["mysql://u@h/db", "oracle://u@h/db", "mssql+pyodbc://h/db"])
def test_other_backends_are_refused(url: str) -> None:
    with pytest.raises(UnsupportedDatabaseError) as caught:
        normalize_url(url)
    assert caught.value.url_scheme.split("+")[0] in url


def test_default_url_is_a_sqlite_file_in_the_data_dir() -> None:
    assert default_database_url(Path("/srv/sv")) == "sqlite:////srv/sv/shardvault.db"


def test_repr_hides_the_password() -> None:
    database = Database("postgresql://user:hunter2@127.0.0.1:5432/x")
    assert "hunter2" not in repr(database)
    database.dispose()


def test_concurrent_migrations_do_not_collide(db_url: str) -> None:
    """Several servers starting at once against an empty database all succeed."""
    import threading

    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(db_url)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    engine = create_engine_for(db_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_a_new_sqlite_database_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "shardvault.db"
    migrate(f"sqlite:///{path}")
    database = Database(f"sqlite:///{path}")
    try:
        with database.engine.begin() as conn:
            conn.execute(text("SELECT 1"))
            wal = path.with_name("shardvault.db-wal")
            assert wal.exists()
            assert wal.stat().st_mode & 0o777 == 0o600
    finally:
        database.dispose()
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_the_asset_registry_migration_names_duplicate_assets_and_stops(db_url: str) -> None:
    """0008_asset_registry: two native assets on one network (the near-zero-price attack
    of an earlier version) stop the upgrade, naming them, until one is removed."""
    migrate(db_url, "0007_initiator_requests")
    engine = create_engine_for(db_url)
    now = "2026-12-08 10:00:00+00:00"
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO workspaces (id, name, created_at) VALUES ('ws', 'ws', :t)"),
                {"t": now},
            )
            conn.execute(
                text(
                    "INSERT INTO networks (id, workspace_id, name, kind, chain_id, coin_type, "
                    "required_confirmations, created_at) "
                    "VALUES ('net', 'ws', 'hardhat', 'evm', 31337, 60, 1, :t)"
                ),
                {"t": now},
            )
            for asset_id, symbol, price in (("a1", "ETH", "3000"), ("a2", "ETH2", "0.0001")):
                conn.execute(
                    text(
                        "INSERT INTO assets (id, workspace_id, network_id, symbol, kind, "
                        "decimals, price, created_at) "
                        "VALUES (:id, 'ws', 'net', :symbol, 'native', 18, :price, :t)"
                    ),
                    {"id": asset_id, "symbol": symbol, "price": price, "t": now},
                )
        with pytest.raises(RuntimeError, match=r"workspace ws, network net: \(native\)"):
            migrate(db_url)
        assert current_revision(engine) == "0007_initiator_requests"
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM assets WHERE id = 'a2'"))
        migrate(db_url)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_the_evm_networks_migration_keeps_each_network_as_it_was(db_url: str) -> None:
    """0009_evm_networks: a network made before keeps its one node, no fallback and no
    broadcast URL, the EIP-1559 fee model, and no symbol of its own (the table's); the
    downgrade keeps it, with the asset that references it."""
    migrate(db_url, "0008_asset_registry")
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO workspaces (id, name, created_at) VALUES ('ws', 'ws', :t)"),
                {"t": "2026-12-09 10:00:00+00:00"},
            )
            conn.execute(
                text(
                    "INSERT INTO networks (id, workspace_id, name, kind, chain_id, coin_type, "
                    "rpc_url, required_confirmations, created_at) VALUES ('net', 'ws', "
                    "'hardhat', 'evm', 31337, 60, 'http://127.0.0.1:8545', 2, :t)"
                ),
                {"t": "2026-12-09 10:00:00+00:00"},
            )
            conn.execute(
                text(
                    "INSERT INTO assets (id, workspace_id, network_id, symbol, kind, decimals, "
                    "created_at) VALUES ('eth', 'ws', 'net', 'ETH', 'native', 18, :t)"
                ),
                {"t": "2026-12-09 10:00:00+00:00"},
            )
        migrate(db_url)
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT rpc_url, fallback_rpc_urls, broadcast_url, native_symbol, "
                    "fee_model, required_confirmations FROM networks WHERE id = 'net'"
                )
            ).one()
        assert tuple(row) == ("http://127.0.0.1:8545", "[]", None, None, "eip1559", 2)
        downgrade(db_url, "0008_asset_registry")
        with engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("networks")}
            assert conn.execute(text("SELECT symbol FROM assets")).scalars().all() == ["ETH"]
        assert "fallback_rpc_urls" not in columns
        assert "rpc_url" in columns
    finally:
        engine.dispose()
