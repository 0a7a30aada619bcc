"""Complaints about CGGMP21 key-generation shares are judged alike by every honest party
(issue #19). Refresh shares use the same code (``cggmp21/_shares.py``); its bad-share test
is in ``test_refresh.py``.

Four parties in one process; each test corrupts one (the culprit) and checks the verdict
of every other party, the accused dealer included.
"""

from __future__ import annotations

import secrets
from dataclasses import replace

import pytest

from shardvault.crypto.errors import ProtocolAbort
from shardvault.crypto.protocols.cggmp21.keygen import KeygenRound1
from shardvault.crypto.protocols.common import PartyId

RNG = secrets.token_bytes
PARTIES = [1, 2, 3, 4]


def _others(messages: dict[int, object], me: int) -> list[object]:
    return [m for p, m in messages.items() if p != me]


def _run(round2=None, round3=None) -> dict[int, tuple[int, ...] | str]:  # type: ignore[no-untyped-def]
    """Key generation up to the round-3 receipt. ``round2(b2)`` and ``round3(step3, b3)``
    may rewrite the broadcasts (the same for everyone). Returns each party's culprits, or
    ``"ok"`` when it reached the key confirmation."""
    sid = RNG(32)
    r1 = {p: KeygenRound1(p, 3, PARTIES, sid, RNG) for p in PARTIES}
    b1 = {p: r.message for p, r in r1.items()}
    step2 = {p: r1[p].next(_others(b1, p)) for p in PARTIES}  # type: ignore[arg-type]
    b2 = {p: message for p, (_, message) in step2.items()}
    if round2 is not None:
        round2(b2)
    step3 = {p: step2[p][0].next(_others(b2, p)) for p in PARTIES}  # type: ignore[arg-type]
    b3 = {p: message for p, (_, message) in step3.items()}
    if round3 is not None:
        round3(step3, b3)
    verdicts: dict[int, tuple[int, ...] | str] = {}
    for p in PARTIES:
        try:
            step3[p][0].next(_others(b3, p))  # type: ignore[arg-type]
            verdicts[p] = "ok"
        except ProtocolAbort as abort:
            verdicts[p] = abort.culprits
    return verdicts


def _honest(verdicts, culprit: int):  # type: ignore[no-untyped-def]
    return {p: v for p, v in verdicts.items() if p != culprit}


def test_honest_key_generation_has_no_complaint() -> None:
    assert set(_run().values()) == {"ok"}


def test_undecryptable_share_names_the_dealer() -> None:
    def garble(b2):  # type: ignore[no-untyped-def]
        ciphertexts = list(b2[2].share_ciphertexts)
        ciphertexts[0] = bytes(len(ciphertexts[0]))  # party 1's share
        b2[2] = replace(b2[2], share_ciphertexts=tuple(ciphertexts))

    assert _honest(_run(round2=garble), 2) == {1: (2,), 3: (2,), 4: (2,)}


def _complaint_by_3_against_2(edit=None):  # type: ignore[no-untyped-def]
    def complain(step3, b3):  # type: ignore[no-untyped-def]
        # Party 3 turns malicious and complains, with a valid proof, about dealer 2's good
        # share (its own complaint key makes the proof).
        complaint = step3[3][0]._book.complain(PartyId(2), RNG)
        wire = complaint.to_wire()
        if edit is not None:
            wire = edit(wire)
        b3[3] = replace(b3[3], complaints=[wire])

    return complain


def test_false_complaint_names_the_complainer() -> None:
    verdicts = _run(round3=_complaint_by_3_against_2())
    assert _honest(verdicts, 3) == {1: (3,), 2: (3,), 4: (3,)}


def test_bad_dleq_proof_names_the_complainer() -> None:
    def bad_proof(wire):  # type: ignore[no-untyped-def]
        proof = bytearray(wire["proof"])
        proof[0] ^= 1
        return {**wire, "proof": bytes(proof)}

    verdicts = _run(round3=_complaint_by_3_against_2(bad_proof))
    assert _honest(verdicts, 3) == {1: (3,), 2: (3,), 4: (3,)}


def test_complaint_showing_another_ciphertext_names_both() -> None:
    def other(wire):  # type: ignore[no-untyped-def]
        return {**wire, "ciphertext": bytes(len(wire["ciphertext"]))}

    verdicts = _run(round3=_complaint_by_3_against_2(other))
    assert _honest(verdicts, 3) == {1: (2, 3), 2: (2, 3), 4: (2, 3)}


@pytest.mark.parametrize(
    "complaints",
    [
        lambda wire: [wire, wire],
        lambda wire: [wire] * 4,
        lambda wire: "not a list",
        lambda wire: [{**wire, "extra": 1}],
    ],
    ids=["twice", "too-many", "not-a-list", "unknown-field"],
)
def test_malformed_complaint_list_names_its_sender(complaints) -> None:  # type: ignore[no-untyped-def]
    def complain(step3, b3):  # type: ignore[no-untyped-def]
        wire = step3[3][0]._book.complain(PartyId(2), RNG).to_wire()
        b3[3] = replace(b3[3], complaints=complaints(wire))

    assert _honest(_run(round3=complain), 3) == {1: (3,), 2: (3,), 4: (3,)}
