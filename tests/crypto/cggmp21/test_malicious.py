"""A malicious signer for every check of presigning: each abort names the culprit.

Every test runs honest parties, replaces one message of party 2 (or 3) with a mutated
copy, and asserts that the honest receiver's abort names exactly that party. The checks
covered: key/epoch binding, out-of-range ciphertexts, a bad Πenc, Πaff-g (both), Πlog*
(round 2 and round 3) proof, an inconsistent broadcast shown to two peers (echo), and a
message replayed from another session.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from shardvault.crypto.errors import MisuseError, ProtocolAbort
from shardvault.crypto.group import SECP256K1
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.cggmp21.local import run_presign
from shardvault.crypto.protocols.cggmp21.presign import (
    PresignIdentificationRequired,
    PresignRound1,
)
from shardvault.crypto.protocols.cggmp21.sign import SignRound
from tests.crypto.cggmp21.ecdsa_helpers import make_key_shares
from tests.crypto.cggmp21.presign_helpers import run_to_round4

RNG = secrets.token_bytes


@pytest.fixture(scope="module")
def shares() -> list[KeyShare]:
    return make_key_shares(2, 2, "malicious")


def _round1(shares: list[KeyShare], session: bytes | None = None) -> list[PresignRound1]:
    sid = session or RNG(32)
    return [PresignRound1(k, [1, 2], sid, RNG) for k in shares]


def _abort(action: Callable[[], Any]) -> tuple[int, ...]:
    with pytest.raises(ProtocolAbort) as info:
        action()
    return info.value.culprits


def _with(message: Any, **changes: Any) -> Any:
    """``message`` with fields changed: a typed message's attributes, or a presigning
    message's payload map."""
    if hasattr(message, "payload"):
        return replace(message, payload={**message.payload, **changes})
    return replace(message, **changes)


def _proof(message: Any, field: str, **changes: Any) -> Any:
    return _with(message, **{field: {**message.payload[field], **changes}})


def test_out_of_range_ciphertext_in_round1(shares: list[KeyShare]) -> None:
    r = _round1(shares)
    n2 = shares[1].aux[2].paillier.n_squared
    for bad in (0, n2, n2 + 5, shares[1].aux[2].paillier.n):
        forged = _with(r[1].message, K=bad)
        assert _abort(lambda f=forged: _round1_fresh(shares, r, 0).next([f], r[1].proofs)) == (2,)


def _round1_fresh(shares: list[KeyShare], r: list[PresignRound1], index: int) -> PresignRound1:
    # A round object refuses reuse, so each attempt gets a fresh party 1 in the same session.
    return PresignRound1(shares[index], [1, 2], bytes(r[1].message.header.session_id), RNG)


def test_bad_enc_proof(shares: list[KeyShare]) -> None:
    r = _round1(shares)
    proof = r[1].proofs[0]
    z1 = proof.payload["enc_proof"]["z1"]
    assert _abort(lambda: r[0].next([r[1].message], [_proof(proof, "enc_proof", z1=z1 + 1)])) == (
        2,
    )
    r = _round1(shares)
    proof = r[1].proofs[0]
    too_big = _proof(proof, "enc_proof", z1=2 ** (256 + 512) + 1)
    assert _abort(lambda: r[0].next([r[1].message], [too_big])) == (2,)


def test_oversized_enc_response_names_the_sender(shares: list[KeyShare]) -> None:
    """A Πenc z3 of 2^100000 is refused by its range check, naming the prover."""
    r = _round1(shares)
    forged = _proof(r[1].proofs[0], "enc_proof", z3=1 << 100_000)
    with pytest.raises(ProtocolAbort) as info:
        r[0].next([r[1].message], [forged])
    assert info.value.culprits == (2,)
    assert "z3 is outside" in info.value.reason


def test_presigning_with_another_epoch_is_refused(shares: list[KeyShare]) -> None:
    r = _round1(shares)
    assert _abort(lambda: r[0].next([_with(r[1].message, epoch=7)], r[1].proofs)) == (2,)


def test_message_replayed_from_another_session(shares: list[KeyShare]) -> None:
    old = _round1(shares)
    new = _round1(shares)
    assert _abort(lambda: new[0].next([old[1].message], old[1].proofs)) == (2,)


def _to_round2(shares: list[KeyShare]) -> tuple[Any, Any]:
    r = _round1(shares)
    s1, _ = r[0].next([r[1].message], r[1].proofs)
    _, out2 = r[1].next([r[0].message], r[0].proofs)
    return s1, out2[0]


@pytest.mark.parametrize("field", ["aff_g_proof", "aff_g_hat_proof", "log_star_proof"])
def test_bad_round2_proof(shares: list[KeyShare], field: str) -> None:
    s1, message = _to_round2(shares)
    forged = _proof(message, field, z1=message.payload[field]["z1"] + 1)
    assert _abort(lambda: s1.next([forged])) == (2,)


@pytest.mark.parametrize("field", ["D", "F", "D_hat", "F_hat"])
def test_out_of_range_ciphertext_in_round2(shares: list[KeyShare], field: str) -> None:
    s1, message = _to_round2(shares)
    assert _abort(lambda: s1.next([_with(message, **{field: 0})])) == (2,)


def test_bad_round3_log_star_proof(shares: list[KeyShare]) -> None:
    r = _round1(shares)
    a1, out1 = r[0].next([r[1].message], r[1].proofs)
    a2, out2 = r[1].next([r[0].message], r[0].proofs)
    b1, _ = a1.next(out2)
    _, out3 = a2.next(out1)
    forged = _proof(out3[0], "log_star_proof", z3=out3[0].payload["log_star_proof"]["z3"] + 1)
    assert _abort(lambda: b1.next([forged])) == (2,)


@pytest.mark.slow
def test_inconsistent_broadcast_shown_to_two_peers() -> None:
    """Party 3 shows party 2 a different G_3 than it showed party 1; the echo names it."""
    shares3 = make_key_shares(3, 3, "malicious-echo")
    sid = RNG(32)
    r = [PresignRound1(k, [1, 2, 3], sid, RNG) for k in shares3]
    third = r[2]
    other_g = shares3[2].paillier_secret.encrypt(5, RNG)[0]
    to_party2 = _with(third.message, G=other_g)
    proofs = [m for x in r for m in x.proofs]

    def direct(me: int) -> list[Any]:
        return [m for m in proofs if m.header.recipient == me]

    s1, out1 = r[0].next([r[1].message, third.message], direct(1))
    s2, out2 = r[1].next([r[0].message, to_party2], direct(2))
    _, out3 = r[2].next([r[0].message, r[1].message], direct(3))
    to_1 = [m for m in out2 + out3 if m.header.recipient == 1]
    # Party 1 cannot tell whether party 3 equivocated or party 2 misreports: both named.
    seen_by_1 = _abort(lambda: s1.next(to_1))
    assert seen_by_1 == (2, 3)
    # Party 2 accuses parties 1 and 3 likewise; the honest parties' accusations meet in 3.
    to_2 = [m for m in out1 + out3 if m.header.recipient == 2]
    seen_by_2 = _abort(lambda: s2.next(to_2))
    assert seen_by_2 == (1, 3)
    assert set(seen_by_1) & set(seen_by_2) == {3}


def test_party_is_terminal_after_an_abort(shares: list[KeyShare]) -> None:
    r = _round1(shares)
    _abort(lambda: r[0].next([_with(r[1].message, K=0)], r[1].proofs))
    with pytest.raises(MisuseError):
        r[0].next([r[1].message], r[1].proofs)


def test_signing_echo_exposes_a_misreported_presignature(shares: list[KeyShare]) -> None:
    presignatures = run_presign(shares, RNG)
    digest, sid = RNG(32), RNG(32)
    rounds = [SignRound(k, p, digest, sid) for k, p in zip(shares, presignatures, strict=True)]
    forged = replace(rounds[1].message, echo=(bytes(32), rounds[1].message.echo[1]))
    # Party 2 misreports party 1's round-3 values, which party 1 itself sent.
    assert _abort(lambda: rounds[0].finish([forged])) == (2,)


def _to_round3(shares: list[KeyShare]) -> tuple[Any, Any, Any]:
    """Both parties through round 2; returns party 1's round-3 state, party 2's round-3
    state and party 2's round-3 message to party 1."""
    r = _round1(shares)
    a1, out1 = r[0].next([r[1].message], r[1].proofs)
    a2, out2 = r[1].next([r[0].message], r[0].proofs)
    b1, _ = a1.next(out2)
    b2, out3 = a2.next(out1)
    return b1, b2, out3[0]


def _identification_after_wrong_delta(shares: list[KeyShare]) -> tuple[Any, Any]:
    """Party 2 adds 1 to its γ-MtA mask sum: its δ_2 is wrong, consistently and with every
    proof valid, so round 4 agrees and both parties' δ checks fail. Returns party 1's
    identification and party 2's reveal (its true nonce-side values)."""
    run = run_to_round4(shares, cheater=2, mask=1)
    identifications = []
    for me in (1, 2):
        with pytest.raises(PresignIdentificationRequired) as info:
            run.states[me].finish(run.others(me))
        assert info.value.culprits == ()
        identifications.append(info.value.identification)
    return identifications[0], identifications[1].message


def test_wrong_delta_is_identified(shares: list[KeyShare]) -> None:
    ident1, reveal2 = _identification_after_wrong_delta(shares)
    assert _abort(lambda: ident1.finish([reveal2])) == (2,)
    with pytest.raises(MisuseError):
        ident1.finish([reveal2])


@pytest.mark.parametrize("field", ["k", "gamma", "betas", "nonces"])
def test_lying_in_the_reveal_is_identified(shares: list[KeyShare], field: str) -> None:
    ident1, reveal2 = _identification_after_wrong_delta(shares)
    payload = reveal2.payload
    if field in ("k", "gamma"):
        value: Any = SECP256K1.scalar(int.from_bytes(payload[field], "big") + 1).to_bytes()
    else:
        value = [v + 1 if v else v for v in payload[field]]
    assert _abort(lambda: ident1.finish([_with(reveal2, **{field: value})])) == (2,)


def test_round3_list_of_f_must_match_round2(shares: list[KeyShare]) -> None:
    b1, _, message = _to_round3(shares)
    forged = _with(message, F_sent=[v + 1 if v else v for v in message.payload["F_sent"]])
    assert _abort(lambda: b1.next([forged])) == (2,)


@pytest.mark.slow
def test_wrong_delta_among_three_signers_names_only_the_cheater() -> None:
    """Signer 3's δ is wrong (consistently, every proof valid): round 4 agrees, every δ
    check fails, and the identification round names signer 3 at both honest signers."""
    run = run_to_round4(make_key_shares(3, 3, "identify-three"), cheater=3, mask=5)
    identifications = {}
    for me in (1, 2, 3):
        with pytest.raises(PresignIdentificationRequired) as info:
            run.states[me].finish(run.others(me))
        identifications[me] = info.value.identification
    reveals = [i.message for i in identifications.values()]
    for me in (1, 2):
        others = [m for m in reveals if m.header.sender != me]
        ident = identifications[me]
        assert _abort(lambda ident=ident, others=others: ident.finish(others)) == (3,)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("delta", b"\xff" * 32),
        ("Delta", b"\x02" + bytes(32)),
        ("S", b"short"),
        ("F_sent", [1]),
        ("F_sent", "not a list"),
        ("log_star_proof", {"Y": b"x"}),
    ],
)
def test_malformed_round3_message_names_the_sender(
    shares: list[KeyShare], field: str, value: Any
) -> None:
    b1, _, message = _to_round3(shares)
    assert _abort(lambda: b1.next([_with(message, **{field: value})])) == (2,)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("presignature_id", bytes(32)),
        ("sigma", b"\xff" * 32),
        ("sigma", b"short"),
        ("echo", "not a list"),
    ],
)
def test_malformed_signature_share_names_the_sender(
    shares: list[KeyShare], field: str, value: Any
) -> None:
    presignatures = run_presign(shares, RNG)
    digest, sid = RNG(32), RNG(32)
    rounds = [SignRound(k, p, digest, sid) for k, p in zip(shares, presignatures, strict=True)]
    assert _abort(lambda: rounds[0].finish([_with(rounds[1].message, **{field: value})])) == (2,)
