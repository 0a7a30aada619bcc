"""Metrics, structured logs and health checks."""

from shardvault.observability.health import Readiness, check_readiness
from shardvault.observability.logging import (
    JsonFormatter,
    RedactSecretsFilter,
    configure_logging,
    is_secret_name,
    redact,
)

__all__ = [
    "JsonFormatter",
    "Readiness",
    "RedactSecretsFilter",
    "check_readiness",
    "configure_logging",
    "is_secret_name",
    "redact",
]
