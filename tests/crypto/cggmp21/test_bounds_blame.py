"""Every bound of a presigning proof, at protocol level: an oversized value names exactly
its sender at every honest signer, before any exponentiation of it.

CGGMP21 (ePrint 2021/060), Figure 7 of the three-round presigning: party 3 of a 3-of-3
presigning sends both honest parties one proof field set to ``2^100000`` (a value a peer
can send inside the 4 MiB message limit): in its Πenc (round 1), either Πaff-g or its
Πlog* (round 2), or its Πlog* of round 3. Each honest party must abort naming party 3
alone, with ``gmpy2.powmod`` refusing any operand longer than an honest proof needs
(:func:`~tests.crypto.cggmp21.conftest.exponentiations`). The zero-knowledge tests
(``test_zk_bounds.py``) show the same refusal comes before the verifier's first
exponentiation; ``bench/bench_bounds.py`` times it against the exponentiation it avoids.

The auxiliary-info proofs (Πmod, Πprm, Πfac) and the modulus size have their protocol
tests in ``test_aux_info.py``.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, replace
from typing import Any

import pytest

from shardvault.crypto.errors import ProtocolAbort
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.cggmp21.presign import (
    PresignRound1,
    PresignRound2,
    PresignRound3,
)
from tests.crypto.cggmp21.ecdsa_helpers import make_key_shares

RNG = secrets.token_bytes
HUGE = 1 << 100_000
CHEATER = 3
HONEST = (1, 2)

_ENC_FIELDS = ("S", "A", "C", "z1", "z2", "z3")
_AFF_G_FIELDS = ("A", "By", "E", "S", "F", "T", "z1", "z2", "z3", "z4", "w", "wy")
_LOG_STAR_FIELDS = ("S", "A", "D", "z1", "z2", "z3")


@dataclass
class Run:
    """An honest 3-signer presigning, with every honest party's state before each round
    and every message party 3 sent."""

    round1: dict[int, PresignRound1]
    round2: dict[int, PresignRound2]
    round3: dict[int, PresignRound3]
    broadcast1: dict[int, Any]
    direct1: dict[tuple[int, int], Any]
    direct2: dict[tuple[int, int], Any]
    direct3: dict[tuple[int, int], Any]


@pytest.fixture(scope="module")
def run() -> Run:
    shares: list[KeyShare] = make_key_shares(3, 3, "bounds-blame")
    sid = RNG(32)
    signers = [1, 2, 3]
    r1 = {k.party: PresignRound1(k, signers, sid, RNG) for k in shares}
    pristine1 = {p: _fresh(r1[p]) for p in HONEST}
    broadcast1 = {p: r.message for p, r in r1.items()}
    direct1 = {(p, m.header.recipient): m for p, r in r1.items() for m in r.proofs}
    r2: dict[int, PresignRound2] = {}
    direct2: dict[tuple[int, int], Any] = {}
    for p, state in r1.items():
        peers = [q for q in signers if q != p]
        r2[p], out = state.next([broadcast1[q] for q in peers], [direct1[(q, p)] for q in peers])
        direct2.update({(p, m.header.recipient): m for m in out})
    pristine2 = {p: _fresh(r2[p]) for p in HONEST}
    r3: dict[int, PresignRound3] = {}
    direct3: dict[tuple[int, int], Any] = {}
    for p, state2 in r2.items():
        peers = [q for q in signers if q != p]
        r3[p], out = state2.next([direct2[(q, p)] for q in peers])
        direct3.update({(p, m.header.recipient): m for m in out})
    pristine3 = {p: _fresh(r3[p]) for p in HONEST}
    # The honest run completes, so every abort below comes from the forged field alone.
    r4 = {p: state3.next([direct3[(q, p)] for q in signers if q != p]) for p, state3 in r3.items()}
    for p, (state4, _) in r4.items():
        state4.finish([message for q, (_, message) in r4.items() if q != p])
    return Run(pristine1, pristine2, pristine3, broadcast1, direct1, direct2, direct3)


def _fresh(state: Any) -> Any:
    # A round object spends itself by clearing its own secret attribute and never mutates
    # what it shares with its copies, so a shallow copy is a fresh party at that round
    # (a deep copy cannot copy libsecp256k1's point objects).
    return copy.copy(state)


def _forge(message: Any, proof: str, field: str) -> Any:
    payload = dict(message.payload)
    payload[proof] = {**payload[proof], field: HUGE}
    return replace(message, payload=payload)


def _culprits(action: Any) -> tuple[int, ...]:
    with pytest.raises(ProtocolAbort) as info:
        action()
    return info.value.culprits


@pytest.mark.usefixtures("no_huge_exponent")
@pytest.mark.parametrize("field", _ENC_FIELDS)
def test_oversized_round1_enc_field_names_only_the_sender(run: Run, field: str) -> None:
    for me in HONEST:
        other = 3 - me
        state = _fresh(run.round1[me])
        forged = _forge(run.direct1[(CHEATER, me)], "enc_proof", field)
        broadcasts = [run.broadcast1[other], run.broadcast1[CHEATER]]
        proofs = [run.direct1[(other, me)], forged]
        assert _culprits(lambda s=state, b=broadcasts, d=proofs: s.next(b, d)) == (CHEATER,)


_ROUND2_CASES = [
    *(("aff_g_proof", f) for f in _AFF_G_FIELDS),
    *(("aff_g_hat_proof", f) for f in _AFF_G_FIELDS),
    *(("log_star_proof", f) for f in _LOG_STAR_FIELDS),
]


@pytest.mark.usefixtures("no_huge_exponent")
@pytest.mark.parametrize(("proof", "field"), _ROUND2_CASES)
def test_oversized_round2_field_names_only_the_sender(run: Run, proof: str, field: str) -> None:
    for me in HONEST:
        other = 3 - me
        state = _fresh(run.round2[me])
        received = [run.direct2[(other, me)], _forge(run.direct2[(CHEATER, me)], proof, field)]
        assert _culprits(lambda s=state, r=received: s.next(r)) == (CHEATER,)


@pytest.mark.usefixtures("no_huge_exponent")
@pytest.mark.parametrize("field", _LOG_STAR_FIELDS)
def test_oversized_round3_log_star_field_names_only_the_sender(run: Run, field: str) -> None:
    for me in HONEST:
        other = 3 - me
        state = _fresh(run.round3[me])
        forged = _forge(run.direct3[(CHEATER, me)], "log_star_proof", field)
        received = [run.direct3[(other, me)], forged]
        assert _culprits(lambda s=state, r=received: s.next(r)) == (CHEATER,)
