"""The authenticated channel (DESIGN.md invariant 5): every refusal is a typed error.

Signatures are checked against PyNaCl's own verifier as well, so the envelope format is
not only self-consistent.
"""

import hashlib

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import VerifyKey

from shardvault.crypto.channel import (
    ENVELOPE_DOMAIN,
    BadEnvelopeSignatureError,
    DecryptionError,
    Directory,
    MalformedEnvelopeError,
    NotForUsError,
    PartyIdentity,
    PublicIdentity,
    ReplayError,
    ReplayGuard,
    UnknownSenderError,
    open_envelope,
    peek_header,
    seal,
    verify_evidence,
)
from shardvault.crypto.errors import (
    CryptoError,
    EncodingError,
    MisuseError,
    ProtocolAbort,
    TransportError,
)
from shardvault.crypto.protocols.common import (
    WIRE_VERSION,
    Header,
    PartyId,
    SessionId,
    encode_wire,
)
from shardvault.crypto.rng import system_random


def _seeded(seed: bytes):
    counter = [0]

    def rng(n: int) -> bytes:
        out = b""
        while len(out) < n:
            counter[0] += 1
            out += hashlib.sha256(seed + counter[0].to_bytes(8, "big")).digest()
        return out[:n]

    return rng


ALICE = PartyIdentity.generate(1, _seeded(b"alice"))
BOB = PartyIdentity.generate(2, _seeded(b"bob"))
CAROL = PartyIdentity.generate(3, _seeded(b"carol"))
MALLORY = PartyIdentity.generate(1, _seeded(b"mallory"))  # claims to be party 1
DIRECTORY = Directory.of({1: ALICE.public, 2: BOB.public, 3: CAROL.public})
SESSION = SessionId(bytes(range(32)))
OTHER_SESSION = SessionId(bytes(32))


def _header(round_number=1, sender=1, recipient=None, session=SESSION, protocol="frost/dkg"):
    return Header(
        protocol,
        WIRE_VERSION,
        session,
        round_number,
        PartyId(sender),
        None if recipient is None else PartyId(recipient),
    )


def _guard(*rounds: int, session=SESSION, protocol="frost/dkg") -> ReplayGuard:
    guard = ReplayGuard()
    guard.open_session(protocol, session, [1, 2, 3])
    for r in rounds:
        guard.open_round(protocol, session, r)
    return guard


def _direct(inner=b"secret share bytes", round_number=2, sender=ALICE, to=BOB):
    header = _header(round_number, sender.party, to.party)
    return seal(inner, header, sender, to.public, system_random)


def _broadcast(inner=b"commitments", round_number=1, sender=ALICE):
    return seal(inner, _header(round_number, sender.party), sender, None, system_random)


def _rewrite(envelope: bytes, **changes) -> bytes:
    fields = cbor2.loads(envelope)
    for name, value in changes.items():
        if name.startswith("header_"):
            fields["header"][name[len("header_") :]] = value
        else:
            fields[name] = value
    return cbor2.dumps(fields, canonical=True)


# --- Round trips ------------------------------------------------------------------------


def test_broadcast_round_trip_and_pynacl_verifies_the_signature():
    envelope = _broadcast(b"hello")
    opened = open_envelope(envelope, BOB, DIRECTORY, _guard(1))
    assert opened.payload == b"hello"
    assert opened.header == _header(1, 1)
    assert opened.evidence == envelope
    fields = cbor2.loads(envelope)
    signed = ENVELOPE_DOMAIN + encode_wire({k: v for k, v in fields.items() if k != "signature"})
    VerifyKey(ALICE.public.signing_key).verify(signed, fields["signature"])


def test_direct_round_trip_hides_the_payload():
    inner = b"the share f_1(2) " * 3
    envelope = _direct(inner)
    assert inner not in envelope
    assert b"the share" not in envelope
    opened = open_envelope(envelope, BOB, DIRECTORY, _guard(2))
    assert opened.payload == inner
    assert "share" not in repr(opened)


def test_evidence_verifies_for_a_third_party_without_decryption():
    envelope = _direct()
    assert verify_evidence(envelope, DIRECTORY) == _header(2, 1, 2)
    assert peek_header(envelope).recipient == 2


def test_identity_round_trip_and_repr():
    again = PartyIdentity.from_seeds(1, ALICE.seeds())
    assert again.public == ALICE.public
    assert PublicIdentity.from_json(ALICE.public.to_json()) == ALICE.public
    assert "redacted" in repr(ALICE)
    assert ALICE.seeds().hex() not in repr(ALICE)


# --- Tampering --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"header_round": 3},
        {"header_session_id": bytes(32)},
        {"header_protocol": "frost/sign"},
        {"header_recipient": 3},
        {"payload": b"commitmentz"},
        {"signature": bytes(64)},
    ],
)
def test_tampered_broadcast_is_a_transport_error(change):
    envelope = _rewrite(_broadcast(), **change)
    # A recipient added to a broadcast also breaks the nonce rule: malformed, not signed.
    with pytest.raises((BadEnvelopeSignatureError, MalformedEnvelopeError)):
        verify_evidence(envelope, DIRECTORY)
    with pytest.raises(TransportError):
        open_envelope(envelope, BOB, DIRECTORY, _guard(1, 3))


def test_tampered_direct_ciphertext_is_refused():
    envelope = _direct()
    fields = cbor2.loads(envelope)
    flipped = bytearray(fields["payload"])
    flipped[5] ^= 1
    with pytest.raises(BadEnvelopeSignatureError):
        open_envelope(_rewrite(envelope, payload=bytes(flipped)), BOB, DIRECTORY, _guard(2))


def test_header_swapped_under_a_valid_signature_is_blamed_on_the_sender():
    # A sender that signs a ciphertext bound to another header is caught after the
    # signature verifies, so the sender is named.
    real = _header(2, 1, 2)
    other = _header(2, 1, 2, session=OTHER_SESSION)
    envelope = seal(b"share", other, ALICE, BOB.public, system_random)
    fields = cbor2.loads(envelope)
    fields["header"] = real.to_wire()
    unsigned = {k: v for k, v in fields.items() if k != "signature"}
    fields["signature"] = ALICE.sign(ENVELOPE_DOMAIN + encode_wire(unsigned))
    forged = cbor2.dumps(fields, canonical=True)
    with pytest.raises(ProtocolAbort) as info:
        open_envelope(forged, BOB, DIRECTORY, _guard(2))
    assert info.value.culprits == (1,)


def test_wrong_recipient_is_refused():
    envelope = _direct(to=BOB)
    with pytest.raises(NotForUsError):
        open_envelope(envelope, CAROL, DIRECTORY, _guard(2))


def test_own_message_is_refused():
    with pytest.raises(NotForUsError):
        open_envelope(_broadcast(sender=ALICE), ALICE, DIRECTORY, _guard(1))


def test_message_encrypted_to_a_substituted_key_does_not_decrypt():
    # The relay hands the sender a fake key for Bob; the envelope is validly signed but
    # Bob cannot decrypt it, and nobody is blamed.
    fake_bob = PartyIdentity.generate(2, _seeded(b"fake bob"))
    envelope = seal(b"share", _header(2, 1, 2), ALICE, fake_bob.public, system_random)
    with pytest.raises(DecryptionError):
        open_envelope(envelope, BOB, DIRECTORY, _guard(2))


def test_key_substitution_in_the_directory_is_refused():
    with pytest.raises(MisuseError):
        DIRECTORY.with_party(1, MALLORY.public)
    swapped = PublicIdentity(
        ALICE.public.signing_key, MALLORY.public.encryption_key, ALICE.public.binding
    )
    with pytest.raises(EncodingError):
        swapped.check()
    with pytest.raises(EncodingError):
        Directory.of({1: swapped})


def test_impostor_signature_is_refused():
    envelope = seal(b"commitments", _header(1, 1), MALLORY, None, system_random)
    with pytest.raises(BadEnvelopeSignatureError):
        open_envelope(envelope, BOB, DIRECTORY, _guard(1))


def test_unknown_sender_is_refused():
    stranger = PartyIdentity.generate(9, _seeded(b"stranger"))
    envelope = seal(b"x", _header(1, 9), stranger, None, system_random)
    with pytest.raises(UnknownSenderError):
        open_envelope(envelope, BOB, DIRECTORY, _guard(1))


# --- Replay and ordering ----------------------------------------------------------------


def test_replay_is_refused():
    guard = _guard(1)
    envelope = _broadcast()
    open_envelope(envelope, BOB, DIRECTORY, guard)
    with pytest.raises(ReplayError):
        open_envelope(envelope, BOB, DIRECTORY, guard)
    # A different message for the same slot is refused too.
    with pytest.raises(ReplayError):
        open_envelope(_broadcast(b"other"), BOB, DIRECTORY, guard)


def test_reordered_round_is_refused():
    guard = _guard(1, 2)
    late = _broadcast(round_number=1)
    guard.close_round("frost/dkg", SESSION, 1)
    with pytest.raises(ReplayError, match="closed"):
        open_envelope(late, BOB, DIRECTORY, guard)
    with pytest.raises(ReplayError, match="not open"):
        open_envelope(_broadcast(round_number=3), BOB, DIRECTORY, guard)
    with pytest.raises(MisuseError):
        guard.open_round("frost/dkg", SESSION, 1)


def test_message_of_another_session_is_refused():
    envelope = seal(b"x", _header(1, 1, session=OTHER_SESSION), ALICE, None, system_random)
    with pytest.raises(ReplayError):
        open_envelope(envelope, BOB, DIRECTORY, _guard(1))


def test_closed_session_refuses_and_cannot_reopen():
    guard = _guard(1)
    guard.close_session("frost/dkg", SESSION)
    assert not guard.is_open("frost/dkg", SESSION)
    with pytest.raises(ReplayError):
        open_envelope(_broadcast(), BOB, DIRECTORY, guard)
    with pytest.raises(MisuseError):
        guard.open_session("frost/dkg", SESSION, [1, 2, 3])


def test_forged_copy_does_not_burn_the_genuine_slot():
    guard = _guard(1)
    forged = seal(b"commitments", _header(1, 1), MALLORY, None, system_random)
    with pytest.raises(BadEnvelopeSignatureError):
        open_envelope(forged, BOB, DIRECTORY, guard)
    assert open_envelope(_broadcast(), BOB, DIRECTORY, guard).payload == b"commitments"


def test_sender_outside_the_session_is_refused():
    guard = ReplayGuard()
    guard.open_session("frost/dkg", SESSION, [2, 3])
    guard.open_round("frost/dkg", SESSION, 1)
    with pytest.raises(ReplayError):
        open_envelope(_broadcast(), BOB, DIRECTORY, guard)


# --- Local misuse -----------------------------------------------------------------------


def test_seal_misuse():
    with pytest.raises(MisuseError):
        seal(b"x", _header(1, 2), ALICE, None, system_random)
    with pytest.raises(MisuseError):
        seal(b"x", _header(1, 1), ALICE, BOB.public, system_random)
    with pytest.raises(MisuseError):
        seal(b"x", _header(2, 1, 2), ALICE, None, system_random)
    with pytest.raises(MisuseError):
        seal(b"x", _header(2, 1, 1), ALICE, ALICE.public, system_random)


# --- Fuzzing ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes_only_typed_errors(data):
    with pytest.raises(CryptoError):
        open_envelope(data, BOB, DIRECTORY, _guard(1, 2))


_GOOD = [_direct(), _broadcast()]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_GOOD), st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_fuzz_mutated_envelopes_only_typed_errors(envelope, position, value):
    mutated = bytearray(envelope)
    index = position % len(mutated)
    if mutated[index] == value:
        value ^= 1
    mutated[index] = value
    with pytest.raises(CryptoError):
        open_envelope(bytes(mutated), BOB, DIRECTORY, _guard(1, 2))


def test_header_with_a_non_text_key_is_a_malformed_envelope():
    # Found by the fuzz test above: one mutated byte turned a header key into a byte
    # string, and sorting the keys raised TypeError instead of a typed error.
    fields = cbor2.loads(_broadcast())
    header = dict(fields["header"])
    header[b"round"] = header.pop("round")
    data = cbor2.dumps({**fields, "header": header}, canonical=True)
    with pytest.raises(MalformedEnvelopeError, match="header"):
        open_envelope(data, BOB, DIRECTORY, _guard(1))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000), st.booleans())
def test_property_round_trip(inner, direct):
    if direct:
        envelope = _direct(inner)
        rounds = (2,)
    else:
        envelope = _broadcast(inner)
        rounds = (1,)
    assert open_envelope(envelope, BOB, DIRECTORY, _guard(*rounds)).payload == inner
