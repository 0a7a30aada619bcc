"""CGGMP21 presigning and signing end to end, checked by libsecp256k1 and eth-account.

Differential checks: every signature verifies with coincurve (libsecp256k1), and
eth-account recovers the expected Ethereum address from ``(digest, v, r, s)``.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import replace

import pytest

from shardvault.crypto.errors import MessageDigestMismatch, MisuseError, ProtocolAbort
from shardvault.crypto.group import SECP256K1
from shardvault.crypto.protocols.cggmp21.local import run_presign, run_sign
from shardvault.crypto.protocols.cggmp21.sign import SignRound, digest_scalar
from tests.crypto.cggmp21.ecdsa_helpers import (
    assert_valid_signature,
    make_key_shares,
    pick,
    random_digest,
)

RNG = secrets.token_bytes


@pytest.mark.parametrize(
    ("min_signers", "max_signers"),
    [(2, 2), (2, 3), pytest.param(3, 5, marks=pytest.mark.slow)],
)
def test_random_quorum_signs_and_verifies(min_signers: int, max_signers: int) -> None:
    shares = make_key_shares(min_signers, max_signers, f"quorum-{min_signers}-{max_signers}")
    quorum = sorted(random.SystemRandom().sample(range(1, max_signers + 1), min_signers))
    signers = pick(shares, quorum)
    presignatures = run_presign(signers, RNG)
    digest = random_digest()
    signature = run_sign(signers, presignatures, digest, RNG)
    assert_valid_signature(shares[0].public_key.to_bytes(), digest, signature)


def test_presignature_signs_once_only() -> None:
    shares = make_key_shares(2, 2, "reuse")
    presignatures = run_presign(shares, RNG)
    digest = random_digest()
    run_sign(shares, presignatures, digest, RNG)
    assert all(p.spent for p in presignatures)
    with pytest.raises(MisuseError, match="already used"):
        SignRound(shares[0], presignatures[0], random_digest(), random_digest())


def test_presignature_of_another_key_is_refused() -> None:
    shares = make_key_shares(2, 2, "key-a")
    other = make_key_shares(2, 2, "key-b")
    presignatures = run_presign(shares, RNG)
    with pytest.raises(MisuseError, match="another key"):
        SignRound(other[0], presignatures[0], random_digest(), random_digest())
    # The refusal happens before the presignature is consumed.
    assert not presignatures[0].spent


def test_wrong_signature_share_names_the_sender() -> None:
    shares = make_key_shares(2, 3, "bad-share")
    signers = pick(shares, [1, 3])
    presignatures = run_presign(signers, RNG)
    digest = random_digest()
    sid = random_digest()
    rounds = [SignRound(k, p, digest, sid) for k, p in zip(signers, presignatures, strict=True)]
    honest, cheater = rounds
    bad = cheater.message
    sigma = int.from_bytes(bad.sigma, "big")
    forged = replace(bad, sigma=((sigma + 1) % SECP256K1.order).to_bytes(32, "big"))
    with pytest.raises(ProtocolAbort) as info:
        honest.finish([forged])
    assert info.value.culprits == (3,)


def test_finished_sign_round_refuses_reuse() -> None:
    shares = make_key_shares(2, 2, "finish-twice")
    presignatures = run_presign(shares, RNG)
    digest, sid = random_digest(), random_digest()
    rounds = [SignRound(k, p, digest, sid) for k, p in zip(shares, presignatures, strict=True)]
    rounds[0].finish([rounds[1].message])
    with pytest.raises(MisuseError):
        rounds[0].finish([rounds[1].message])


def test_digest_must_be_32_bytes() -> None:
    with pytest.raises(MisuseError):
        digest_scalar(b"short")


# --- Signature shares bound to the message (issue #19) --------------------------------------


def _signing_rounds(seed: str, digests: dict[int, bytes]) -> dict[int, SignRound]:
    """Three signers of a 2-of-3 key, each given its own digest to sign (a relay that
    hands signers different messages)."""
    shares = make_key_shares(2, 3, seed)
    presignatures = run_presign(shares, RNG)
    sid = random_digest()
    return {
        k.party: SignRound(k, p, digests[k.party], sid)
        for k, p in zip(shares, presignatures, strict=True)
    }


def test_signers_given_different_digests_name_nobody() -> None:
    """The relay gives signer 3 another digest than signers 1 and 2. Every share is correct
    for its own digest, so nobody misbehaved that the signers could prove: each reports a
    digest mismatch (a typed error, no culprit) instead of naming an honest peer."""
    digest, other = random_digest(), random_digest()
    rounds = _signing_rounds("digest-mismatch", {1: digest, 2: digest, 3: other})
    for me, state in rounds.items():
        with pytest.raises(MessageDigestMismatch) as info:
            state.finish([r.message for p, r in rounds.items() if p != me])
        assert info.value.culprits == ()
        assert "digest" in info.value.reason


def test_a_wrong_share_beside_a_digest_mismatch_is_still_named() -> None:
    """Signer 3 was given another digest, and signer 2 sends a wrong share for the digest
    it claims (ours): signer 1 names signer 2, whose share is provably wrong."""
    digest, other = random_digest(), random_digest()
    rounds = _signing_rounds("digest-mismatch-and-cheater", {1: digest, 2: digest, 3: other})
    bad = rounds[2].message
    sigma = int.from_bytes(bad.sigma, "big")
    forged = replace(bad, sigma=((sigma + 1) % SECP256K1.order).to_bytes(32, "big"))
    with pytest.raises(ProtocolAbort) as info:
        rounds[1].finish([rounds[3].message, forged])
    assert info.value.culprits == (2,)
