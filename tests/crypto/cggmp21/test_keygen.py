"""CGGMP21 t-of-n key generation: consistency, and every check on a peer's message.

Each malicious-party test mutates one honest message and asserts that the abort names the
party at fault (``ProtocolAbort.culprits``).
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path

import pytest

from shardvault.crypto.errors import MisuseError, ProtocolAbort, TransportError
from shardvault.crypto.group import SECP256K1
from shardvault.crypto.polynomial import lagrange_coefficient
from shardvault.crypto.protocols.cggmp21.keygen import KeygenRound1
from shardvault.crypto.protocols.cggmp21.local import run_keygen
from shardvault.crypto.protocols.cggmp21.messages import KEYGEN_PROTOCOL
from shardvault.crypto.protocols.common import PartyId
from shardvault.crypto.protocols.complaints import ShareContext, encrypt_share

RNG = secrets.token_bytes
PARTIES = [1, 2, 3]


def _round1(session: bytes | None = None) -> dict[int, KeygenRound1]:
    sid = session or RNG(32)
    return {p: KeygenRound1(p, 2, PARTIES, sid, RNG) for p in PARTIES}


def _others(messages: dict[int, object], me: int) -> list[object]:
    return [m for p, m in messages.items() if p != me]


@pytest.mark.parametrize(("min_signers", "max_signers"), [(2, 2), (2, 3), (3, 5)])
def test_outputs_agree_and_interpolate_publicly(min_signers: int, max_signers: int) -> None:
    outputs = run_keygen(min_signers, max_signers, RNG)
    first = outputs[0]
    for out in outputs:
        assert out.public_key == first.public_key
        assert out.chain_code == first.chain_code
        assert dict(out.public_shares) == dict(first.public_shares)
        assert SECP256K1.base_multiply(out.share) == first.public_shares[out.party]
    # Any quorum's public shares interpolate to the public key (no secret is formed).
    quorum = list(range(1, min_signers + 1))
    combined = SECP256K1.sum_points(
        [first.public_shares[p] * lagrange_coefficient(SECP256K1, p, quorum) for p in quorum]
    )
    assert combined == first.public_key


def _advance_to_round2(r1: dict[int, KeygenRound1]):  # type: ignore[no-untyped-def]
    b1 = {p: r.message for p, r in r1.items()}
    return {p: r1[p].next(_others(b1, p)) for p in PARTIES}  # type: ignore[arg-type]


def _with_share(r1, step2, dealer: int, recipient: int, plaintext: bytes):  # type: ignore[no-untyped-def]
    """The dealer's round-2 broadcast with ``plaintext`` correctly encrypted to
    ``recipient``'s complaint key in place of its share."""
    broadcast = step2[dealer][1]
    share = encrypt_share(
        ShareContext(
            KEYGEN_PROTOCOL, broadcast.header.session_id, PartyId(dealer), PartyId(recipient)
        ),
        SECP256K1.decode_point(r1[recipient].message.complaint_key),
        plaintext,
        RNG,
    )
    index = [p for p in PARTIES if p != dealer].index(recipient)
    keys = list(broadcast.share_keys)
    ciphertexts = list(broadcast.share_ciphertexts)
    keys[index], ciphertexts[index] = share.ephemeral_key, share.ciphertext
    return replace(broadcast, share_keys=tuple(keys), share_ciphertexts=tuple(ciphertexts))


def _verdicts_after_round2(step2, forged) -> dict[int, tuple[int, ...]]:  # type: ignore[no-untyped-def]
    """Deliver round 2 (``forged`` replacing its sender's broadcast for everyone), then
    round 3; each party's abort culprits."""
    b2 = {p: step2[p][1] for p in PARTIES}
    b2[forged.header.sender] = forged
    step3 = {p: step2[p][0].next(_others(b2, p)) for p in PARTIES}
    b3 = {p: step3[p][1] for p in PARTIES}
    verdicts = {}
    for p in PARTIES:
        with pytest.raises(ProtocolAbort) as info:
            step3[p][0].next(_others(b3, p))
        verdicts[p] = info.value.culprits
    return verdicts


def test_bad_share_names_the_dealer() -> None:
    # Party 3 encrypts a share that does not match its commitments to party 1: party 1
    # complains in round 3, and party 2, whose own share was good, names party 3 too.
    r1 = _round1()
    step2 = _advance_to_round2(r1)
    forged = _with_share(r1, step2, 3, 1, SECP256K1.scalar(7).to_bytes())
    verdicts = _verdicts_after_round2(step2, forged)
    assert verdicts[1] == verdicts[2] == (3,)


def test_decommitment_that_does_not_open_names_the_sender() -> None:
    step2 = _advance_to_round2(_round1())
    broadcast = step2[2][1]
    forged = replace(broadcast, rid=bytes(32))
    with pytest.raises(ProtocolAbort) as info:
        step2[1][0].next([forged, step2[3][1]])
    assert info.value.culprits == (2,)


def test_equivocating_broadcast_is_caught_by_the_echo() -> None:
    """Party 3 shows one commitment to party 1 and another to party 2."""
    sid = RNG(32)
    r1 = _round1(sid)
    twin = KeygenRound1(3, 2, PARTIES, sid, RNG)  # a second, different round-1 of party 3
    step2_1 = r1[1].next([r1[2].message, r1[3].message])
    step2_2 = r1[2].next([r1[1].message, twin.message])
    step2_3 = r1[3].next([r1[1].message, r1[2].message])
    with pytest.raises(ProtocolAbort) as info:
        step2_1[0].next([step2_2[1], step2_3[1]])
    # Party 2's echo disagrees with what party 1 got from party 3: one of them lies.
    assert info.value.culprits == (2, 3)


def test_bad_schnorr_proof_names_the_prover() -> None:
    step2 = _advance_to_round2(_round1())
    step3 = {p: step2[p][0].next([step2[q][1] for q in PARTIES if q != p]) for p in PARTIES}
    bad = step3[2][1]
    forged = replace(bad, schnorr_response=SECP256K1.scalar(5).to_bytes())
    with pytest.raises(ProtocolAbort) as info:
        step3[1][0].next([forged, step3[3][1]])
    assert info.value.culprits == (2,)


def test_message_replayed_from_another_session_is_refused() -> None:
    old = _round1()
    new = _round1()
    with pytest.raises(ProtocolAbort) as info:
        new[1].next([old[2].message, new[3].message])
    assert info.value.culprits == (2,)


def test_missing_message_is_a_transport_error() -> None:
    r1 = _round1()
    with pytest.raises(TransportError):
        r1[1].next([r1[2].message])


def test_finished_round_refuses_reuse() -> None:
    r1 = _round1()
    r1[1].next([r1[2].message, r1[3].message])
    with pytest.raises(MisuseError):
        r1[1].next([r1[2].message, r1[3].message])


@pytest.mark.parametrize(
    ("min_signers", "parties"),
    [
        pytest.param(1, [1, 2, 3], id="1-of-3"),
        pytest.param(1, [1, 2], id="1-of-2"),
        pytest.param(0, [1, 2, 3], id="0-of-3"),
        pytest.param(1, [1], id="1-of-1"),
    ],
)
def test_keygen_refuses_a_threshold_below_two(min_signers: int, parties: list[int]) -> None:
    """With min_signers = 1 every share is the whole key: our own misuse, refused."""
    with pytest.raises(MisuseError, match="min_signers"):
        KeygenRound1(1, min_signers, parties, RNG(32), RNG)


@pytest.mark.parametrize(
    ("min_signers", "max_signers"),
    [
        pytest.param(1, 2, id="1-of-2"),
        pytest.param(1, 3, id="1-of-3"),
        pytest.param(1, 1, id="1-of-1"),
        pytest.param(2, 1, id="2-of-1"),
    ],
)
def test_local_keygen_refuses_a_threshold_below_two(min_signers: int, max_signers: int) -> None:
    with pytest.raises(MisuseError, match="min_signers"):
        run_keygen(min_signers, max_signers, RNG)


def test_bad_arguments_are_misuse() -> None:
    with pytest.raises(MisuseError):
        KeygenRound1(4, 2, PARTIES, RNG(32), RNG)
    with pytest.raises(MisuseError):
        KeygenRound1(1, 4, PARTIES, RNG(32), RNG)


def test_key_share_serialization_round_trips_and_refuses_bad_input() -> None:
    import cbor2

    from shardvault.crypto.errors import EncodingError
    from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
    from tests.crypto.cggmp21.ecdsa_helpers import make_key_shares

    share = make_key_shares(2, 3, "serialization")[1]
    data = share.to_bytes()
    again = KeyShare.from_bytes(data)
    assert again.to_bytes() == data
    assert again.key_id == share.key_id
    assert "redacted" in repr(again)
    assert str(share.share.value) not in repr(again)
    fields = cbor2.loads(data)
    assert fields["format"] == 1

    def mutated(**changes: object) -> bytes:
        return cbor2.dumps({**fields, **changes}, canonical=True)

    other = SECP256K1.scalar(int.from_bytes(fields["share"], "big") + 1).to_bytes()
    for bad in (
        mutated(format=2),
        mutated(curve="ed25519"),
        mutated(share=other),
        mutated(party=9),
        mutated(chain_code=b"short"),
        mutated(ring_pedersen_s=fields["ring_pedersen_s"][:2]),
        cbor2.dumps({**fields, "extra": 1}, canonical=True),
        data[:-5],
        b"",
    ):
        with pytest.raises(EncodingError):
            KeyShare.from_bytes(bad)


def test_messages_refuse_unknown_or_missing_fields() -> None:
    import cbor2

    from shardvault.crypto.errors import EncodingError
    from shardvault.crypto.protocols.cggmp21.messages import KeygenRound1Message

    r1 = _round1()
    data = r1[1].message.to_bytes()
    assert KeygenRound1Message.from_bytes(data) == r1[1].message
    fields = cbor2.loads(data)
    for bad in ({**fields, "extra": 1}, {k: v for k, v in fields.items() if k != "commitment"}):
        with pytest.raises(EncodingError):
            KeygenRound1Message.from_bytes(cbor2.dumps(bad, canonical=True))


SNAPSHOT = Path(__file__).resolve().parents[2] / "fixtures" / "test_only_cggmp21_keyshare_v1.hex"


def test_format_1_key_share_file_loads_forever() -> None:
    """A key share serialized by format 1 (TEST-ONLY: made from the published fixture
    primes and a seeded random source) must keep loading, byte for byte."""
    from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare

    data = bytes.fromhex(SNAPSHOT.read_text().strip())
    share = KeyShare.from_bytes(data)
    assert share.to_bytes() == data
    assert share.public_key.to_bytes().hex() == (
        "02265bceb8677d7c42ca07fee84e4bb4242863a77c7130330c591cc9267c3c003d"
    )
    assert share.key_id.hex() == "d526a60e104e4518cc6cacac1e36634e578f7b61c2bb474822b4deed908aa5aa"
    assert (share.party, share.min_signers, share.max_signers, share.epoch) == (1, 2, 3, 0)


def test_malformed_round1_commitment_and_duplicates_name_the_sender() -> None:
    r1 = _round1()
    bad = replace(r1[2].message, commitment=b"short")
    with pytest.raises(ProtocolAbort) as info:
        r1[1].next([bad, r1[3].message])
    assert info.value.culprits == (2,)
    r1 = _round1()
    twice = replace(r1[2].message, commitment=bytes(32))
    with pytest.raises(ProtocolAbort) as info:
        r1[1].next([r1[2].message, twice, r1[3].message])
    assert info.value.culprits == (2,)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("echo", b"not a list"),
        ("vss", [b"\x02" + bytes(32)]),
        ("schnorr_commitment", b"\x05" * 33),
        ("salt", b"short"),
    ],
)
def test_malformed_round2_broadcast_names_the_sender(field: str, value: object) -> None:
    step2 = _advance_to_round2(_round1())
    broadcast = step2[2][1]
    forged = replace(broadcast, **{field: value})
    with pytest.raises(ProtocolAbort) as info:
        step2[1][0].next([forged, step2[3][1]])
    assert info.value.culprits == (2,)


def test_wrong_degree_vss_names_the_dealer() -> None:
    """A dealer committing to a polynomial of another degree (here it opens correctly,
    because the dealer itself used the wrong threshold)."""
    sid = RNG(32)
    r1 = {p: KeygenRound1(p, 2, PARTIES, sid, RNG) for p in (1, 3)}
    r1[2] = KeygenRound1(2, 3, PARTIES, sid, RNG)
    step2 = _advance_to_round2(r1)
    with pytest.raises(ProtocolAbort) as info:
        step2[1][0].next([step2[2][1], step2[3][1]])
    assert info.value.culprits == (2,)


def test_malformed_share_names_the_dealer() -> None:
    # A plaintext that is not a scalar, correctly encrypted to party 1: a complaint that
    # every honest party upholds.
    r1 = _round1()
    step2 = _advance_to_round2(r1)
    forged = _with_share(r1, step2, 2, 1, b"\xff" * 32)
    verdicts = _verdicts_after_round2(step2, forged)
    assert verdicts[1] == verdicts[3] == (2,)


def test_attaching_aux_info_of_another_party_or_set_is_misuse() -> None:
    from tests.crypto.cggmp21.conftest import build_aux_info, make_seeded_rng
    from tests.crypto.cggmp21.ecdsa_helpers import fixture_keys

    outputs = run_keygen(2, 3, RNG)
    aux = build_aux_info(fixture_keys()[:3], [1, 2, 3], make_seeded_rng("aux-misuse"))
    with pytest.raises(MisuseError):
        outputs[0].with_aux(aux[2])
    other_set = build_aux_info(fixture_keys()[:2], [1, 2], make_seeded_rng("aux-misuse-2"))
    with pytest.raises(MisuseError):
        outputs[0].with_aux(other_set[1])
    assert "redacted" in repr(outputs[0])


def _to_round3() -> dict[int, tuple[object, object]]:
    step2 = _advance_to_round2(_round1())
    return {p: step2[p][0].next([step2[q][1] for q in PARTIES if q != p]) for p in PARTIES}


def test_a_bad_proof_to_one_party_leaves_no_party_with_a_key() -> None:
    """Party 3 sends party 1 alone a wrong Schnorr response (round 3 is a broadcast the
    relay may split): party 1 names it; party 2, which got the right one, reaches the key
    confirmation but gets no key without party 1's confirmation."""
    step3 = _to_round3()
    bad = replace(step3[3][1], schnorr_response=SECP256K1.scalar(5).to_bytes())  # type: ignore[attr-defined]
    with pytest.raises(ProtocolAbort) as info:
        step3[1][0].next([step3[2][1], bad])  # type: ignore[attr-defined]
    assert info.value.culprits == (3,)
    confirmation2, _ = step3[2][0].next([step3[1][1], step3[3][1]])  # type: ignore[attr-defined]
    _, confirmed3 = step3[3][0].next([step3[1][1], step3[2][1]])  # type: ignore[attr-defined]
    with pytest.raises(TransportError, match="missing"):
        confirmation2.finish([confirmed3])
    with pytest.raises(MisuseError):
        confirmation2.finish([confirmed3])


def test_key_confirmation_of_other_public_data_names_the_sender() -> None:
    step3 = _to_round3()
    step4 = {
        p: step3[p][0].next([step3[q][1] for q in PARTIES if q != p])  # type: ignore[attr-defined]
        for p in PARTIES
    }
    other = replace(step4[3][1], confirmation=bytes(32))
    with pytest.raises(ProtocolAbort) as info:
        step4[1][0].finish([step4[2][1], other])
    assert info.value.culprits == (3,)
    # The same round for another session or round names its sender too.
    replayed = replace(step4[2][1], header=replace(step4[2][1].header, round=3))
    with pytest.raises(ProtocolAbort) as info:
        step4[3][0].finish([step4[1][1], replayed])
    assert info.value.culprits == (2,)
