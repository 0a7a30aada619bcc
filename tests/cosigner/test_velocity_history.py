"""Velocity history from the records held: each entry parsed once, and only the entries
a velocity window can reach (docs/cosigner.md, "The record of signed transactions")."""

from __future__ import annotations

import hashlib

from shardvault.cosigner.signed_record import SignedRecord, velocity_history
from shardvault.crypto.channel import PartyIdentity
from shardvault.policy.request import parse_request

IDENTITY = PartyIdentity(
    1, hashlib.sha256(b"TEST-ONLY seed v").digest(), hashlib.sha256(b"TEST-ONLY x v").digest()
)
NOW = 1_800_000_000


def _request(n: int):
    return parse_request(
        {
            "digest": hashlib.sha256(str(n).encode()).hexdigest(),
            "operation": "transfer",
            "created_at": NOW,
            "initiator": {"type": "user", "id": "alice"},
            "source": {"vault": "v"},
            "network": "solana",
            "destination": "dest",
            "asset": {"id": "SOL", "decimals": 9},
            "amount": str(10**9 * (n + 1)),
        }
    )


def _record(tmp_path, ages):
    record = SignedRecord.open(tmp_path, IDENTITY.public, 1)
    for n, age in enumerate(ages):
        record.append(
            IDENTITY,
            ids=("ws", f"tx-{n}"),
            intent_digest=None,
            replay_key=f"solana:payer:{n}",
            signer_key=bytes(32),
            payload_digest=bytes([n]) * 32,
            now=NOW - age,
            request=_request(n),
        )
    return record


def test_entries_before_since_are_left_out_and_the_rest_placed_at_their_signing(tmp_path):
    record = _record(tmp_path, [200_000, 90_000, 1_000, 10])
    every = velocity_history(record.entries)
    assert [int(p.request.amount or 0) for p in every] == [10**9 * n for n in (1, 2, 3, 4)]
    recent = velocity_history(record.entries, since=NOW - 86_400)
    assert [int(p.request.amount or 0) for p in recent] == [3 * 10**9, 4 * 10**9]
    assert [int(p.request.created_at) for p in recent] == [NOW - 1_000, NOW - 10]
    # An entry exactly at the bound is still reached.
    assert len(velocity_history(record.entries, since=NOW - 1_000)) == 2


def test_each_entry_is_parsed_once_and_again_identically_after_a_reopen(tmp_path):
    record = _record(tmp_path, [30, 20, 10])
    first = velocity_history(record.entries)
    assert all(a is b for a, b in zip(first, velocity_history(record.entries), strict=True))
    reopened = SignedRecord.open(tmp_path, IDENTITY.public, 1)
    assert velocity_history(reopened.entries) == first
