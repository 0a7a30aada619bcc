"""Identifiable abort on the χ side of presigning: a failed ``Σ S_j = δ·X`` check is
followed by the Πmul*/Πdec identification round (CGGMP21 ePrint 2021/060, Figure 8,
output "Otherwise", with Figures 30 and 31), which names the cheater at every honest party.

The cheaters here pass every round-2 and round-3 proof (Πenc, Πaff-g, Πlog*) and the δ
check; they corrupt only what those proofs cannot see: the point ``S_j`` they send, or the
x-MtA mask they subtract inside their own key-share multiplication. In the identification
round they then lie in every way the message allows (a re-broadcast ``D̂``/``F̂``, ``Ĥ``, a
proof field, the list shapes) or try their best honest-looking proofs; each time the honest
parties name exactly the cheater, and never an honest party. An honest identification
message names nobody; a hypothesis fuzz of its fields lets only ``ProtocolAbort`` escape;
and the co-signer driver runs the round over signed envelopes.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shardvault.cosigner.cggmp21 import presign_driver
from shardvault.crypto.channel import Directory, PartyIdentity, ReplayGuard, peek_header
from shardvault.crypto.errors import MisuseError, ProtocolAbort
from shardvault.crypto.group import SECP256K1, Point
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.cggmp21.messages import PresignChiProofMessage
from shardvault.crypto.protocols.cggmp21.presign import (
    PresignChiIdentificationRequired,
    PresignIdentifyChi,
    PresignRound2,
    PresignRound4,
)
from shardvault.crypto.protocols.cggmp21.presign_state import PublicChi
from shardvault.crypto.protocols.common import session_id
from shardvault.crypto.rng import system_random
from shardvault.crypto.zk import dec
from tests.crypto.cggmp21.ecdsa_helpers import make_key_shares
from tests.crypto.cggmp21.presign_helpers import Round4, run_to_round4
from tests.crypto.cggmp21.test_fuzz import wire_values

RNG = secrets.token_bytes
G = SECP256K1


@pytest.fixture(scope="module")
def shares() -> list[KeyShare]:
    return make_key_shares(2, 2, "identify-chi")


@pytest.fixture(scope="module")
def shares3() -> list[KeyShare]:
    return make_key_shares(3, 3, "identify-chi-three")


def _with(message: Any, **changes: Any) -> Any:
    return replace(message, payload={**message.payload, **changes})


def _fail_chi(run: Round4, me: int) -> PresignIdentifyChi:
    with pytest.raises(PresignChiIdentificationRequired) as info:
        run.states[me].finish(run.others(me))
    assert info.value.culprits == ()
    return info.value.identification


def _cheater_message(
    state: PresignRound4, agreed: PresignIdentifyChi, S_claimed: Point | None = None
) -> PresignChiProofMessage:
    """The cheater's best effort: honest proofs from its own state, for the ``S`` its
    ciphertexts really support (``S_claimed``), against the agreed round-3 values."""
    public = agreed._public
    Ss = dict(public.Ss)
    if S_claimed is not None:
        Ss[state._s.me] = S_claimed
    inputs = state._chi_inputs
    assert inputs is not None
    return PresignIdentifyChi(
        state._s, inputs=inputs, public=PublicChi(public.Gamma, public.Ks, Ss)
    ).message


def _names(
    identification: PresignIdentifyChi,
    others: list[PresignChiProofMessage],
    reason: str | None = None,
) -> tuple[int, ...]:
    with pytest.raises(ProtocolAbort, match=reason) as info:
        identification.finish(others)
    return info.value.culprits


def _forged_S(shares: list[KeyShare]) -> tuple[PresignIdentifyChi, PresignRound4, Point]:
    """Party 2 sends party 1 ``S_2 + G`` (and says so in round 4, so the values are agreed);
    returns party 1's identification, party 2's state and party 2's true ``S_2``."""
    run = run_to_round4(shares, cheater=2, per_recipient={1: {"S": 1}}, claim={"S": 1})
    state2 = run.states[2]
    true_S2 = state2._Ss[2] - G.generator()
    return _fail_chi(run, 1), state2, true_S2


def test_honest_presigning_never_reaches_the_chi_identification(shares: list[KeyShare]) -> None:
    run = run_to_round4(shares)
    for me, state in run.states.items():
        presignature = state.finish(run.others(me))
        assert not presignature.spent


def test_inconsistent_S_is_named(shares: list[KeyShare]) -> None:
    ident1, state2, true_S2 = _forged_S(shares)
    # Named by its Πdec: T_2 decrypts to the discrete log of the true S_2, not the sent one.
    assert _names(ident1, [_cheater_message(state2, ident1, true_S2)], "x-MtA proofs") == (2,)
    with pytest.raises(MisuseError):
        ident1.finish([_cheater_message(state2, ident1, true_S2)])


def test_wrong_mask_inside_the_key_share_multiplication_is_named(shares: list[KeyShare]) -> None:
    run = run_to_round4(shares, cheater=2, chi_mask=1)
    # Every honest party fails the check (the cheater's S_2 is what it computed).
    ident1 = _fail_chi(run, 1)
    _, chi = run.states[2]._secret  # type: ignore[misc]
    true_S2 = ident1._public.Gamma * (chi + G.scalar(1))
    assert _names(ident1, [_cheater_message(run.states[2], ident1, true_S2)], "x-MtA proofs") == (
        2,
    )


def test_cheater_cannot_prove_the_false_statement(shares: list[KeyShare]) -> None:
    # Run honestly from the cheater's state against the agreed (forged) S_2, the prover
    # refuses outright: there is no valid Πdec for it.
    ident1, state2, _ = _forged_S(shares)
    with pytest.raises(MisuseError):
        _cheater_message(state2, ident1)


def _lie(message: PresignChiProofMessage, field: str) -> PresignChiProofMessage:
    payload = message.payload
    if field == "H":
        return _with(message, H=payload["H"] * 2)
    if field == "H out of range":
        return _with(message, H=0)
    if field == "D_hat out of range":
        return _with(message, D_hat=[v and 1 << 8192 for v in payload["D_hat"]])
    if field in ("D_hat", "F_hat"):
        return _with(message, **{field: [v * 4 if v else v for v in payload[field]]})
    if field == "lengths":
        return _with(message, D_hat=payload["D_hat"][:1])
    if field == "types":
        return _with(message, F_hat=[b"x" for _ in payload["F_hat"]])
    proofs = [dict(p) for p in payload[field]]
    for p in proofs:
        if p:
            p["z1" if field != "aff_g_hat_proofs" else "z2"] += 1
    return _with(message, **{field: proofs})


@pytest.mark.parametrize(
    "field",
    [
        "H",
        "H out of range",
        "D_hat out of range",
        "D_hat",
        "F_hat",
        "aff_g_hat_proofs",
        "mul_star_proofs",
        "dec_proofs",
        "lengths",
        "types",
    ],
)
def test_lying_in_the_identification_message_is_named(shares: list[KeyShare], field: str) -> None:
    ident1, state2, true_S2 = _forged_S(shares)
    assert _names(ident1, [_lie(_cheater_message(state2, ident1, true_S2), field)]) == (2,)


@pytest.mark.slow
@pytest.mark.parametrize("cheat", ["forged S", "wrong mask"])
def test_three_signers_name_only_the_cheater(shares3: list[KeyShare], cheat: str) -> None:
    cheater = 3
    if cheat == "forged S":
        run = run_to_round4(
            shares3, cheater=cheater, per_recipient={1: {"S": 1}, 2: {"S": 1}}, claim={"S": 1}
        )
        true_S = run.states[cheater]._Ss[cheater] - G.generator()
    else:
        run = run_to_round4(shares3, cheater=cheater, chi_mask=1)
    honest = [_fail_chi(run, p) for p in (1, 2)]
    if cheat == "wrong mask":
        _, chi = run.states[cheater]._secret  # type: ignore[misc]
        true_S = honest[0]._public.Gamma * (chi + G.scalar(1))
    cheater_message = _cheater_message(run.states[cheater], honest[0], true_S)
    broadcast = [h.message for h in honest] + [cheater_message]
    for me, ident in zip((1, 2), honest, strict=True):
        others = [m for m in broadcast if m.header.sender != me]
        assert _names(ident, others, "x-MtA proofs") == (cheater,)


def _pump(drivers: dict[int, Any], initial: list[bytes]) -> None:
    queue = list(initial)
    while queue:
        envelope = queue.pop(0)
        header = peek_header(envelope)
        targets = (
            [header.recipient]
            if header.recipient is not None
            else [p for p in drivers if p != header.sender]
        )
        for target in targets:
            if drivers[target].done:
                continue
            try:
                queue.extend(drivers[target].receive(envelope))
            except ProtocolAbort:
                # The driver recorded the abort (``.abort``) and is now terminal.
                continue


@pytest.mark.slow
def test_cosigner_driver_runs_the_chi_identification(
    shares3: list[KeyShare], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The co-signer driver (signed envelopes) runs the χ identification as its round 5."""
    cheater = 3
    original_next = PresignRound2.next
    original_prove = dec.prove

    def cheating_next(self: PresignRound2, received: Any) -> Any:
        # The cheater subtracts a wrong x-MtA mask inside its own χ (all proofs stay valid).
        if self._s.me == cheater:
            k, gamma, w, rho, beta_sum, beta_hat_sum = self._secret
            self._secret = (k, gamma, w, rho, beta_sum, beta_hat_sum + 1)
        return original_next(self, received)

    def best_effort_prove(
        context: Any,
        group: Any,
        prover: Any,
        setup: Any,
        C: int,
        B: Any,
        Y: Any,
        bits: int,
        rng: Any,
    ) -> Any:
        # The cheater proves for the point its ciphertext really supports (for an honest
        # party this is the very point it was asked about).
        true_Y = B * group.scalar(prover.decrypt(C))
        return original_prove(context, group, prover, setup, C, B, true_Y, bits, rng)

    monkeypatch.setattr(PresignRound2, "next", cheating_next)
    monkeypatch.setattr(dec, "prove", best_effort_prove)
    ids = {k.party: PartyIdentity.generate(k.party, system_random) for k in shares3}
    directory = Directory.of({p: i.public for p, i in ids.items()})
    sid = session_id(RNG(32))
    drivers = {
        k.party: presign_driver(
            key=k,
            identity=ids[k.party],
            directory=directory,
            guard=ReplayGuard(),
            session=sid,
            signers=[1, 2, 3],
            rng=system_random,
        )
        for k in shares3
    }
    _pump(drivers, [e for d in drivers.values() for e in d.start()])
    for party in (1, 2):
        assert drivers[party].done
        assert drivers[party].abort is not None
        assert drivers[party].abort.culprits == (cheater,)
        assert "x-MtA proofs" in drivers[party].abort.reason


_HONEST: list[Any] = []


def _honest_identification_pair(keys: list[KeyShare]) -> tuple[PresignRound4, Any, Any]:
    """Party 1's round-4 state, the agreed public values and party 2's identification
    message, for an honest run forced into the χ identification (test only: the check
    did not fail, so the round is built directly from the round-4 states)."""
    if not _HONEST:
        states = run_to_round4(keys).states
        public = PublicChi(states[1]._public.Gamma, states[1]._Ks, dict(states[1]._Ss))
        inputs2 = states[2]._chi_inputs
        assert inputs2 is not None
        message2 = PresignIdentifyChi(states[2]._s, inputs=inputs2, public=public).message
        _HONEST.extend([states[1], public, message2])
    return _HONEST[0], _HONEST[1], _HONEST[2]


def _fresh_identification(state: PresignRound4, public: Any) -> PresignIdentifyChi:
    inputs = state._chi_inputs
    assert inputs is not None
    return PresignIdentifyChi(state._s, inputs=inputs, public=public)


def test_an_honest_signer_is_never_named(shares: list[KeyShare]) -> None:
    state1, agreed, message2 = _honest_identification_pair(shares)
    assert _names(_fresh_identification(state1, agreed), [message2]) == ()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.sampled_from(list(PresignChiProofMessage.fields)), value=wire_values)
def test_identification_handler_raises_only_typed_errors(which: str, value: Any) -> None:
    """Fuzz (hypothesis): one field of an honest identification message replaced by an
    arbitrary wire value; the judge answers with ``ProtocolAbort`` only, naming the sender
    unless the replacement changed nothing that is judged."""
    state1, agreed, message2 = _honest_identification_pair(_shares_for_fuzz())
    culprits = _names(_fresh_identification(state1, agreed), [_with(message2, **{which: value})])
    assert culprits in ((), (2,))
    if which == "H" and value != message2.payload[which]:
        assert culprits == (2,)


_FUZZ_SHARES: list[KeyShare] = []


def _shares_for_fuzz() -> list[KeyShare]:
    if not _FUZZ_SHARES:
        _FUZZ_SHARES.extend(make_key_shares(2, 2, "identify-chi-fuzz"))
    return _FUZZ_SHARES
