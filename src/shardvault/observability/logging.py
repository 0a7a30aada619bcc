"""Structured JSON logging with secret redaction.

Every record becomes one JSON object per line: time, level, logger, message and the
record's extra fields. :class:`RedactSecretsFilter` replaces the value of any extra field,
or of any key in a mapping passed as the log arguments or nested in an extra, whose name
looks like a secret (``password``, ``token``, ``authorization``, ``private_key``,
``seed``...) with ``"[REDACTED]"``; names ending in ``_id`` are identifiers and are kept.
It cannot see secrets pasted into the message text itself: never format one in.
"""

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime

REDACTED = "[REDACTED]"

SECRET_NAME = re.compile(
    r"secret|passw|token|authori[sz]ation|private|seed|credential|cookie|jwt|bearer"
    r"|signing_key|api_?key|mnemonic|share",
    re.IGNORECASE,
)
"""Field names whose values are never logged."""

_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


def is_secret_name(name: str) -> bool:
    """Whether a field called ``name`` must be redacted."""
    return bool(SECRET_NAME.search(name)) and not name.lower().endswith("_id")


def redact(value: object) -> object:
    """``value`` with every secret-named mapping entry replaced, recursively."""
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and is_secret_name(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


class RedactSecretsFilter(logging.Filter):
    """Redacts secret-named extra fields and mapping arguments of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in list(record.__dict__.items()):
            if name in _STANDARD:
                continue
            record.__dict__[name] = REDACTED if is_secret_name(name) else redact(value)
        if isinstance(record.args, Mapping):
            record.args = redact(record.args)  # type: ignore[assignment]
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and name not in payload:
                payload[name] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(level: str = "INFO", *, json_output: bool = True) -> None:
    """Send the root logger's records to stderr, as JSON (default) or text, redacted."""
    handler = logging.StreamHandler()
    handler.addFilter(RedactSecretsFilter())
    handler.setFormatter(
        JsonFormatter()
        if json_output
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
