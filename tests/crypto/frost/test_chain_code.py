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

import pytest

from shardvault.crypto.errors import ProtocolAbort
from shardvault.crypto.protocols.confirmation import finish_all
from shardvault.crypto.protocols.frost import ED25519_SHA512, DkgRound1
from shardvault.crypto.protocols.frost.dkg import _CHAIN_CODE_DOMAIN
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


@pytest.mark.xfail(
    strict=True,
    reason="issue #19: contributions are broadcast in the round that fixes them, so the "
    "rusher grinds its own after reading the others'",
)
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
    round2, direct = {}, []
    for party, state in states.items():
        round2[party], out = state.next([m for m in broadcasts if m.header.sender != party])
        direct.extend(out)
    # Round 2: again the rusher reads what the honest parties sent it before its own.
    to_rusher = [m for m in direct if m.header.recipient == RUSHER]
    part = _grind(_contributions(to_rusher))
    attacked = attacked or part is not None
    direct = [_rewrite(m, part) if m.header.sender == RUSHER else m for m in direct]
    assert attacked, "the rusher never saw the other contributions"
    confirmations = {}
    culprits = {}
    for party in PARTIES:
        try:
            confirmations[party] = round2[party].next(
                [m for m in direct if m.header.recipient == party]
            )[0]
        except ProtocolAbort as abort:
            culprits[party] = abort.culprits
    # Caught: every honest party refuses the rewritten contribution, naming the rusher.
    if culprits:
        assert culprits == {p: (RUSHER,) for p in HONEST}
        return
    keys = finish_all([confirmations[p] for p in PARTIES])
    assert not _steered(keys[0].public.chain_code)
