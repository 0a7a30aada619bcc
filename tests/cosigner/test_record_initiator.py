"""One signed initiator request makes one transaction: the record of signed transactions
keeps each request's digest (docs/cosigner.md "The record of signed transactions")."""

from __future__ import annotations

import hashlib
import json

import pytest

from shardvault.cosigner.errors import RequestRefused
from shardvault.cosigner.signed_record import RECORD_FILE, SignedRecord
from shardvault.crypto.channel import PartyIdentity

IDENTITY = PartyIdentity(
    1, hashlib.sha256(b"TEST-ONLY seed").digest(), hashlib.sha256(b"TEST-ONLY x25519").digest()
)
REQUEST = hashlib.sha256(b"a signed request").hexdigest()


def _append(record, ids, replay_key, digest, initiator_request=REQUEST):
    record.append(
        IDENTITY,
        ids=ids,
        intent_digest=None,
        replay_key=replay_key,
        signer_key=bytes(33),
        payload_digest=digest,
        now=1_800_000_000,
        initiator_request=initiator_request,
    )


def _check(record, ids, replay_key, digest, initiator_request=REQUEST):
    record.check(ids, replay_key, bytes(33), digest, initiator_request=initiator_request)


def test_a_request_used_for_one_transaction_is_refused_for_another(tmp_path):
    record = SignedRecord.open(tmp_path, IDENTITY.public, 1)
    _append(record, ("ws", "tx-1"), "solana:payer:aa", bytes([1]) * 32)
    # The same transaction again (a failover quorum, another input) is not a reuse.
    _check(record, ("ws", "tx-1"), "solana:payer:aa", bytes([1]) * 32)
    with pytest.raises(RequestRefused) as info:
        _check(record, ("ws", "tx-2"), "solana:payer:bb", bytes([2]) * 32)
    assert info.value.check == "initiator"
    assert "'tx-1'" in info.value.reason
    # Another signed request for the other transaction is fine.
    _check(record, ("ws", "tx-2"), "solana:payer:bb", bytes([2]) * 32, "ab" * 32)


def test_without_transaction_ids_the_replay_key_names_the_transaction(tmp_path):
    record = SignedRecord.open(tmp_path, IDENTITY.public, 1)
    _append(record, None, "ethereum:1:0xabc:4", bytes([1]) * 32)
    _check(record, None, "ethereum:1:0xabc:4", bytes([3]) * 32)  # a fee bump of it
    for ids, replay_key in ((None, "ethereum:1:0xabc:5"), (None, None), (("ws", "tx"), None)):
        with pytest.raises(RequestRefused) as info:
            _check(record, ids, replay_key, bytes([4]) * 32)
        assert info.value.check == "initiator"


def test_the_digest_survives_a_restart_and_older_lines_load_unchanged(tmp_path):
    record = SignedRecord.open(tmp_path, IDENTITY.public, 1)
    _append(record, ("ws", "tx-old"), "solana:payer:00", bytes([5]) * 32, None)
    _append(record, ("ws", "tx-1"), "solana:payer:aa", bytes([1]) * 32)
    lines = [json.loads(x) for x in (tmp_path / RECORD_FILE).read_bytes().splitlines()]
    # A line without a signed request has no field at all: the form written before it
    # existed, so those lines keep verifying.
    assert "initiator_request" not in lines[0]
    assert lines[1]["initiator_request"] == REQUEST
    reopened = SignedRecord.open(tmp_path, IDENTITY.public, 1)
    assert [e.initiator_request for e in reopened.entries] == [None, REQUEST]
    with pytest.raises(RequestRefused):
        _check(reopened, ("ws", "tx-2"), "solana:payer:bb", bytes([2]) * 32)
