"""Every check FROST makes on a peer's message, fed a mutated honest message.

Each test runs honest parties, corrupts one message of one party (the culprit), delivers it,
and asserts that the receiving party aborts naming exactly that culprit. Where no culprit
can be proven (a sender outside the session), the error is a TransportError instead.
"""

import dataclasses
import secrets

import cbor2
import nacl.signing
import pytest

from shardvault.crypto.errors import (
    EncodingError,
    MessageDigestMismatch,
    MisuseError,
    ProtocolAbort,
    TransportError,
)
from shardvault.crypto.group import ED25519
from shardvault.crypto.protocols.common import PartyId, SessionId
from shardvault.crypto.protocols.frost import (
    ED25519_SHA512,
    SECP256K1_BIP340,
    Aggregator,
    Ciphersuite,
    DkgRound1,
    DkgRound1Message,
    DkgRound2Message,
    DkgRound3Message,
    SignatureShareMessage,
    SignRound1,
)
from shardvault.crypto.protocols.frost.local import run_dkg
from shardvault.crypto.protocols.frost.signing import message_digest

SUITES = [ED25519_SHA512, SECP256K1_BIP340]
RNG = secrets.token_bytes
PARTIES = [1, 2, 3]
CULPRIT = PartyId(2)
VICTIM = PartyId(1)
ED25519_ORDER_8_POINT = bytes.fromhex(
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"
)


def _identity_like(suite: Ciphersuite) -> bytes:
    # Ed25519's identity encoding; for secp256k1, a 33-byte string that is not a point.
    return b"\x01" + bytes(31) if suite is ED25519_SHA512 else b"\x02" + (5).to_bytes(32, "big")


def _with_header(message, **changes):  # type: ignore[no-untyped-def]
    return dataclasses.replace(message, header=dataclasses.replace(message.header, **changes))


def _round1(suite: Ciphersuite, min_signers: int = 2, session: bytes | None = None):  # type: ignore[no-untyped-def]
    sid = session or RNG(32)
    return sid, {p: DkgRound1(suite, p, min_signers, PARTIES, sid, RNG) for p in PARTIES}


def _deliver_round1(states, victim, replace):  # type: ignore[no-untyped-def]
    messages = [s.message for p, s in states.items() if p != victim]
    messages = [replace(m) if m.header.sender == CULPRIT else m for m in messages]
    return states[victim].next(messages)


def _expect_abort(culprit: int, call, match: str | None = None) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProtocolAbort, match=match) as info:
        call()
    assert info.value.culprits == (culprit,)


# DKG round 1 -------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_dkg_bad_proof_of_knowledge(suite: Ciphersuite) -> None:
    _, states = _round1(suite)
    bad_mu = (suite.group.decode_scalar(states[CULPRIT].message.proof_mu) + 1).to_bytes()
    _expect_abort(
        CULPRIT,
        lambda: _deliver_round1(states, VICTIM, lambda m: dataclasses.replace(m, proof_mu=bad_mu)),
        "proof of knowledge",
    )


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_dkg_proof_from_another_session_is_refused(suite: Ciphersuite) -> None:
    # The culprit replays its whole broadcast from an earlier ceremony, re-headed for this one.
    sid, states = _round1(suite)
    _, old = _round1(suite)
    replayed = _with_header(old[CULPRIT].message, session_id=SessionId(sid))
    _expect_abort(
        CULPRIT,
        lambda: _deliver_round1(states, VICTIM, lambda m: replayed),
        "proof of knowledge",
    )


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_dkg_bad_commitment_point(suite: Ciphersuite) -> None:
    _, states = _round1(suite)
    bad = (_identity_like(suite), *states[CULPRIT].message.commitment[1:])
    _expect_abort(
        CULPRIT,
        lambda: _deliver_round1(states, VICTIM, lambda m: dataclasses.replace(m, commitment=bad)),
        "malformed",
    )


def test_dkg_small_order_commitment_point() -> None:
    _, states = _round1(ED25519_SHA512)
    bad = (*states[CULPRIT].message.commitment[:-1], ED25519_ORDER_8_POINT)
    _expect_abort(
        CULPRIT,
        lambda: _deliver_round1(states, VICTIM, lambda m: dataclasses.replace(m, commitment=bad)),
        "malformed",
    )


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_dkg_commitment_of_wrong_threshold(suite: Ciphersuite) -> None:
    _, states = _round1(suite)
    extra = suite.group.base_multiply(suite.group.scalar(7)).to_bytes()
    bad = (*states[CULPRIT].message.commitment, extra)
    _expect_abort(
        CULPRIT,
        lambda: _deliver_round1(states, VICTIM, lambda m: dataclasses.replace(m, commitment=bad)),
        "coefficients",
    )


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"session_id": SessionId(bytes(32))}, "another session"),
        ({"round": 2}, "round"),
        ({"protocol": "frost/sign"}, "protocol"),
        ({"version": 99}, "version"),
        ({"recipient": PartyId(1)}, "recipient"),
    ],
    ids=["session", "round", "protocol", "version", "recipient"],
)
def test_dkg_wrong_header(change: dict, match: str) -> None:  # type: ignore[type-arg]
    _, states = _round1(ED25519_SHA512)
    _expect_abort(
        CULPRIT, lambda: _deliver_round1(states, VICTIM, lambda m: _with_header(m, **change)), match
    )


def test_dkg_unknown_sender_is_transport_error() -> None:
    _, states = _round1(ED25519_SHA512)
    with pytest.raises(TransportError):
        _deliver_round1(states, VICTIM, lambda m: _with_header(m, sender=PartyId(9)))


def test_dkg_duplicate_sender_with_different_content() -> None:
    _, states = _round1(ED25519_SHA512)
    honest = [s.message for p, s in states.items() if p != VICTIM]
    forged = dataclasses.replace(states[CULPRIT].message, chain_code_commitment=bytes(32))
    _expect_abort(CULPRIT, lambda: states[VICTIM].next([*honest, forged]), "two different")


# DKG round 2 -------------------------------------------------------------------------------
# (A bad share in round 2 is a complaint judged in round 3: tests/crypto/frost/test_complaints.py.)


def _round2(suite: Ciphersuite):  # type: ignore[no-untyped-def]
    _, states = _round1(suite)
    broadcasts = [s.message for s in states.values()]
    round2, sent = {}, []
    for party, state in states.items():
        round2[party], out = state.next([m for m in broadcasts if m.header.sender != party])
        sent.append(out)
    return round2, sent


def _to(sent: list[DkgRound2Message], victim: int, replace=None):  # type: ignore[no-untyped-def]
    theirs = [m for m in sent if m.header.sender != victim]
    if replace is not None:
        theirs = [replace(m) if m.header.sender == CULPRIT else m for m in theirs]
    return theirs


def test_dkg_malformed_ephemeral_key_is_seen_by_everyone() -> None:
    # A ciphertext whose ephemeral key is not a point is the dealer's fault in plain view:
    # every party names it in round 2, whoever the share was for.
    round2, sent = _round2(SECP256K1_BIP340)

    def corrupt(m: DkgRound2Message) -> DkgRound2Message:
        return dataclasses.replace(m, share_keys=(b"\x02" + bytes(32), *m.share_keys[1:]))

    for party in (VICTIM, 3):
        _expect_abort(
            CULPRIT, lambda p=party: round2[p].next(_to(sent, p, corrupt)), "malformed encrypted"
        )


@pytest.mark.parametrize(
    "change",
    [
        lambda m: dataclasses.replace(m, share_keys=m.share_keys[1:]),
        lambda m: dataclasses.replace(m, share_ciphertexts=(*m.share_ciphertexts, b"x" * 48)),
        lambda m: dataclasses.replace(
            m, share_ciphertexts=(m.share_ciphertexts[0][:-1], *m.share_ciphertexts[1:])
        ),
    ],
    ids=["one-key-short", "one-ciphertext-too-many", "short-ciphertext"],
)
def test_dkg_malformed_share_list_names_the_dealer(change) -> None:  # type: ignore[no-untyped-def]
    round2, sent = _round2(ED25519_SHA512)
    _expect_abort(CULPRIT, lambda: round2[VICTIM].next(_to(sent, VICTIM, change)))


def test_dkg_round2_with_a_recipient_is_refused() -> None:
    round2, sent = _round2(ED25519_SHA512)
    _expect_abort(
        CULPRIT,
        lambda: round2[VICTIM].next(
            _to(sent, VICTIM, lambda m: _with_header(m, recipient=PartyId(1)))
        ),
        "recipient",
    )


def test_dkg_two_different_round2_broadcasts_from_one_sender() -> None:
    round2, sent = _round2(ED25519_SHA512)
    mine = _to(sent, VICTIM)
    other = dataclasses.replace(
        next(m for m in mine if m.header.sender == CULPRIT), chain_code_nonce=bytes(32)
    )
    _expect_abort(CULPRIT, lambda: round2[VICTIM].next([*mine, other]), "two round-2")


def _echo_run(tamper_seen_by: int, reporter_lies: bool = False):  # type: ignore[no-untyped-def]
    """Run round 1 where party ``tamper_seen_by`` sees a different broadcast of the culprit
    (equivocation), or where the reporter lies in its echo; return round 2 and the shares."""
    _, states = _round1(ED25519_SHA512)
    honest = {p: s.message for p, s in states.items()}
    other = dataclasses.replace(honest[CULPRIT], chain_code_commitment=bytes(32))
    round2 = {}
    sent: list[DkgRound2Message] = []
    for party, state in states.items():
        seen = [m for p, m in honest.items() if p != party]
        if party == tamper_seen_by:
            seen = [other if m.header.sender == CULPRIT else m for m in seen]
        round2[party], out = state.next(seen)
        sent.append(out)
    return round2, sent


def test_dkg_equivocation_by_a_third_party_names_both_suspects() -> None:
    # The culprit shows party 1 one broadcast and party 3 another; party 1 learns it from
    # party 3's echo. Without signatures, party 1 cannot tell whether 2 equivocated or 3
    # lies, so both are named; the co-signer settles it from the signed envelopes.
    round2, sent = _echo_run(tamper_seen_by=3)
    with pytest.raises(ProtocolAbort, match="equivocation") as info:
        round2[VICTIM].next(_to(sent, VICTIM))
    assert info.value.culprits == (CULPRIT, 3)


def test_dkg_sender_echoing_its_own_broadcast_differently_is_convicted() -> None:
    round2, sent = _echo_run(tamper_seen_by=-1)
    index = PARTIES.index(CULPRIT)

    def lie(m: DkgRound2Message) -> DkgRound2Message:
        echo = list(m.echo)
        echo[index] = bytes(32)
        return dataclasses.replace(m, echo=tuple(echo))

    _expect_abort(CULPRIT, lambda: round2[VICTIM].next(_to(sent, VICTIM, lie)), "its own")


def test_dkg_false_echo_of_our_own_broadcast_is_convicted() -> None:
    round2, sent = _echo_run(tamper_seen_by=-1)
    index = PARTIES.index(VICTIM)

    def lie(m: DkgRound2Message) -> DkgRound2Message:
        echo = list(m.echo)
        echo[index] = bytes(32)
        return dataclasses.replace(m, echo=tuple(echo))

    _expect_abort(CULPRIT, lambda: round2[VICTIM].next(_to(sent, VICTIM, lie)), "never sent")


def test_dkg_missing_share_is_transport_error() -> None:
    round2, sent = _round2(ED25519_SHA512)
    with pytest.raises(TransportError, match="missing"):
        round2[VICTIM].next([m for m in _to(sent, VICTIM) if m.header.sender != CULPRIT])


def test_dkg_rounds_refuse_reuse() -> None:
    _, states = _round1(ED25519_SHA512)
    messages = [s.message for p, s in states.items() if p != VICTIM]
    states[VICTIM].next(messages)
    with pytest.raises(MisuseError):
        states[VICTIM].next(messages)


@pytest.mark.parametrize(
    ("min_signers", "parties", "me"),
    [(0, [1, 2, 3], 1), (4, [1, 2, 3], 1), (2, [1, 2, 3], 4), (2, [1, 1, 2], 1), (2, [0, 1], 1)],
    ids=["t<1", "t>n", "not-a-party", "duplicate-id", "zero-id"],
)
def test_dkg_refuses_bad_local_parameters(min_signers: int, parties: list[int], me: int) -> None:
    with pytest.raises(MisuseError):
        DkgRound1(ED25519_SHA512, me, min_signers, parties, RNG(32), RNG)


@pytest.mark.parametrize(
    ("min_signers", "parties"),
    [
        pytest.param(1, [1, 2, 3], id="1-of-3"),
        pytest.param(1, [1, 2], id="1-of-2"),
        pytest.param(1, [1], id="1-of-1"),
    ],
)
def test_dkg_refuses_a_threshold_below_two(min_signers: int, parties: list[int]) -> None:
    """With min_signers = 1 every share is the whole key: our own misuse, refused."""
    with pytest.raises(MisuseError, match="min_signers"):
        DkgRound1(ED25519_SHA512, 1, min_signers, parties, RNG(32), RNG)


@pytest.mark.parametrize(
    ("min_signers", "max_signers"),
    [
        pytest.param(1, 2, id="1-of-2"),
        pytest.param(1, 3, id="1-of-3"),
        pytest.param(1, 1, id="1-of-1"),
        pytest.param(2, 1, id="2-of-1"),
    ],
)
def test_local_dkg_refuses_a_threshold_below_two(min_signers: int, max_signers: int) -> None:
    with pytest.raises(MisuseError, match="min_signers"):
        run_dkg(ED25519_SHA512, min_signers, max_signers, RNG)


# Signing -----------------------------------------------------------------------------------


def _signing(suite: Ciphersuite, signers=(1, 2, 3)):  # type: ignore[no-untyped-def]
    keys = {k.identifier: k for k in run_dkg(suite, 2, 3, RNG)}
    sid = RNG(32)
    rounds = {p: SignRound1(keys[p], sid, list(signers), RNG) for p in signers}
    return keys, sid, rounds


def _commitments_for(rounds, victim, replace=None):  # type: ignore[no-untyped-def]
    out = [r.message for p, r in rounds.items() if p != victim]
    if replace is not None:
        out = [replace(m) if m.header.sender == CULPRIT else m for m in out]
    return out


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize("field", ["hiding", "binding"])
def test_signing_invalid_commitment(suite: Ciphersuite, field: str) -> None:
    _, _, rounds = _signing(suite)
    bad = _identity_like(suite)
    _expect_abort(
        CULPRIT,
        lambda: rounds[VICTIM].sign(
            b"m", _commitments_for(rounds, VICTIM, lambda m: dataclasses.replace(m, **{field: bad}))
        ),
        "invalid commitment",
    )


def test_signing_small_order_commitment() -> None:
    _, _, rounds = _signing(ED25519_SHA512)
    _expect_abort(
        CULPRIT,
        lambda: rounds[VICTIM].sign(
            b"m",
            _commitments_for(
                rounds, VICTIM, lambda m: dataclasses.replace(m, hiding=ED25519_ORDER_8_POINT)
            ),
        ),
        "invalid commitment",
    )


def _full_signing(suite: Ciphersuite, corrupt_share=None):  # type: ignore[no-untyped-def]
    _, _, rounds = _signing(suite)
    commitments = [r.message for r in rounds.values()]
    results = {
        p: r.sign(b"message", [c for c in commitments if c.header.sender != p])
        for p, r in rounds.items()
    }
    shares = [out for _, out in results.values()]
    if corrupt_share is not None:
        shares = [corrupt_share(s) if s.header.sender == CULPRIT else s for s in shares]
    return results, commitments, shares


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_signing_bad_signature_share_names_the_signer(suite: Ciphersuite) -> None:
    def corrupt(m: SignatureShareMessage) -> SignatureShareMessage:
        return dataclasses.replace(m, share=(suite.group.decode_scalar(m.share) + 1).to_bytes())

    results, _, shares = _full_signing(suite, corrupt)
    state, _ = results[VICTIM]
    _expect_abort(
        CULPRIT,
        lambda: state.aggregate([s for s in shares if s.header.sender != VICTIM]),
        "invalid signature share",
    )


def test_signing_malformed_share() -> None:
    group = ED25519
    too_big = group.order.to_bytes(32, "little")
    results, _, shares = _full_signing(
        ED25519_SHA512, lambda m: dataclasses.replace(m, share=too_big)
    )
    state, _ = results[VICTIM]
    _expect_abort(
        CULPRIT,
        lambda: state.aggregate([s for s in shares if s.header.sender != VICTIM]),
        "malformed",
    )


def test_aggregator_names_bad_signer() -> None:
    def corrupt(m: SignatureShareMessage) -> SignatureShareMessage:
        return dataclasses.replace(m, share=ED25519.scalar(5).to_bytes())

    _, commitments, shares = _full_signing(ED25519_SHA512, corrupt)
    keys = run_dkg(ED25519_SHA512, 2, 3, RNG)  # unrelated key: every share fails
    sid = commitments[0].header.session_id
    aggregator = Aggregator(keys[0].public, sid, [1, 2, 3], b"message")
    with pytest.raises(ProtocolAbort) as info:
        aggregator.aggregate(commitments, shares)
    assert info.value.culprits == (1, 2, 3)


def test_aggregator_accepts_honest_session() -> None:
    keys = {k.identifier: k for k in run_dkg(ED25519_SHA512, 2, 3, RNG)}
    sid = RNG(32)
    rounds = {p: SignRound1(keys[p], sid, [1, 3], RNG) for p in (1, 3)}
    commitments = [r.message for r in rounds.values()]
    shares = [
        r.sign(b"msg", [c for c in commitments if c.header.sender != p])[1]
        for p, r in rounds.items()
    ]
    signature = Aggregator(keys[1].public, sid, [1, 3], b"msg").aggregate(commitments, shares)
    nacl.signing.VerifyKey(keys[1].public.public_key_bytes).verify(b"msg", signature)
    # Checked against another message, the honest signers are named by nobody ...
    wrong = Aggregator(keys[1].public, sid, [1, 3], b"other message")
    with pytest.raises(MessageDigestMismatch) as mismatch:
        wrong.aggregate(commitments, shares)
    assert mismatch.value.culprits == ()
    # ... but shares that claim that message while signing another are named.
    claimed = message_digest(b"other message", None)
    lying = [dataclasses.replace(s, message_digest=claimed) for s in shares]
    again = Aggregator(keys[1].public, sid, [1, 3], b"other message")
    with pytest.raises(ProtocolAbort) as info:
        again.aggregate(commitments, lying)
    assert info.value.culprits == (1, 3)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"session_id": SessionId(bytes(32))}, "another session"),
        ({"round": 2}, "round"),
        ({"protocol": "frost/dkg"}, "protocol"),
    ],
    ids=["session", "round", "protocol"],
)
def test_signing_wrong_header(change: dict, match: str) -> None:  # type: ignore[type-arg]
    _, _, rounds = _signing(ED25519_SHA512)
    _expect_abort(
        CULPRIT,
        lambda: rounds[VICTIM].sign(
            b"m", _commitments_for(rounds, VICTIM, lambda m: _with_header(m, **change))
        ),
        match,
    )


def test_signing_unknown_identifier_is_transport_error() -> None:
    _, _, rounds = _signing(ED25519_SHA512, signers=(1, 2))
    stranger = _with_header(rounds[2].message, sender=PartyId(3))
    with pytest.raises(TransportError):
        rounds[1].sign(b"m", [rounds[2].message, stranger])


def test_signing_duplicate_identifier_with_other_commitments() -> None:
    _, _, rounds = _signing(ED25519_SHA512)
    honest = _commitments_for(rounds, VICTIM)
    twin = dataclasses.replace(rounds[CULPRIT].message, hiding=rounds[3].message.hiding)
    _expect_abort(CULPRIT, lambda: rounds[VICTIM].sign(b"m", [*honest, twin]), "two different")


def test_nonces_refuse_a_second_use() -> None:
    _, _, rounds = _signing(ED25519_SHA512)
    commitments = _commitments_for(rounds, VICTIM)
    rounds[VICTIM].sign(b"first", commitments)
    with pytest.raises(MisuseError, match="already"):
        rounds[VICTIM].sign(b"second", commitments)


def test_signing_refuses_bad_quorums() -> None:
    keys = {k.identifier: k for k in run_dkg(ED25519_SHA512, 2, 3, RNG)}
    with pytest.raises(MisuseError, match="needs 2"):
        SignRound1(keys[1], RNG(32), [1], RNG)
    with pytest.raises(MisuseError, match="hold no share"):
        SignRound1(keys[1], RNG(32), [1, 4], RNG)
    with pytest.raises(MisuseError, match="not among"):
        SignRound1(keys[1], RNG(32), [2, 3], RNG)
    with pytest.raises(MisuseError, match="32 bytes"):
        SignRound1(keys[1], b"short", [1, 2], RNG)
    with pytest.raises(MisuseError, match="taproot"):
        SignRound1(keys[1], RNG(32), [1, 2], RNG, taproot_merkle_root=b"")


def test_messages_round_trip_and_reject_bad_encodings() -> None:
    _, states = _round1(ED25519_SHA512)
    message = states[1].message
    assert DkgRound1Message.from_bytes(message.to_bytes()) == message
    fields = cbor2.loads(message.to_bytes())
    with pytest.raises(EncodingError, match="unknown fields"):
        DkgRound1Message.from_bytes(cbor2.dumps({**fields, "extra": 1}, canonical=True))
    with pytest.raises(EncodingError, match="lacks fields"):
        DkgRound1Message.from_bytes(
            cbor2.dumps({k: v for k, v in fields.items() if k != "proof_mu"}, canonical=True)
        )
    reordered = dict(reversed(list(fields.items())))
    with pytest.raises(EncodingError, match="canonical"):
        DkgRound1Message.from_bytes(cbor2.dumps(reordered, canonical=False))
    with pytest.raises(EncodingError, match="session_id"):
        DkgRound1Message.from_bytes(
            cbor2.dumps({**fields, "session_id": bytes(31)}, canonical=True)
        )
    with pytest.raises(EncodingError, match="CBOR"):
        DkgRound1Message.from_bytes(b"\xff\x00")


# Signature shares bound to the message (issue #19) ----------------------------------------


def _signing_messages(suite: Ciphersuite, messages: dict[int, bytes]):  # type: ignore[no-untyped-def]
    """Every signer signs the message the relay gave it; returns the key packages, the
    round-2 states, the commitments and the share messages."""
    keys, _, rounds = _signing(suite)
    commitments = [r.message for r in rounds.values()]
    results = {
        p: r.sign(messages[p], [c for c in commitments if c.header.sender != p])
        for p, r in rounds.items()
    }
    states = {p: state for p, (state, _) in results.items()}
    return keys, states, commitments, [out for _, out in results.values()]


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_signers_given_different_messages_name_nobody(suite: Ciphersuite) -> None:
    """The relay gives signer 3 another message: every share is right for its own message,
    so each signer reports a message mismatch (a typed error, no culprit) instead of
    naming an honest peer."""
    _, states, _, shares = _signing_messages(
        suite, {1: b"pay alice", 2: b"pay alice", 3: b"pay bob"}
    )
    for me, state in states.items():
        with pytest.raises(MessageDigestMismatch) as info:
            state.aggregate([s for s in shares if s.header.sender != me])
        assert info.value.culprits == ()
        assert "digest" in info.value.reason


def test_aggregator_given_another_message_names_nobody() -> None:
    """A coordinator that checks the quorum against another message than the signers
    signed reports the mismatch and names none of them."""
    message = b"pay alice"
    keys, _, commitments, shares = _signing_messages(
        ED25519_SHA512, {1: message, 2: message, 3: message}
    )
    sid = shares[0].header.session_id
    aggregator = Aggregator(keys[1].public, sid, [1, 2, 3], b"pay bob")
    with pytest.raises(MessageDigestMismatch) as info:
        aggregator.aggregate(commitments, shares)
    assert info.value.culprits == ()


def test_a_wrong_share_beside_a_message_mismatch_is_still_named() -> None:
    """Signer 3 was given another message and signer 2 sends a wrong share for the message
    it claims (ours): signer 1 names signer 2 alone."""
    suite = ED25519_SHA512
    _, states, _, shares = _signing_messages(
        suite, {1: b"pay alice", 2: b"pay alice", 3: b"pay bob"}
    )
    forged = [
        dataclasses.replace(s, share=(suite.group.decode_scalar(s.share) + 1).to_bytes())
        if s.header.sender == 2
        else s
        for s in shares
        if s.header.sender != 1
    ]
    _expect_abort(2, lambda: states[1].aggregate(forged))


# Key confirmation (issue #19) -----------------------------------------------------------


def test_dkg_key_confirmation_of_another_key_names_the_sender() -> None:
    round2, sent = _round2(ED25519_SHA512)
    step3 = {p: round2[p].next(_to(sent, p)) for p in PARTIES}
    other = dataclasses.replace(step3[CULPRIT][1], confirmation=bytes(32))
    _expect_abort(
        CULPRIT,
        lambda: step3[VICTIM][0].finish([other, step3[3][1]]),
        "different public data",
    )
    assert DkgRound3Message.from_bytes(other.to_bytes()) == other


def test_dkg_round3_refuses_reuse_and_a_missing_message() -> None:
    round2, sent = _round2(ED25519_SHA512)
    step3 = {p: round2[p].next(_to(sent, p)) for p in PARTIES}
    with pytest.raises(TransportError, match="missing"):
        step3[VICTIM][0].finish([step3[3][1]])
    with pytest.raises(MisuseError):
        step3[VICTIM][0].finish([step3[3][1], step3[CULPRIT][1]])
