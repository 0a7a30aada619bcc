"""DESIGN.md invariant 1 for FROST: the whole key never exists in any message or object.

The test interpolates the group secret from a quorum's shares (test-only: the product never
does this) and then searches every message of a DKG and of a signing session, and every
object's repr, for it, in every encoding it could take.
"""

import secrets

import pytest

from shardvault.crypto.group import Scalar
from shardvault.crypto.polynomial import lagrange_coefficient
from shardvault.crypto.protocols.frost import (
    ED25519_SHA512,
    SECP256K1_BIP340,
    Ciphersuite,
    DkgRound1,
    SignRound1,
)

RNG = secrets.token_bytes


def _encodings(secret: Scalar) -> list[bytes]:
    raw = secret.value
    forms = [raw.to_bytes(32, "big"), raw.to_bytes(32, "little")]
    negated = (-secret).value
    forms += [negated.to_bytes(32, "big"), negated.to_bytes(32, "little")]
    return forms


@pytest.mark.parametrize("suite", [ED25519_SHA512, SECP256K1_BIP340], ids=lambda s: s.name)
def test_no_message_or_repr_carries_the_group_secret(suite: Ciphersuite) -> None:
    parties = [1, 2, 3]
    session = RNG(32)
    round1 = {p: DkgRound1(suite, p, 2, parties, session, RNG) for p in parties}
    wire: list[bytes] = [r.message.to_bytes() for r in round1.values()]
    texts: list[str] = [repr(r) for r in round1.values()]
    round2, sent = {}, []
    for p, state in round1.items():
        round2[p], out = state.next([r.message for q, r in round1.items() if q != p])
        sent.append(out)
    wire += [m.to_bytes() for m in sent]
    texts += [repr(m) for m in sent] + [repr(r) for r in round2.values()]
    step3 = {p: round2[p].next([m for m in sent if m.header.sender != p]) for p in parties}
    wire += [message.to_bytes() for _, message in step3.values()]
    texts += [repr(state) for state, _ in step3.values()]
    confirmations = [message for _, message in step3.values()]
    keys = {
        p: state.finish([m for m in confirmations if m.header.sender != p])
        for p, (state, _) in step3.items()
    }
    texts += [repr(k) for k in keys.values()]
    # The shares are broadcast in round 2, so none may appear there in the clear either.
    for key in keys.values():
        for form in _encodings(key.signing_share):
            assert all(form not in blob for blob in wire)
    sign_session = RNG(32)
    signers = [1, 3]
    sign1 = {p: SignRound1(keys[p], sign_session, signers, RNG) for p in signers}
    wire += [s.message.to_bytes() for s in sign1.values()]
    for p, state in sign1.items():
        _, share = state.sign(b"m", [s.message for q, s in sign1.items() if q != p])
        wire.append(share.to_bytes())

    group = suite.group
    secret = sum(
        (lagrange_coefficient(group, p, signers) * keys[p].signing_share for p in signers),
        group.scalar(0),
    )
    assert group.base_multiply(secret) == keys[1].public.group_public_key
    for form in _encodings(secret):
        assert all(form not in blob for blob in wire)
        assert all(form.hex() not in text for text in texts)
        assert all(str(secret.value) not in text for text in texts)
