"""Presigning round 4: every signer agrees on every signer's round-3 values before a
check chooses an identification path, and a signer that sent different values to
different peers is named by every honest signer, alone (issue #19, "mixed
identification").

Round-3 messages are direct. Before round 4, a cheater could send one honest signer a
wrong δ and another a wrong S: the first ran the δ identification, the second the χ
identification, neither could read the other's round-4 message and each named the other
honest signer (or one finished while the other waited). Now each ψ'' binds the values it
came with, round 4 compares them, and a disagreement is settled by the proofs: only the
sender of a round-3 message can prove for it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from shardvault.crypto.errors import ProtocolAbort
from shardvault.crypto.group import SECP256K1
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.cggmp21.presign import PresignRound1
from tests.crypto.cggmp21.ecdsa_helpers import make_key_shares
from tests.crypto.cggmp21.presign_helpers import RNG, run_to_round4

HONEST = (1, 2)
CHEATER = 3


@pytest.fixture(scope="module")
def shares3() -> list[KeyShare]:
    return make_key_shares(3, 3, "presign-agreement")


def _culprits(action: Any) -> tuple[int, ...]:
    with pytest.raises(ProtocolAbort) as info:
        action()
    return info.value.culprits


@pytest.mark.parametrize(
    "claim",
    [None, {"delta": 1}, {"S": 1}],
    ids=["claims its true values", "claims the δ it sent 1", "claims the S it sent 2"],
)
def test_wrong_delta_to_one_and_wrong_s_to_another_names_only_the_cheater(
    shares3: list[KeyShare], claim: dict[str, int] | None
) -> None:
    """Signer 3 sends signer 1 a wrong δ and signer 2 a wrong S, each with a valid ψ''
    for what that signer gets, and tells round 4 any of the three stories: both honest
    signers name signer 3 alone, in round 4, before any identification path."""
    run = run_to_round4(
        shares3, cheater=CHEATER, per_recipient={1: {"delta": 1}, 2: {"S": 1}}, claim=claim
    )
    for me in HONEST:
        state = run.states[me]
        assert _culprits(lambda s=state, m=me: s.finish(run.others(m))) == (CHEATER,)


def test_wrong_delta_to_one_signer_only_is_named_by_both(shares3: list[KeyShare]) -> None:
    """Signer 2 got only correct values (its checks alone would pass): it still names
    signer 3 with signer 1, rather than finishing with a presignature signer 1 lacks."""
    run = run_to_round4(shares3, cheater=CHEATER, per_recipient={1: {"delta": 1}})
    for me in HONEST:
        state = run.states[me]
        assert _culprits(lambda s=state, m=me: s.finish(run.others(m))) == (CHEATER,)


def _misreport(message: Any, index: int) -> Any:
    views = list(message.payload["views"])
    views[index] = bytes(32)
    payload = {**message.payload, "views": views}
    return replace(message, payload=payload)


@pytest.mark.parametrize("about", [1, 2, 3], ids=["our values", "its own", "a third signer's"])
def test_misreporting_a_view_in_round4_names_the_reporter(
    shares3: list[KeyShare], about: int
) -> None:
    """Signer 2 claims in round 4 that some signer's round-3 values were other than what
    signer 1 holds. For signer 1's own values and signer 2's own only signer 2 can be
    lying; for signer 3's, signer 2 cannot show a ψ'' of signer 3 for the claim."""
    run = run_to_round4(shares3)
    lying = _misreport(run.messages[2], about - 1)
    received = [lying if m.header.sender == 2 else m for m in run.others(1)]
    assert _culprits(lambda: run.states[1].finish(received)) == (2,)


def test_a_proof_for_other_values_does_not_convict_the_signer(shares3: list[KeyShare]) -> None:
    """Signer 2 forwards signer 3's genuine ψ'' but with another digest: the proof does not
    verify for it, so signer 2 is named, not signer 3."""
    run = run_to_round4(shares3)
    message = run.messages[2]
    views = list(message.payload["views"])
    views[2] = bytes(reversed(views[2]))
    lying = replace(message, payload={**message.payload, "views": views})
    received = [lying if m.header.sender == 2 else m for m in run.others(1)]
    assert _culprits(lambda: run.states[1].finish(received)) == (2,)


@pytest.mark.parametrize("field", ["views", "Deltas", "log_star_proofs"])
def test_malformed_round4_message_names_the_sender(shares3: list[KeyShare], field: str) -> None:
    run = run_to_round4(shares3)
    message = run.messages[2]
    bad = replace(message, payload={**message.payload, field: ["short"]})
    received = [bad if m.header.sender == 2 else m for m in run.others(1)]
    assert _culprits(lambda: run.states[1].finish(received)) == (2,)


def test_values_changed_after_proving_are_refused_in_round3(shares3: list[KeyShare]) -> None:
    """ψ'' binds the round-3 values: a δ changed after the proof names its sender at once."""

    signers = [1, 2, 3]
    sid = RNG(32)
    r1 = {k.party: PresignRound1(k, signers, sid, RNG) for k in shares3}
    proofs = [m for r in r1.values() for m in r.proofs]
    r2 = {
        p: r.next(
            [o.message for q, o in r1.items() if q != p],
            [m for m in proofs if m.header.recipient == p],
        )
        for p, r in r1.items()
    }
    d2 = [m for _, out in r2.values() for m in out]
    r3 = {p: st.next([m for m in d2 if m.header.recipient == p]) for p, (st, _) in r2.items()}
    (to_1,) = [m for m in r3[CHEATER][1] if m.header.recipient == 1]
    delta = (int.from_bytes(to_1.payload["delta"], "big") + 1) % SECP256K1.order
    changed = replace(to_1, payload={**to_1.payload, "delta": delta.to_bytes(32, "big")})
    (from_2,) = [m for m in r3[2][1] if m.header.recipient == 1]
    assert _culprits(lambda: r3[1][0].next([from_2, changed])) == (CHEATER,)
