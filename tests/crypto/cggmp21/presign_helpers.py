"""Presigning run by hand for the malicious-signer tests: every signer through rounds 1 to
3, with a cheater who may change its round-3 values, per recipient, and prove ``ψ''``
for what each recipient gets (as a signer that knows its own ``k`` can).

White-box on purpose: the cheater reads its own round state (``_secret``, ``_own``), the
way multi-party-sig's tests give a malicious party its own hooks.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from shardvault.crypto.group import SECP256K1
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.cggmp21.messages import PresignRound3Message, PresignRound4Message
from shardvault.crypto.protocols.cggmp21.presign import (
    PresignRound1,
    PresignRound2,
    PresignRound3,
    PresignRound4,
)
from shardvault.crypto.protocols.cggmp21.presign_state import round3_context, round3_view
from shardvault.crypto.zk import log_star

RNG = secrets.token_bytes
CURVE = SECP256K1

Changes = Mapping[str, int]
"""How a cheater changes its round-3 values: ``delta`` adds that integer to ``δ``, ``S``
adds that multiple of the generator to ``S``."""


def _changed(delta: Any, S: Any, changes: Changes) -> tuple[Any, Any]:
    new_delta = delta + CURVE.scalar(changes.get("delta", 0))
    step = changes.get("S", 0)
    return new_delta, (S + CURVE.generator() * CURVE.scalar(step) if step else S)


def forge_round3(
    state2: PresignRound2,
    received: Sequence[Any],
    per_recipient: Mapping[int, Changes],
    claim: Changes | None = None,
    honest_next: Callable[..., Any] = PresignRound2.next,
) -> tuple[PresignRound3, list[PresignRound3Message]]:
    """The cheater's round 2: run honestly (``honest_next``: the unpatched round, for a
    test that patches it), then send each recipient in ``per_recipient`` the changed
    values with a ``ψ''`` proved for them; ``claim`` (if given) replaces the values the
    cheater keeps as its own, which it reports for itself in round 4."""
    k, _, _, rho, _, _ = state2._secret  # type: ignore[misc]
    state3, out = honest_next(state2, received)
    s = state3._s
    delta, Delta, S, F_sent = state3._own
    forged = []
    for message in out:
        changes = per_recipient.get(int(message.header.recipient or 0))
        if changes is None:
            forged.append(message)
            continue
        new_delta, new_S = _changed(delta, S, changes)
        context = round3_context(s, s.me, round3_view(new_delta, Delta, new_S, F_sent))
        setup = s.key.aux[message.header.recipient].ring_pedersen  # type: ignore[index]
        proof = log_star.prove(
            context,
            CURVE,
            s.key.paillier_secret,
            setup,
            state3._Ks[s.me],
            Delta,
            state3._Gamma,
            k.value,
            rho,
            RNG,
        )
        payload = {
            **message.payload,
            "delta": new_delta.to_bytes(),
            "S": new_S.to_bytes(),
            "log_star_proof": proof.to_wire(),
        }
        forged.append(replace(message, payload=payload))
    if claim is not None:
        claimed_delta, claimed_S = _changed(delta, S, claim)
        state3._own = (claimed_delta, Delta, claimed_S, F_sent)
    return state3, forged


@dataclass
class Round4:
    """Every signer's round-4 state and broadcast."""

    states: dict[int, PresignRound4]
    messages: dict[int, PresignRound4Message]

    def others(self, me: int) -> list[PresignRound4Message]:
        return [m for p, m in self.messages.items() if p != me]


def run_to_round4(
    keys: Sequence[KeyShare],
    *,
    cheater: int | None = None,
    per_recipient: Mapping[int, Changes] | None = None,
    claim: Changes | None = None,
    mask: int = 0,
    chi_mask: int = 0,
) -> Round4:
    """Every signer through round 3. ``cheater`` (if any) adds ``mask`` to its γ-MtA mask
    sum and ``chi_mask`` to its x-MtA one (a wrong ``δ`` or ``χ`` that every proof still
    supports) and changes its round-3 values as :func:`forge_round3` does."""
    signers = [k.party for k in keys]
    sid = RNG(32)
    r1 = {k.party: PresignRound1(k, signers, sid, RNG) for k in keys}
    proofs = [m for r in r1.values() for m in r.proofs]
    r2 = {
        p: r.next(
            [o.message for q, o in r1.items() if q != p],
            [m for m in proofs if m.header.recipient == p],
        )
        for p, r in r1.items()
    }
    d2 = [m for _, out in r2.values() for m in out]
    r3: dict[int, tuple[PresignRound3, list[PresignRound3Message]]] = {}
    for p, (state2, _) in r2.items():
        received = [m for m in d2 if m.header.recipient == p]
        if p == cheater:
            k, gamma, w, rho, beta_sum, beta_hat_sum = state2._secret  # type: ignore[misc]
            state2._secret = (k, gamma, w, rho, beta_sum + mask, beta_hat_sum + chi_mask)
            r3[p] = forge_round3(state2, received, per_recipient or {}, claim)
        else:
            r3[p] = state2.next(received)
    d3 = [m for _, out in r3.values() for m in out]
    states: dict[int, PresignRound4] = {}
    messages: dict[int, PresignRound4Message] = {}
    for p, (state3, _) in r3.items():
        states[p], messages[p] = state3.next([m for m in d3 if m.header.recipient == p])
    return Round4(states, messages)
