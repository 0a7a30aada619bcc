"""Readiness: can this process serve requests (database reachable, schema current)?"""

from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from shardvault.store import current_revision, head_revision


@dataclass(frozen=True, slots=True)
class Readiness:
    """The result of a readiness check; ``ready`` is what a load balancer looks at."""

    ready: bool
    database: str
    schema_revision: str | None
    expected_revision: str


def check_readiness(engine: Engine) -> Readiness:
    """Ping the database and compare its schema revision with this code's head."""
    expected = head_revision()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = current_revision(engine)
    except SQLAlchemyError:
        return Readiness(False, "unreachable", None, expected)
    return Readiness(revision == expected, "ok", revision, expected)
