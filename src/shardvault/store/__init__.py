"""Persistence: SQLAlchemy models and repositories, Alembic migrations."""
