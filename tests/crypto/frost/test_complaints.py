"""Complaints about FROST DKG shares are judged alike by every honest party (issue #19).

Round 2 broadcasts every share encrypted to its recipient's complaint key; a recipient that
gets a bad one complains in round 3 with the ciphertext's decryption key and a DLEQ proof,
and every party judges the complaint from public data. Each test corrupts one party (the
culprit), runs the DKG among four parties in one process and checks that every honest
party aborts naming exactly the culprit.
"""

import dataclasses
import secrets

import pytest

from shardvault.crypto.errors import EncodingError, ProtocolAbort
from shardvault.crypto.group import ED25519, SECP256K1
from shardvault.crypto.protocols.common import PartyId
from shardvault.crypto.protocols.complaints import (
    Complaint,
    EncryptedShare,
    ShareContext,
    encrypt_share,
)
from shardvault.crypto.protocols.frost import (
    ED25519_SHA512,
    SECP256K1_BIP340,
    Ciphersuite,
    DkgRound1,
    DkgRound2Message,
    DkgRound3Message,
)
from shardvault.crypto.protocols.frost.messages import DKG_PROTOCOL

SUITES = [ED25519_SHA512, SECP256K1_BIP340]
RNG = secrets.token_bytes
PARTIES = [1, 2, 3, 4]
DEALER = PartyId(2)
VICTIM = PartyId(1)


def _others(messages, party):  # type: ignore[no-untyped-def]
    return [m for m in messages if m.header.sender != party]


def _entry_index(dealer: int, recipient: int) -> int:
    return [p for p in PARTIES if p != dealer].index(recipient)


def _with_entry(message: DkgRound2Message, recipient: int, entry: EncryptedShare):  # type: ignore[no-untyped-def]
    index = _entry_index(message.header.sender, recipient)
    keys, ciphertexts = list(message.share_keys), list(message.share_ciphertexts)
    keys[index], ciphertexts[index] = entry.ephemeral_key, entry.ciphertext
    return dataclasses.replace(
        message, share_keys=tuple(keys), share_ciphertexts=tuple(ciphertexts)
    )


def _run(suite: Ciphersuite, *, round2=None, round3=None):  # type: ignore[no-untyped-def]
    """Run the DKG; ``round2(message, round1)`` rewrites the dealer's round-2 broadcast (the
    same for everyone), ``round3(party, message)`` rewrites a party's round-3 broadcast.
    Returns each party's result: its key package, or the culprits of its abort."""
    session = RNG(32)
    round1 = {p: DkgRound1(suite, p, 3, PARTIES, session, RNG) for p in PARTIES}
    first = [s.message for s in round1.values()]
    states2, sent2 = {}, []
    for p, state in round1.items():
        states2[p], out = state.next(_others(first, p))
        if round2 is not None and p == DEALER:
            out = round2(out, first)
        sent2.append(out)
    outcome: dict[int, object] = {}
    states3, sent3 = {}, []
    for p, state in states2.items():
        try:
            states3[p], out = state.next(_others(sent2, p))
        except ProtocolAbort as abort:  # pragma: no cover - the tests expect round 3
            outcome[p] = abort.culprits
            continue
        if round3 is not None:
            out = round3(p, out)
        sent3.append(out)
    for p, state in states3.items():
        try:
            outcome[p] = state.finish(_others(sent3, p))
        except ProtocolAbort as abort:
            outcome[p] = abort.culprits
    return outcome, sent3


def _honest_verdicts(outcome, culprit: int):  # type: ignore[no-untyped-def]
    return {p: v for p, v in outcome.items() if p != culprit}


def _complaint_key(first, party: int) -> bytes:  # type: ignore[no-untyped-def]
    return next(m for m in first if m.header.sender == party).complaint_key


def _encrypted_to_victim(suite: Ciphersuite, first, plaintext: bytes) -> EncryptedShare:  # type: ignore[no-untyped-def]
    session = first[0].header.session_id
    return encrypt_share(
        ShareContext(DKG_PROTOCOL, session, DEALER, VICTIM),
        SECP256K1.decode_point(_complaint_key(first, VICTIM)),
        plaintext,
        RNG,
    )


# The dealer at fault -----------------------------------------------------------------------


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_bad_share_names_the_dealer_at_every_honest_party(suite: Ciphersuite) -> None:
    # A share that does not match the dealer's Feldman commitments, correctly encrypted to
    # the victim alone: the victim complains, and every honest party, the two that got good
    # shares included, names the dealer and nobody else.
    def bad_share(message, first):  # type: ignore[no-untyped-def]
        wrong = suite.group.scalar(7).to_bytes()
        return _with_entry(message, VICTIM, _encrypted_to_victim(suite, first, wrong))

    outcome, sent3 = _run(suite, round2=bad_share)
    assert _honest_verdicts(outcome, DEALER) == {1: (DEALER,), 3: (DEALER,), 4: (DEALER,)}
    (complaint,) = next(m for m in sent3 if m.header.sender == VICTIM).complaints
    assert complaint.accused == DEALER
    assert next(m for m in sent3 if m.header.sender == VICTIM).confirmation == b""


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_undecryptable_ciphertext_names_the_dealer(suite: Ciphersuite) -> None:
    def garble(message, first):  # type: ignore[no-untyped-def]
        index = _entry_index(DEALER, VICTIM)
        ciphertext = message.share_ciphertexts[index]
        flipped = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
        entry = EncryptedShare(message.share_keys[index], flipped)
        return _with_entry(message, VICTIM, entry)

    outcome, _ = _run(suite, round2=garble)
    assert _honest_verdicts(outcome, DEALER) == {1: (DEALER,), 3: (DEALER,), 4: (DEALER,)}


def test_plaintext_that_is_not_a_scalar_names_the_dealer() -> None:
    def not_a_scalar(message, first):  # type: ignore[no-untyped-def]
        above_order = SECP256K1.order.to_bytes(32, "big")
        return _with_entry(
            message, VICTIM, _encrypted_to_victim(SECP256K1_BIP340, first, above_order)
        )

    outcome, _ = _run(SECP256K1_BIP340, round2=not_a_scalar)
    assert _honest_verdicts(outcome, DEALER) == {1: (DEALER,), 3: (DEALER,), 4: (DEALER,)}


def test_share_encrypted_to_another_key_names_the_dealer() -> None:
    # The dealer encrypts the victim's share to party 3's key: the victim cannot open it.
    def wrong_key(message, first):  # type: ignore[no-untyped-def]
        share = encrypt_share(
            ShareContext(DKG_PROTOCOL, first[0].header.session_id, DEALER, VICTIM),
            SECP256K1.decode_point(_complaint_key(first, 3)),
            ED25519.scalar(5).to_bytes(),
            RNG,
        )
        return _with_entry(message, VICTIM, share)

    outcome, _ = _run(ED25519_SHA512, round2=wrong_key)
    assert _honest_verdicts(outcome, DEALER) == {1: (DEALER,), 3: (DEALER,), 4: (DEALER,)}


# The complainer at fault -------------------------------------------------------------------


def _false_complaint(suite: Ciphersuite, complainer: int, accused: int, edit=None):  # type: ignore[no-untyped-def]
    """``complainer`` complains about ``accused``'s good share, made with the complaint
    machinery itself (a valid DLEQ proof), then optionally ``edit``-ed."""
    from shardvault.crypto.protocols.complaints import make_complaint

    captured = {}

    def complain(party, message):  # type: ignore[no-untyped-def]
        if party != complainer:
            return message
        state = captured["state"]
        entry_index = _entry_index(accused, complainer)
        dealt = captured["sent2"][accused]
        entry = EncryptedShare(dealt.share_keys[entry_index], dealt.share_ciphertexts[entry_index])
        complaint = make_complaint(
            ShareContext(
                DKG_PROTOCOL, message.header.session_id, PartyId(accused), PartyId(complainer)
            ),
            state._complaint_key,
            entry,
            RNG,
        )
        if edit is not None:
            complaint = edit(complaint)
        return DkgRound3Message(message.header, b"", (complaint,))

    # Reach into the complainer's own state: a malicious party knows its own key.
    session = RNG(32)
    round1 = {p: DkgRound1(suite, p, 3, PARTIES, session, RNG) for p in PARTIES}
    first = [s.message for s in round1.values()]
    states2, sent2 = {}, {}
    for p, state in round1.items():
        states2[p], sent2[p] = state.next(_others(first, p))
    captured["state"] = states2[complainer]
    captured["sent2"] = sent2
    states3, sent3 = {}, []
    for p, state in states2.items():
        states3[p], out = state.next(_others(list(sent2.values()), p))
        sent3.append(complain(p, out))
    outcome = {}
    for p, state in states3.items():
        try:
            outcome[p] = state.finish(_others(sent3, p))
        except ProtocolAbort as abort:
            outcome[p] = abort.culprits
    return outcome


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_false_complaint_names_the_complainer(suite: Ciphersuite) -> None:
    # Party 3 complains about dealer 2's good share with a correct proof: the share opens
    # and passes the check, so every honest party (the accused dealer included) names 3.
    outcome = _false_complaint(suite, complainer=3, accused=2)
    assert _honest_verdicts(outcome, 3) == {1: (3,), 2: (3,), 4: (3,)}


def test_bad_dleq_proof_names_the_complainer() -> None:
    def bad_proof(complaint: Complaint) -> Complaint:
        proof = bytearray(complaint.proof)
        proof[-1] ^= 1
        return dataclasses.replace(complaint, proof=bytes(proof))

    outcome = _false_complaint(ED25519_SHA512, complainer=3, accused=2, edit=bad_proof)
    assert _honest_verdicts(outcome, 3) == {1: (3,), 2: (3,), 4: (3,)}


@pytest.mark.parametrize(
    "edit",
    [
        # Another shared secret (with the proof for the real one): the proof fails.
        lambda c: dataclasses.replace(
            c, shared_secret=SECP256K1.base_multiply(SECP256K1.scalar(9)).to_bytes()
        ),
        lambda c: dataclasses.replace(c, shared_secret=b"\x02" + bytes(32)),
        lambda c: dataclasses.replace(c, proof=c.proof[:-1]),
        lambda c: dataclasses.replace(c, proof=SECP256K1.order.to_bytes(32, "big") * 2),
        lambda c: dataclasses.replace(c, accused=PartyId(3)),
        lambda c: dataclasses.replace(c, accused=PartyId(9)),
    ],
    ids=[
        "other-secret",
        "secret-not-a-point",
        "short-proof",
        "proof-not-scalars",
        "self",
        "stranger",
    ],
)
def test_malformed_complaint_names_the_complainer(edit) -> None:  # type: ignore[no-untyped-def]
    outcome = _false_complaint(ED25519_SHA512, complainer=3, accused=2, edit=edit)
    assert _honest_verdicts(outcome, 3) == {1: (3,), 2: (3,), 4: (3,)}


def test_repeated_complaints_name_the_complainer_before_any_judging() -> None:
    # A complaint list longer than the other dealers (or naming one twice) is malformed:
    # its sender is named without judging any of it.
    def complain_twice(party, message):  # type: ignore[no-untyped-def]
        if party != 3:
            return message
        complaint = Complaint(
            PartyId(2), EncryptedShare(b"\x02" * 33, b"x" * 48), b"s" * 33, b"p" * 64
        )
        return DkgRound3Message(message.header, b"", (complaint, complaint))

    outcome, _ = _run(ED25519_SHA512, round3=complain_twice)
    assert _honest_verdicts(outcome, 3) == {1: (3,), 2: (3,), 4: (3,)}


def test_complaint_showing_another_ciphertext_names_both() -> None:
    # The complainer shows a ciphertext the dealer never broadcast: either the dealer
    # showed it another one or the complainer lies; the crypto layer names both, and the
    # dealer's signed round-2 envelope settles it (as for an echo).
    def other_ciphertext(complaint: Complaint) -> Complaint:
        ciphertext = bytes([complaint.share.ciphertext[0] ^ 1]) + complaint.share.ciphertext[1:]
        return dataclasses.replace(
            complaint, share=EncryptedShare(complaint.share.ephemeral_key, ciphertext)
        )

    outcome = _false_complaint(ED25519_SHA512, complainer=3, accused=2, edit=other_ciphertext)
    assert _honest_verdicts(outcome, 3) == {1: (2, 3), 2: (2, 3), 4: (2, 3)}


def test_honest_run_has_no_complaint_and_every_party_gets_the_same_key() -> None:
    outcome, sent3 = _run(ED25519_SHA512)
    assert all(m.complaints == () and len(m.confirmation) == 32 for m in sent3)
    assert len({k.public.digest() for k in outcome.values()}) == 1


# Messages ----------------------------------------------------------------------------------


def test_round3_message_carries_a_confirmation_or_complaints() -> None:
    _, sent3 = _run(ED25519_SHA512)
    honest = sent3[0]
    assert DkgRound3Message.from_bytes(honest.to_bytes()) == honest
    complaint = Complaint(PartyId(2), EncryptedShare(b"\x02" * 33, b"x" * 48), b"s" * 33, b"p" * 64)
    complaining = DkgRound3Message(honest.header, b"", (complaint,))
    assert DkgRound3Message.from_bytes(complaining.to_bytes()) == complaining
    for bad in (
        DkgRound3Message(honest.header, honest.confirmation, (complaint,)),
        DkgRound3Message(honest.header, b"", ()),
        DkgRound3Message(honest.header, b"short", ()),
    ):
        with pytest.raises(EncodingError):
            DkgRound3Message.from_bytes(bad.to_bytes())
