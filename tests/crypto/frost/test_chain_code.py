"""The FROST DKG's chain code cannot be steered by the last party to speak (issue #19).

The chain code is SHA-256 over every party's 32-byte contribution. A rushing party waits
for every other party's messages of a round before it sends its own. If the others'
contributions are readable before the rusher's own is fixed, it can try contributions
until the chain code has a property it likes (here: two leading zero bytes, about 2^16
tries), which biases every derived address of the vault.

The attacker below looks for the other parties' contributions (a ``chain_code_part``
field) in every message it receives, in whichever round they travel, and rewrites its own
contribution in the next message it sends. Every party's randomness is seeded, so each run
is the same run.
"""

import dataclasses
import hashlib
import secrets

import pytest

from shardvault.crypto.errors import ProtocolAbort, TransportError
from shardvault.crypto.protocols.common import SessionId
from shardvault.crypto.protocols.frost import ED25519_SHA512, SECP256K1_BIP340, DkgRound1
from shardvault.crypto.protocols.frost.dkg import _CHAIN_CODE_DOMAIN, chain_code_commitment
from shardvault.crypto.protocols.frost.local import run_dkg
from tests.crypto.frost.conftest import deterministic_rng

PARTIES = [1, 2, 3]
RUSHER = 3
HONEST = (1, 2)
SESSION = hashlib.sha256(b"chain-code grinding session").digest()


def _steered(chain_code: bytes) -> bool:
    return chain_code[:2] == b"\x00\x00"


def _grind(seen: dict[int, bytes]) -> bytes | None:
    """A contribution that makes the chain code steered, given the others' contributions;
    ``None`` when they are not all known yet."""
    if sorted(seen) != list(HONEST):
        return None
    for counter in range(2**22):
        mine = hashlib.sha256(counter.to_bytes(8, "big")).digest()
        parts = {**seen, RUSHER: mine}
        code = hashlib.sha256(_CHAIN_CODE_DOMAIN + b"".join(parts[p] for p in PARTIES)).digest()
        if _steered(code):
            return mine
    raise AssertionError("no contribution found")  # pragma: no cover - 2^16 expected tries


def _contributions(messages) -> dict[int, bytes]:  # type: ignore[no-untyped-def]
    return {m.header.sender: m.chain_code_part for m in messages if hasattr(m, "chain_code_part")}


def _rewrite(message, part: bytes | None):  # type: ignore[no-untyped-def]
    if part is None or not hasattr(message, "chain_code_part"):
        return message
    return dataclasses.replace(message, chain_code_part=part)


def _for(messages, party: int):  # type: ignore[no-untyped-def]
    """What ``party`` receives of ``messages``: direct ones addressed to it, broadcasts of
    the others."""
    return [
        m
        for m in messages
        if m.header.recipient == party or (m.header.recipient is None and m.header.sender != party)
    ]


def _finish(round3):  # type: ignore[no-untyped-def]
    messages = [message for _, message in round3.values()]
    return {p: state.finish(_for(messages, p)) for p, (state, _) in round3.items()}


def test_a_rushing_party_cannot_grind_the_chain_code() -> None:
    states = {
        p: DkgRound1(ED25519_SHA512, p, 2, PARTIES, SESSION, deterministic_rng(b"party %d" % p))
        for p in PARTIES
    }
    # Round 1: the rusher reads the honest broadcasts before it sends its own. Its own
    # round object must agree with what it sends, or its echo would give it away.
    honest_round1 = [states[p].message for p in HONEST]
    rusher = states[RUSHER]
    part = _grind(_contributions(honest_round1))
    attacked = part is not None
    rusher.message = _rewrite(rusher.message, part)
    broadcasts = [s.message for s in states.values()]
    round2, sent = {}, []
    for party, state in states.items():
        round2[party], out = state.next([m for m in broadcasts if m.header.sender != party])
        sent.append(out)
    # Round 2: again the rusher reads what the honest parties sent it before its own.
    to_rusher = _for(sent, RUSHER)
    part = _grind(_contributions(to_rusher))
    attacked = attacked or part is not None
    sent = [_rewrite(m, part) if m.header.sender == RUSHER else m for m in sent]
    assert attacked, "the rusher never saw the other contributions"
    round3 = {}
    culprits = {}
    for party in PARTIES:
        try:
            round3[party] = round2[party].next(_for(sent, party))
        except ProtocolAbort as abort:
            culprits[party] = abort.culprits
    # Caught: every honest party refuses the rewritten contribution, naming the rusher.
    if culprits:
        assert culprits == {p: (RUSHER,) for p in HONEST}
        return
    keys = _finish(round3)
    assert not _steered(keys[1].public.chain_code)


def _run_round1(suite=ED25519_SHA512, replace_round1=None):  # type: ignore[no-untyped-def]
    """Round 1 among honest parties (``replace_round1`` rewrites the rusher's broadcast as
    every party sees it, the rusher's own round object included); round 2 objects and the
    direct messages."""
    session = secrets.token_bytes(32)
    states = {p: DkgRound1(suite, p, 2, PARTIES, session, secrets.token_bytes) for p in PARTIES}
    if replace_round1 is not None:
        states[RUSHER].message = replace_round1(states)
    broadcasts = [s.message for s in states.values()]
    round2, sent = {}, []
    for party, state in states.items():
        round2[party], out = state.next([m for m in broadcasts if m.header.sender != party])
        sent.append(out)
    return round2, sent


def _abort_of(round2, direct, party):  # type: ignore[no-untyped-def]
    with pytest.raises(ProtocolAbort, match="chain-code contribution") as info:
        round2[party].next(_for(direct, party))
    return info.value.culprits


@pytest.mark.parametrize("suite", [ED25519_SHA512, SECP256K1_BIP340], ids=lambda s: s.name)
@pytest.mark.parametrize("field", ["chain_code_part", "chain_code_nonce"])
def test_a_reveal_that_does_not_open_the_commitment_names_the_sender(suite, field) -> None:  # type: ignore[no-untyped-def]
    # The rusher shows party 1 a round-2 broadcast with another contribution (or nonce):
    # party 1 names it, party 2 accepts the honest one, and round 3 then gives nobody a key.
    round2, sent = _run_round1(suite)
    forged = [
        dataclasses.replace(m, **{field: bytes(32)}) if m.header.sender == RUSHER else m
        for m in sent
    ]
    assert _abort_of(round2, forged, 1) == (RUSHER,)
    round3_2, _ = round2[2].next(_for(sent, 2))
    _, from_rusher = round2[RUSHER].next(_for(sent, RUSHER))
    with pytest.raises(TransportError, match="missing"):
        round3_2.finish([from_rusher])


def test_a_commitment_copied_from_another_party_cannot_be_opened_by_the_copier() -> None:
    # The rusher broadcasts party 2's commitment as its own, then reveals party 2's opening
    # (which it reads in round 2): the commitment binds party 2's id, so it does not open.
    def copy(states):  # type: ignore[no-untyped-def]
        own = states[RUSHER].message
        return dataclasses.replace(
            own, chain_code_commitment=states[2].message.chain_code_commitment
        )

    round2, direct = _run_round1(replace_round1=copy)
    from_2 = next(m for m in direct if m.header.sender == 2)
    forged = [
        dataclasses.replace(
            m, chain_code_part=from_2.chain_code_part, chain_code_nonce=from_2.chain_code_nonce
        )
        if m.header.sender == RUSHER
        else m
        for m in direct
    ]
    assert _abort_of(round2, forged, 1) == (RUSHER,)
    assert _abort_of(round2, forged, 2) == (RUSHER,)


def test_commitment_binds_session_party_nonce_and_contribution() -> None:
    session = SessionId(bytes(32))
    nonce, part = bytes(range(32)), bytes(range(32, 64))
    reference = chain_code_commitment(session, 1, nonce, part)
    assert len(reference) == 32
    others = {
        chain_code_commitment(SessionId(b"\x01" * 32), 1, nonce, part),
        chain_code_commitment(session, 2, nonce, part),
        chain_code_commitment(session, 1, part, nonce),
        chain_code_commitment(session, 1, nonce, bytes(32)),
    }
    assert reference not in others
    assert len(others) == 4


def test_honest_parties_agree_on_a_chain_code_of_every_contribution() -> None:
    keys = run_dkg(ED25519_SHA512, 2, 3, secrets.token_bytes)
    assert len({k.public.chain_code for k in keys}) == 1
    assert len(keys[0].public.chain_code) == 32
