"""Idempotent execution of mutating requests.

Every mutating API call carries an ``Idempotency-Key`` header (the draft IETF
"Idempotency-Key HTTP header field"; Circle and Stripe behave the same way). The first
request with a key runs and its response is stored under (workspace, key), together with
a fingerprint of the request (method, path and SHA-256 of the raw body). A later request
with the same key and fingerprint gets the stored response without running again; with
another fingerprint it is refused with a 409.

Exactly-once under concurrency: the record is inserted in the SAME transaction as the
change. A concurrent duplicate's insert waits on the unique key (PostgreSQL) or on the
write lock (SQLite) until the first transaction ends; if that committed, the duplicate
finds the record and returns the stored response; if it rolled back (the operation failed),
nothing was stored and the duplicate runs the operation itself. Failed operations are
therefore not remembered: a retry after an error runs again, which is safe because the
failure changed nothing.
"""

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shardvault.service.errors import IdempotencyKeyReused, ValidationError
from shardvault.service.uow import UnitOfWork

MAX_KEY_LENGTH = 255
"""The longest idempotency key accepted."""

JsonObject = Mapping[str, object]
Operation = Callable[[UnitOfWork], tuple[int, JsonObject]]
"""A mutating operation: runs in the unit of work and returns (HTTP status, JSON body)."""


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response as first produced; ``replayed`` is true when it came from the store."""

    status: int
    body: str
    replayed: bool


def validate_key(key: str | None) -> str:
    """Check an idempotency key: 1 to 255 printable ASCII characters.

    Raises:
        ValidationError: the key is missing or malformed.
    """
    if key is None or key == "":
        raise ValidationError("Idempotency-Key", "this call requires an Idempotency-Key header")
    if len(key) > MAX_KEY_LENGTH or not all(33 <= ord(c) <= 126 for c in key):
        raise ValidationError(
            "Idempotency-Key", f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
        )
    return key


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same": method, path and the exact body bytes."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), hashlib.sha256(body).digest()):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def run_idempotently(
    uow: UnitOfWork,
    *,
    workspace_id: str,
    key: str,
    method: str,
    path: str,
    fingerprint: str,
    operation: Operation,
) -> StoredResponse:
    """Run ``operation`` once per (workspace, key), inside ``uow``.

    Raises:
        ValidationError: the key is malformed.
        IdempotencyKeyReused: the key was used for a different request.
        Any error ``operation`` raises (then nothing is stored).
    """
    key = validate_key(key)
    records = uow.idempotency(workspace_id)
    if not records.claim(key=key, method=method, path=path, request_hash=fingerprint):
        existing = records.get(key)
        if existing is None:  # pragma: no cover - the conflicting row is committed
            raise RuntimeError("idempotency record vanished after a conflict")
        if existing.request_hash != fingerprint:
            raise IdempotencyKeyReused(key)
        return StoredResponse(existing.response_status, existing.response_body, replayed=True)
    status, body = operation(uow)
    text = json.dumps(body, separators=(",", ":"), sort_keys=True)
    records.complete(key, response_status=status, response_body=text)
    return StoredResponse(status, text, replayed=False)
