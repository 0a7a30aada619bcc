"""The canonical encoding and the audit key file."""

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shardvault.audit import AuditDetailsError, AuditKeyError, AuditSigner, canonical_json
from shardvault.audit.encoding import event_fields, event_hash, format_timestamp

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63) + 1, 2**63 - 1) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_canonical_json_is_a_fixed_point(value: object) -> None:
    text = canonical_json(value)
    assert json.loads(text) == value
    assert canonical_json(json.loads(text)) == text


def test_key_order_does_not_change_the_encoding() -> None:
    assert canonical_json({"b": 1, "a": [True, None]}) == canonical_json(
        {"a": [True, None], "b": 1}
    )
    assert canonical_json({"é": "ü"}) == '{"é":"ü"}'


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"amount": 1.5}, "$.amount"),
        ({"x": [1, {2: 3}]}, "$.x[1]"),
        ({"b": b"raw"}, "$.b"),
        ({"big": 2**64}, "$.big"),
    ],
)
def test_values_without_a_canonical_form_are_refused(value: object, path: str) -> None:
    with pytest.raises(AuditDetailsError) as caught:
        canonical_json(value)
    assert caught.value.path == path


def test_timestamps_are_utc_with_microseconds() -> None:
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2026, 1, 2, 5, 4, 5, 60, tzinfo=plus_two)
    assert format_timestamp(moment) == "2026-01-02T03:04:05.000060Z"
    assert format_timestamp(moment.astimezone(UTC).replace(tzinfo=None)) == format_timestamp(moment)


def test_event_hash_snapshot() -> None:
    """The encoding is part of the stored data: a change here breaks every existing chain,
    so this pins the hash of one fixed event (bump the tag's version to change it)."""
    fields = event_fields(
        event_id="6f1c1a2e-0000-4000-8000-000000000001",
        chain="ws-1",
        seq=1,
        workspace_id="ws-1",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        actor_type="api_key",
        actor_id="key-1",
        action="user.create",
        outcome="success",
        resource_type="user",
        resource_id="u-1",
        details='{"email":"a@example.com"}',
        prev_hash="0" * 64,
    )
    # The documented encoding, rebuilt by hand: tag, NUL, sorted compact JSON, SHA-256.
    by_hand = {**fields, "occurred_at": "2026-01-01T00:00:00.000000Z"}
    payload = json.dumps(by_hand, sort_keys=True, separators=(",", ":")).encode()
    assert (
        event_hash(fields) == hashlib.sha256(b"shardvault/audit/event/v1\x00" + payload).hexdigest()
    )
    assert event_hash(fields) == "bc92cb5d8f770bdd99d96aaee5edf886501f76093e7f3aafe8180652f2d3177b"


def test_key_file_round_trip_and_permissions(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit.key"
    signer = AuditSigner.load_or_create(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert AuditSigner.load(path).key_id == signer.key_id
    assert path.read_text().strip() not in repr(signer)
    with pytest.raises(AuditKeyError, match="cannot create"):
        signer.save(path)


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    AuditSigner.generate().save(path)
    path.chmod(0o644)
    with pytest.raises(AuditKeyError, match="group or others"):
        AuditSigner.load(path)


@pytest.mark.parametrize("content", ["zz", "ab" * 31, ""])
def test_malformed_key_file_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "audit.key"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(AuditKeyError):
        AuditSigner.load(path)
