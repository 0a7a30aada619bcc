"""CGGMP21 key refresh: same public key, new shares and aux info, old shares useless."""

from __future__ import annotations

import secrets
from dataclasses import replace

import pytest

from shardvault.crypto.errors import MisuseError, ProtocolAbort, TransportError
from shardvault.crypto.group import SECP256K1
from shardvault.crypto.polynomial import lagrange_coefficient
from shardvault.crypto.protocols.cggmp21.local import run_presign, run_refresh, run_sign
from shardvault.crypto.protocols.cggmp21.messages import REFRESH_PROTOCOL
from shardvault.crypto.protocols.cggmp21.presign import PresignRound1
from shardvault.crypto.protocols.cggmp21.refresh import RefreshRound1
from shardvault.crypto.protocols.cggmp21.sign import SignRound
from shardvault.crypto.protocols.common import PartyId
from shardvault.crypto.protocols.complaints import ShareContext, encrypt_share
from tests.crypto.cggmp21.conftest import build_aux_info, make_seeded_rng
from tests.crypto.cggmp21.ecdsa_helpers import (
    assert_valid_signature,
    fixture_keys,
    make_key_shares,
    pick,
    random_digest,
)

RNG = secrets.token_bytes


def _new_aux(parties: list[int]):  # type: ignore[no-untyped-def]
    return build_aux_info(fixture_keys()[6:], parties, make_seeded_rng("new-aux"))


def test_refresh_keeps_the_key_and_changes_every_share() -> None:
    old = make_key_shares(2, 3, "refresh")
    new = run_refresh(old, _new_aux([1, 2, 3]), RNG)
    for before, after in zip(old, new, strict=True):
        assert after.public_key == before.public_key
        assert after.chain_code == before.chain_code
        assert after.epoch == before.epoch + 1
        assert after.share != before.share
        assert after.paillier_secret.n != before.paillier_secret.n
    signers = pick(new, [2, 3])
    digest = random_digest()
    signature = run_sign(signers, run_presign(signers, RNG), digest, RNG)
    assert_valid_signature(old[0].public_key.to_bytes(), digest, signature)


def test_old_shares_are_useless_after_refresh() -> None:
    old = make_key_shares(2, 3, "refresh-old")
    new = run_refresh(old, _new_aux([1, 2, 3]), RNG)
    # An old share and a new share do not interpolate to the key (checked publicly).
    quorum = [1, 2]
    mixed = old[0].public_shares[1] * lagrange_coefficient(SECP256K1, 1, quorum) + new[
        0
    ].public_shares[2] * lagrange_coefficient(SECP256K1, 2, quorum)
    assert mixed != old[0].public_key
    # And presigning refuses a peer still on the old epoch, naming it.
    sid = RNG(32)
    honest = PresignRound1(new[0], [1, 2], sid, RNG)
    stale = PresignRound1(old[1], [1, 2], sid, RNG)
    with pytest.raises(ProtocolAbort) as info:
        honest.next([stale.message], stale.proofs)
    assert info.value.culprits == (2,)


def test_presignature_from_before_refresh_is_refused() -> None:
    old = make_key_shares(2, 2, "refresh-presig")
    presignatures = run_presign(old, RNG)
    new = run_refresh(old, _new_aux([1, 2]), RNG)
    with pytest.raises(MisuseError, match="older key epoch"):
        SignRound(new[0], presignatures[0], random_digest(), RNG(32))


def test_refresh_of_another_epoch_names_the_stale_party() -> None:
    shares = make_key_shares(2, 2, "refresh-epoch")
    aux = _new_aux([1, 2])
    sid = RNG(32)
    r1 = [RefreshRound1(k, aux[k.party], sid, RNG) for k in shares]
    forged = replace(r1[1].message, epoch=9)
    with pytest.raises(ProtocolAbort) as info:
        r1[0].next([forged])
    assert info.value.culprits == (2,)


def test_refresh_with_a_bad_share_names_the_dealer() -> None:
    # Party 2 encrypts party 1 a share that does not match its zero-sharing: party 1
    # complains, and party 3 (whose share was good) and party 1 both name party 2.
    shares = make_key_shares(2, 3, "refresh-share")
    aux = _new_aux([1, 2, 3])
    sid = RNG(32)
    r1 = {k.party: RefreshRound1(k, aux[k.party], sid, RNG) for k in shares}
    step2 = {p: r.next([o.message for q, o in r1.items() if q != p]) for p, r in r1.items()}
    b2 = {p: message for p, (_, message) in step2.items()}
    broadcast = b2[2]
    share = encrypt_share(
        ShareContext(REFRESH_PROTOCOL, broadcast.header.session_id, PartyId(2), PartyId(1)),
        SECP256K1.decode_point(r1[1].message.complaint_key),
        SECP256K1.scalar(3).to_bytes(),
        RNG,
    )
    keys = (share.ephemeral_key, broadcast.share_keys[1])
    ciphertexts = (share.ciphertext, broadcast.share_ciphertexts[1])
    b2[2] = replace(broadcast, share_keys=keys, share_ciphertexts=ciphertexts)
    step3 = {p: step2[p][0].next([b2[q] for q in b2 if q != p]) for p in step2}
    (complaint,) = step3[1][1].complaints
    assert complaint["accused"] == 2
    for party in (1, 3):
        with pytest.raises(ProtocolAbort, match="complaint") as info:
            step3[party][0].next([step3[q][1] for q in step3 if q != party])
        assert info.value.culprits == (2,)


def test_refresh_with_different_new_aux_info_names_the_party() -> None:
    """Every party must switch to the same new aux info: the commitment binds its digest."""
    shares = make_key_shares(2, 2, "refresh-aux")
    aux = _new_aux([1, 2])
    other = build_aux_info(fixture_keys()[8:], [1, 2], make_seeded_rng("other-aux"))
    sid = RNG(32)
    honest = RefreshRound1(shares[0], aux[1], sid, RNG)
    divergent = RefreshRound1(shares[1], other[2], sid, RNG)
    s1, _ = honest.next([divergent.message])
    _, b2 = divergent.next([honest.message])
    with pytest.raises(ProtocolAbort) as info:
        s1.next([b2])
    assert info.value.culprits == (2,)


def test_refresh_bad_schnorr_response_names_the_prover() -> None:
    shares = make_key_shares(2, 2, "refresh-schnorr")
    aux = _new_aux([1, 2])
    sid = RNG(32)
    r1 = [RefreshRound1(k, aux[k.party], sid, RNG) for k in shares]
    step2 = [r.next([o.message for o in r1 if o is not r]) for r in r1]
    step3 = [step2[0][0].next([step2[1][1]]), step2[1][0].next([step2[0][1]])]
    bad = replace(step3[1][1], schnorr_responses=(SECP256K1.scalar(1).to_bytes(),))
    with pytest.raises(ProtocolAbort) as info:
        step3[0][0].next([bad])
    assert info.value.culprits == (2,)
    with pytest.raises(MisuseError):
        step3[0][0].next([step3[1][1]])


def test_refresh_echo_and_degree_checks_name_the_culprit() -> None:
    shares = make_key_shares(2, 2, "refresh-echo")
    aux = _new_aux([1, 2])
    sid = RNG(32)
    r1 = [RefreshRound1(k, aux[k.party], sid, RNG) for k in shares]
    s1, _ = r1[0].next([r1[1].message])
    _, b2 = r1[1].next([r1[0].message])
    # Party 2 misreports party 1's own commitment in its echo.
    bad_echo = replace(b2, echo=(bytes(32), b2.echo[1]))
    with pytest.raises(ProtocolAbort) as info:
        s1.next([bad_echo])
    assert info.value.culprits == (2,)
    # A zero-sharing of the wrong degree does not even open the commitment.
    r1 = [RefreshRound1(k, aux[k.party], sid, RNG) for k in shares]
    s1, _ = r1[0].next([r1[1].message])
    _, b2 = r1[1].next([r1[0].message])
    extra = replace(b2, vss=(*b2.vss, b2.vss[0]))
    with pytest.raises(ProtocolAbort) as info:
        s1.next([extra])
    assert info.value.culprits == (2,)


def test_refresh_refuses_a_key_with_a_threshold_below_two() -> None:
    """A 1-of-n key (which key generation no longer makes) would be refreshed with a
    degree-0 sharing of zero, that is with nothing: refused rather than a silent no-op."""
    shares = make_key_shares(2, 2, "refresh-1-of-2")
    one_of_two = replace(shares[0], min_signers=1)
    aux = _new_aux([1, 2])
    with pytest.raises(MisuseError, match="min_signers"):
        RefreshRound1(one_of_two, aux[one_of_two.party], RNG(32), RNG)


def test_a_bad_proof_to_one_party_leaves_no_party_with_a_new_share() -> None:
    """Party 3 sends party 1 alone a wrong Schnorr response: party 1 names it, and party
    2 gets no share of the next epoch without party 1's key confirmation (so the old
    shares stay the working ones everywhere)."""
    shares = make_key_shares(2, 3, "refresh-confirmation")
    aux = _new_aux([1, 2, 3])
    sid = RNG(32)
    r1 = {k.party: RefreshRound1(k, aux[k.party], sid, RNG) for k in shares}
    step2 = {p: r.next([o.message for q, o in r1.items() if q != p]) for p, r in r1.items()}
    step3 = {p: step2[p][0].next([step2[q][1] for q in step2 if q != p]) for p in step2}
    bad = replace(step3[3][1], schnorr_responses=(SECP256K1.scalar(1).to_bytes(),))
    with pytest.raises(ProtocolAbort) as info:
        step3[1][0].next([step3[2][1], bad])
    assert info.value.culprits == (3,)
    confirmation2, _ = step3[2][0].next([step3[1][1], step3[3][1]])
    _, confirmed3 = step3[3][0].next([step3[1][1], step3[2][1]])
    with pytest.raises(TransportError, match="missing"):
        confirmation2.finish([confirmed3])
