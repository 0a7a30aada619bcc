"""CGGMP21 presigning: local misuse, binding to signers and key, and its outputs."""

from __future__ import annotations

import secrets

import pytest

from shardvault.crypto.errors import MisuseError, ProtocolAbort
from shardvault.crypto.group import SECP256K1
from shardvault.crypto.protocols.cggmp21.bip32 import derive_key_share
from shardvault.crypto.protocols.cggmp21.local import run_presign
from shardvault.crypto.protocols.cggmp21.presign import PresignRound1
from tests.crypto.cggmp21.ecdsa_helpers import make_key_shares, pick

RNG = secrets.token_bytes


def test_presignature_outputs_agree_and_are_consistent() -> None:
    shares = make_key_shares(2, 3, "presign-outputs")
    signers = pick(shares, [1, 3])
    presignatures = run_presign(signers, RNG)
    first = presignatures[0]
    for p in presignatures:
        assert p.R == first.R
        assert p.presignature_id == first.presignature_id
        assert p.views == first.views
        assert p.signers == (1, 3)
    # Public consistency: Σ Δ_j = δ·G and Σ S_j = δ·X (checked by presigning itself).
    assert SECP256K1.sum_points(list(first.Delta.values())) == SECP256K1.base_multiply(first.delta)
    assert SECP256K1.sum_points(list(first.S.values())) == shares[0].public_key * first.delta
    assert "redacted" in repr(first)


def test_too_few_or_unknown_signers_are_misuse() -> None:
    shares = make_key_shares(2, 3, "presign-misuse")
    with pytest.raises(MisuseError):
        PresignRound1(shares[0], [1], RNG(32), RNG)
    with pytest.raises(MisuseError):
        PresignRound1(shares[0], [2, 3], RNG(32), RNG)
    with pytest.raises(MisuseError):
        PresignRound1(shares[0], [1, 7], RNG(32), RNG)


def test_peer_presigning_for_a_derived_key_is_refused() -> None:
    """A presignature is bound to the key: a peer using another (derived) key is named."""
    shares = make_key_shares(2, 2, "presign-derived")
    sid = RNG(32)
    honest = PresignRound1(shares[0], [1, 2], sid, RNG)
    other = PresignRound1(derive_key_share(shares[1], "m/1"), [1, 2], sid, RNG)
    with pytest.raises(ProtocolAbort) as info:
        honest.next([other.message], other.proofs)
    assert info.value.culprits == (2,)


def test_pool_serialization_round_trips_and_refuses_bad_input() -> None:
    import cbor2

    from shardvault.crypto.errors import EncodingError
    from shardvault.crypto.protocols.cggmp21.local import run_sign
    from shardvault.crypto.protocols.cggmp21.presign import Presignature
    from tests.crypto.cggmp21.ecdsa_helpers import assert_valid_signature

    shares = make_key_shares(2, 2, "presign-pool")
    presignatures = run_presign(shares, RNG)
    stored = [p.to_pool_bytes() for p in presignatures]
    loaded = [Presignature.unsafe_from_pool_bytes(b) for b in stored]
    assert [p.to_pool_bytes() for p in loaded] == stored
    digest = RNG(32)
    assert_valid_signature(
        shares[0].public_key.to_bytes(), digest, run_sign(shares, loaded, digest, RNG)
    )
    with pytest.raises(MisuseError):
        loaded[0].to_pool_bytes()
    fields = cbor2.loads(stored[0])
    bad_delta = SECP256K1.scalar(int.from_bytes(fields["delta"], "big") + 1).to_bytes()
    for bad in (
        cbor2.dumps({**fields, "format": 2}, canonical=True),
        cbor2.dumps({**fields, "delta": bad_delta}, canonical=True),
        cbor2.dumps({**fields, "signers": [2, 1]}, canonical=True),
        cbor2.dumps({**fields, "S": fields["S"][:1]}, canonical=True),
        stored[0][:-3],
    ):
        with pytest.raises(EncodingError):
            Presignature.unsafe_from_pool_bytes(bad)
