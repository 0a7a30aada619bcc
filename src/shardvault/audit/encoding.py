"""The canonical encoding of audit events, checkpoints and chain heads, and their hashes.

An event is hashed as ``SHA-256(tag || 0x00 || canonical_json(fields))`` where the tag is
``shardvault/audit/event/v1`` and ``fields`` are every stored column except the hash and
the signature, including ``prev_hash`` (the predecessor's hash, or 64 zeros for the first
event) and ``seq``. Canonical JSON here means: object keys sorted, no insignificant
whitespace, UTF-8, and only strings, integers, booleans, null, lists and string-keyed
objects (no floats, whose text forms are not unique). Timestamps are ISO 8601 in UTC with
exactly six fractional digits and a ``Z``. Changing any of this changes every hash, so it
is versioned in the tag.

Signatures (Ed25519, RFC 8032) are over ``tag || 0x00 || canonical_json(...)`` with their
own tags, so an event signature can never be replayed as a checkpoint or head signature.
"""

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime

from shardvault.audit.errors import AuditDetailsError
from shardvault.store.types import as_utc

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first event of every chain."""

EVENT_TAG = b"shardvault/audit/event/v1"
EVENT_SIGNATURE_TAG = b"shardvault/audit/event-signature/v1"
CHECKPOINT_TAG = b"shardvault/audit/checkpoint/v1"
HEAD_TAG = b"shardvault/audit/head/v1"

JsonValue = str | int | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
"""The values an event's details may hold."""

_MAX_INT = 2**63 - 1


def _check(value: object, path: str) -> None:
    if value is None or isinstance(value, str | bool):
        return
    if isinstance(value, int):
        if not -_MAX_INT <= value <= _MAX_INT:
            raise AuditDetailsError(path, "integer outside the signed 64-bit range")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise AuditDetailsError(path, f"object key {key!r} is not a string")
            _check(item, f"{path}.{key}")
        return
    raise AuditDetailsError(path, f"type {type(value).__name__} has no canonical form")


def canonical_json(value: object) -> str:
    """The canonical JSON text of ``value`` (see the module docstring).

    Raises:
        AuditDetailsError: ``value`` holds a float, a non-string key or another type.
    """
    _check(value, "$")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_timestamp(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _tagged(tag: bytes, payload: object) -> bytes:
    return tag + b"\x00" + canonical_json(payload).encode("utf-8")


def event_fields(
    *,
    event_id: str,
    chain: str,
    seq: int,
    workspace_id: str | None,
    occurred_at: datetime,
    actor_type: str,
    actor_id: str | None,
    action: str,
    outcome: str,
    resource_type: str | None,
    resource_id: str | None,
    details: str,
    prev_hash: str,
) -> dict[str, JsonValue]:
    """The hashed fields of an event, as a JSON object."""
    return {
        "action": action,
        "actor_id": actor_id,
        "actor_type": actor_type,
        "chain": chain,
        "details": details,
        "id": event_id,
        "occurred_at": format_timestamp(occurred_at),
        "outcome": outcome,
        "prev_hash": prev_hash,
        "resource_id": resource_id,
        "resource_type": resource_type,
        "seq": seq,
        "workspace_id": workspace_id,
    }


def event_hash(fields: Mapping[str, JsonValue]) -> str:
    """The hex SHA-256 of an event's canonical encoding."""
    return hashlib.sha256(_tagged(EVENT_TAG, dict(fields))).hexdigest()


def event_signature_message(chain: str, seq: int, hash_hex: str) -> bytes:
    """What the audit key signs for one event."""
    return _tagged(EVENT_SIGNATURE_TAG, {"chain": chain, "hash": hash_hex, "seq": seq})


def checkpoint_message(chain: str, seq: int, hash_hex: str, created_at: datetime) -> bytes:
    """What the audit key signs for a checkpoint."""
    return _tagged(
        CHECKPOINT_TAG,
        {"chain": chain, "created_at": format_timestamp(created_at), "hash": hash_hex, "seq": seq},
    )


def head_message(chain: str, last_seq: int, last_hash: str) -> bytes:
    """What the audit key signs for a chain head."""
    return _tagged(HEAD_TAG, {"chain": chain, "last_hash": last_hash, "last_seq": last_seq})
