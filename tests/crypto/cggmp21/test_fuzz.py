"""Fuzzing the CGGMP21 message handlers: only typed errors may escape.

Hypothesis replaces one field of an honest message with an arbitrary wire value (or feeds
arbitrary bytes to the decoders); the receiving party must answer with ``ProtocolAbort``
naming the sender (or ``EncodingError`` from a decoder), never with a stray ``TypeError``,
``KeyError`` or ``ValueError``.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shardvault.crypto.errors import EncodingError, ProtocolAbort
from shardvault.crypto.protocols.cggmp21 import messages
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.cggmp21.presign import PresignRound1
from tests.crypto.cggmp21.ecdsa_helpers import make_key_shares

RNG = secrets.token_bytes

wire_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.binary(max_size=40) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)

_SHARES: list[KeyShare] = []


def _shares() -> list[KeyShare]:
    if not _SHARES:
        _SHARES.extend(make_key_shares(2, 2, "fuzz"))
    return _SHARES


def _replace_field(message: Any, field: str, value: Any) -> Any:
    return replace(message, payload={**message.payload, field: value})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.sampled_from(["key_id", "epoch", "K", "G", "enc_proof"]),
    value=wire_values,
)
def test_round1_handler_raises_only_typed_errors(which: str, value: Any) -> None:
    shares = _shares()
    sid = RNG(32)
    me = PresignRound1(shares[0], [1, 2], sid, RNG)
    peer = PresignRound1(shares[1], [1, 2], sid, RNG)
    broadcast, proofs = peer.message, peer.proofs
    if which == "enc_proof":
        proofs = [_replace_field(proofs[0], which, value)]
    else:
        broadcast = _replace_field(broadcast, which, value)
    # A replaced G that is still a valid ciphertext passes round 1 (its proof, ψ', comes in
    # round 2); anything else must be an abort naming the sender.
    culprits: tuple[int, ...] | None = None
    try:
        me.next([broadcast], proofs)
    except ProtocolAbort as exc:
        culprits = exc.culprits
    assert culprits == (2,) or (culprits is None and which == "G")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.sampled_from(list(messages.PresignRound2Message.fields)),
    value=wire_values,
)
def test_round2_handler_raises_only_typed_errors(which: str, value: Any) -> None:
    shares = _shares()
    sid = RNG(32)
    r = [PresignRound1(k, [1, 2], sid, RNG) for k in shares]
    state, _ = r[0].next([r[1].message], r[1].proofs)
    _, out = r[1].next([r[0].message], r[0].proofs)
    with pytest.raises(ProtocolAbort) as info:
        state.next([_replace_field(out[0], which, value)])
    assert info.value.culprits == (2,)


@settings(max_examples=60, deadline=None)
@given(
    cls=st.sampled_from(
        [
            messages.KeygenRound1Message,
            messages.KeygenRound2Message,
            messages.PresignRound1Message,
            messages.PresignRound2Message,
            messages.PresignRound3Message,
            messages.PresignRound4Message,
            messages.PresignRevealMessage,
            messages.PresignChiProofMessage,
            messages.SignatureShareMessage,
        ]
    ),
    data=st.binary(max_size=200),
)
def test_decoders_raise_only_encoding_errors(cls: Any, data: bytes) -> None:
    try:
        cls.from_bytes(data)
    except EncodingError:
        pass
