"""The auxiliary-info phase (CGGMP21 Figure 7): an honest run, and one malicious-party
test per check, each asserting that the abort names exactly the culprit.

An honest three-party session runs once per module; each malicious test copies party 1's
round object at the right point and feeds it messages in which party 2 misbehaves (the
multi-party-sig "Rule" style), so the suite stays fast. Keys are test-only fixtures.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import gmpy2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardvault.crypto._sampling import random_below
from shardvault.crypto.errors import EncodingError, MisuseError, ProtocolAbort, TransportError
from shardvault.crypto.paillier import PaillierSecretKey
from shardvault.crypto.protocols.cggmp21 import aux_info
from shardvault.crypto.protocols.cggmp21.aux_info import (
    AuxInfo,
    AuxInfoConfig,
    AuxInfoRound1,
    AuxInfoRound3,
)
from shardvault.crypto.protocols.cggmp21.aux_messages import (
    AUX_INFO_PROTOCOL,
    AuxRound1Message,
    AuxRound2Message,
    AuxRound3Message,
)
from shardvault.crypto.protocols.common import WIRE_VERSION, Header, PartyId, SessionId
from shardvault.crypto.protocols.confirmation import finish_all
from shardvault.crypto.ring_pedersen import RingPedersenParams
from shardvault.crypto.rng import system_random
from shardvault.crypto.zk import fac, mod, prm
from tests.crypto.cggmp21.conftest import make_seeded_rng

PARTIES = (1, 2, 3)
SID = SessionId(bytes([7]) * 32)
OTHER_SID = SessionId(bytes([8]) * 32)


@dataclass
class Session:
    """An honest run, with pristine copies of party 1's round objects and all messages."""

    keys: dict[int, PaillierSecretKey]
    configs: dict[int, AuxInfoConfig]
    round1: dict[int, AuxInfoRound1]
    m1: dict[int, AuxRound1Message]
    m2: dict[int, AuxRound2Message]
    m3: dict[tuple[int, int], AuxRound3Message]
    round3_party1: AuxInfoRound3
    round3_party3: AuxInfoRound3
    result: dict[PartyId, AuxInfo]


@pytest.fixture(scope="module")
def session(paillier_keys_2048: list[PaillierSecretKey]) -> Session:
    keys = {p: paillier_keys_2048[p + 5] for p in PARTIES}
    configs = {p: AuxInfoConfig(SID, PartyId(p), PARTIES) for p in PARTIES}
    round1 = {p: AuxInfoRound1(configs[p], keys[p], system_random) for p in PARTIES}
    pristine1 = {p: copy.deepcopy(r) for p, r in round1.items()}
    m1 = {p: r.message for p, r in round1.items()}
    round2 = {}
    m2 = {}
    for p in PARTIES:
        round2[p], m2[p] = round1[p].next([m1[j] for j in PARTIES if j != p])
    round3 = {}
    m3 = {}
    for p in PARTIES:
        round3[p], out = round2[p].next([m2[j] for j in PARTIES if j != p])
        for message in out:
            assert message.header.recipient is not None
            m3[(p, int(message.header.recipient))] = message
    pristine3 = copy.deepcopy(round3[1])
    pristine3_3 = copy.deepcopy(round3[3])
    confirmations = [round3[p].next([m3[(j, p)] for j in PARTIES if j != p])[0] for p in PARTIES]
    result = dict(zip((PartyId(p) for p in PARTIES), finish_all(confirmations), strict=True))
    return Session(keys, configs, pristine1, m1, m2, m3, pristine3, pristine3_3, result)


def _party1(
    s: Session,
    m1: Mapping[int, AuxRound1Message] | None = None,
    m2: Mapping[int, AuxRound2Message] | None = None,
    m3: Mapping[int, AuxRound3Message] | None = None,
) -> object:
    """Run party 1 from round 1 with peers' messages, some replaced."""
    m1, m2, m3 = m1 or {}, m2 or {}, m3 or {}
    round2, _ = copy.deepcopy(s.round1[1]).next([m1.get(j, s.m1[j]) for j in (2, 3)])
    round3, _ = round2.next([m2.get(j, s.m2[j]) for j in (2, 3)])
    return round3.next([m3.get(j, s.m3[(j, 1)]) for j in (2, 3)])


def _party1_round3(s: Session, m3: Mapping[int, AuxRound3Message]) -> object:
    """Run only party 1's round 3 with peers' round-3 messages, some replaced."""
    return copy.deepcopy(s.round3_party1).next([m3.get(j, s.m3[(j, 1)]) for j in (2, 3)])


def _abort(call: object, *args: object, **kwargs: object) -> ProtocolAbort:
    assert callable(call)
    with pytest.raises(ProtocolAbort) as info:
        call(*args, **kwargs)
    return info.value


def _rho(*messages: AuxRound2Message) -> bytes:
    value = 0
    for message in messages:
        value ^= int.from_bytes(message.rho, "big")
    return value.to_bytes(32, "big")


def _malicious_reveal(
    s: Session, /, **changes: object
) -> tuple[dict[int, AuxRound1Message], dict[int, AuxRound2Message]]:
    """Party 2 reveals changed values and commits to them consistently towards everyone."""
    bad = dataclasses.replace(s.m2[2], **changes)  # type: ignore[arg-type]
    commitment = aux_info._commitment(s.configs[1], 2, bad)
    bad = dataclasses.replace(bad, echo=(s.m2[2].echo[0], commitment, s.m2[2].echo[2]))
    echo3 = (s.m2[3].echo[0], commitment, s.m2[3].echo[2])
    m1 = {2: dataclasses.replace(s.m1[2], commitment=commitment)}
    return m1, {2: bad, 3: dataclasses.replace(s.m2[3], echo=echo3)}


def _with_bad_key(
    s: Session,
    bad_key: PaillierSecretKey,
    config2: AuxInfoConfig | None = None,
    session_for_proofs: bytes = SID,
) -> object:
    """Party 2 runs the protocol's algorithms on a bad Paillier key of its choosing (an
    adversary skips its own checks); parties 1 and 3 are honest."""
    round1_2 = AuxInfoRound1(config2 or s.configs[2], bad_key, system_random)
    _, m2_2 = round1_2.next([s.m1[1], s.m1[3]])
    _, m2_3 = copy.deepcopy(s.round1[3]).next([s.m1[1], round1_2.message])
    round2_1, _ = copy.deepcopy(s.round1[1]).next([round1_2.message, s.m1[3]])
    round3_1, _ = round2_1.next([m2_2, m2_3])
    context = s.configs[1].context(_rho(s.m2[1], m2_2, m2_3))
    setup1 = RingPedersenParams(s.m2[1].n, s.m2[1].s, s.m2[1].t)
    out = []
    for sender, key in ((2, bad_key), (3, s.keys[3])):
        sid = session_for_proofs if sender == 2 else SID
        out.append(
            AuxRound3Message(
                Header(AUX_INFO_PROTOCOL, WIRE_VERSION, SID, 3, PartyId(sender), PartyId(1)),
                mod.prove(
                    key, session_id=sid, prover=sender, rng=system_random, context=context
                ).to_bytes(),
                fac.prove(
                    key, setup1, session_id=sid, prover=sender, rng=system_random, context=context
                ).to_bytes(),
            )
        )
    return round3_1.next(out)


def _prime(bits: int, residue: int, seed: str) -> int:
    rng = make_seeded_rng(seed)
    while True:
        candidate = gmpy2.next_prime(random_below(1 << bits, rng) | (3 << (bits - 2)))
        if candidate % 4 == residue and candidate.bit_length() == bits:
            return int(candidate)


# --- honest run ---------------------------------------------------------------------------


def test_honest_run_agrees(session: Session) -> None:
    results = session.result
    digests = {info.digest() for info in results.values()}
    assert len(digests) == 1
    for party, info in results.items():
        assert info.parties == PARTIES
        assert info.paillier_secret.n == session.keys[party].n
        for other in PARTIES:
            assert info.paillier(other).n == session.keys[other].n
            params = info.ring_pedersen(other)
            assert (params.n, params.s, params.t) == (
                session.m2[other].n,
                session.m2[other].s,
                session.m2[other].t,
            )
            params.validate()
    with pytest.raises(MisuseError):
        results[PartyId(1)].paillier(9)


def test_run_locally_and_serialization(paillier_keys_2048: list[PaillierSecretKey]) -> None:
    configs = [AuxInfoConfig(OTHER_SID, PartyId(p), (1, 2)) for p in (1, 2)]
    out = aux_info.run_locally(
        configs, {1: paillier_keys_2048[0], 2: paillier_keys_2048[1]}, system_random
    )
    info = out[PartyId(1)]
    assert info.digest() == out[PartyId(2)].digest()
    again = AuxInfo.from_bytes(info.to_bytes())
    assert again.digest() == info.digest()
    assert again.paillier_secret.p == info.paillier_secret.p
    text = repr(info)
    assert str(info.paillier_secret.p) not in text
    assert str(info.paillier_secret.q) not in text


def test_aux_info_decoding_rejects_bad_input(session: Session) -> None:
    info = session.result[PartyId(1)]
    good = info.to_bytes()
    fields = aux_info.decode_wire(good, ("version", "party", "paillier_secret", "public"))
    bad_version = aux_info.encode_wire({**fields, "version": 99})
    public = fields["public"]
    assert isinstance(public, list)
    small = [[2, 2**1023 + 1, 5, 7], *public[1:]]
    too_small = aux_info.encode_wire({**fields, "public": small})
    wrong_party = aux_info.encode_wire({**fields, "party": 9})
    for bad in (bad_version, too_small, wrong_party, good[:-1], good + b"\x00"):
        with pytest.raises(EncodingError):
            AuxInfo.from_bytes(bad)


def test_reused_round_refused(session: Session) -> None:
    round1 = copy.deepcopy(session.round1[1])
    round1.next([session.m1[2], session.m1[3]])
    with pytest.raises(MisuseError):
        round1.next([session.m1[2], session.m1[3]])
    round3 = copy.deepcopy(session.round3_party1)
    round3.next([session.m3[(2, 1)], session.m3[(3, 1)]])
    with pytest.raises(MisuseError):
        round3.next([session.m3[(2, 1)], session.m3[(3, 1)]])


def test_config_misuse(paillier_keys_1024: list[PaillierSecretKey]) -> None:
    with pytest.raises(MisuseError, match="unsafe_test_only"):
        AuxInfoConfig(SID, PartyId(1), PARTIES, min_modulus_bits=1024)
    with pytest.raises(MisuseError):
        AuxInfoConfig(SID, PartyId(4), PARTIES)
    with pytest.raises(MisuseError):
        AuxInfoConfig(SessionId(b"short"), PartyId(1), PARTIES)
    with pytest.raises(MisuseError, match="own Paillier modulus"):
        AuxInfoRound1(AuxInfoConfig(SID, PartyId(1), PARTIES), paillier_keys_1024[0], system_random)


# --- round 1 ------------------------------------------------------------------------------


def test_message_from_another_session_names_sender(session: Session) -> None:
    replayed = dataclasses.replace(
        session.m1[2], header=dataclasses.replace(session.m1[2].header, session_id=OTHER_SID)
    )
    abort = _abort(copy.deepcopy(session.round1[1]).next, [replayed, session.m1[3]])
    assert abort.culprits == (2,)
    assert "another session" in abort.reason


def test_two_different_commitments_name_sender(session: Session) -> None:
    second = dataclasses.replace(session.m1[2], commitment=bytes(32))
    abort = _abort(copy.deepcopy(session.round1[1]).next, [session.m1[2], second, session.m1[3]])
    assert abort.culprits == (2,)


def test_missing_or_foreign_sender_is_transport_error(session: Session) -> None:
    with pytest.raises(TransportError):
        copy.deepcopy(session.round1[1]).next([session.m1[2]])
    foreign = dataclasses.replace(
        session.m1[2], header=dataclasses.replace(session.m1[2].header, sender=PartyId(9))
    )
    with pytest.raises(TransportError):
        copy.deepcopy(session.round1[1]).next([foreign, session.m1[3]])


# --- round 2 ------------------------------------------------------------------------------


def test_reveal_not_opening_commitment(session: Session) -> None:
    bad = dataclasses.replace(session.m2[2], u=bytes(32))
    abort = _abort(_party1, session, m2={2: bad})
    assert abort.culprits == (2,)
    assert "commitment" in abort.reason


def test_equivocated_broadcast(session: Session) -> None:
    """Party 3 echoes party 2's round-1 commitment differently from what party 1 got.

    Either party 2 equivocated or party 3 misreports; party 1 cannot tell which, so both
    are named (as in key generation, presigning, refresh and the FROST DKG). Here party 3
    is the liar: naming party 2 alone would blame only an honest party.
    """
    echo = (session.m2[3].echo[0], bytes(32), session.m2[3].echo[2])
    abort = _abort(_party1, session, m2={3: dataclasses.replace(session.m2[3], echo=echo)})
    assert abort.culprits == (2, 3)
    assert "equivocated" in abort.reason


def test_equivocation_named_by_each_honest_party_meets_in_the_culprit(session: Session) -> None:
    """Party 2 commits to one thing towards party 1 and to another towards party 3, and
    tells each a story consistent with what it showed them. Each honest party names the
    equivocator and the other honest party (it cannot tell them apart); never itself, and
    the two accusations meet only in party 2."""
    twin = AuxInfoRound1(session.configs[2], session.keys[2], system_random)
    _, twin_m2 = twin.next([session.m1[1], session.m1[3]])
    # Party 1 sees the twin's commitment and reveal; party 3 sees party 2's real ones.
    round2_1, m2_1 = copy.deepcopy(session.round1[1]).next([twin.message, session.m1[3]])
    seen_by_1 = _abort(round2_1.next, [twin_m2, session.m2[3]])
    round2_3, _ = copy.deepcopy(session.round1[3]).next([session.m1[1], session.m1[2]])
    seen_by_3 = _abort(round2_3.next, [m2_1, session.m2[2]])
    assert seen_by_1.culprits == (2, 3)
    assert seen_by_3.culprits == (1, 2)
    assert set(seen_by_1.culprits) & set(seen_by_3.culprits) == {2}


def test_too_small_modulus(session: Session, paillier_keys_1024: list[PaillierSecretKey]) -> None:
    """A 1024-bit modulus with valid proofs is refused by the size check."""
    lax = AuxInfoConfig(SID, PartyId(2), PARTIES, min_modulus_bits=1024, unsafe_test_only=True)
    abort = _abort(_with_bad_key, session, paillier_keys_1024[0], lax)
    assert abort.culprits == (2,)
    assert "below the required 2048" in abort.reason


def test_too_large_modulus(session: Session) -> None:
    """A modulus above MAX_MODULUS_BITS is refused at the reveal, naming its sender, before
    Πprm (or later Πmod and Πfac) exponentiates anything modulo it."""
    m2 = session.m2[2]
    oversized = (m2.n << 2100) | 1
    m1_override, m2_override = _malicious_reveal(session, n=oversized)
    abort = _abort(_party1, session, m1=m1_override, m2=m2_override)
    assert abort.culprits == (2,)
    assert "above the maximum of 4096" in abort.reason


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"s": 1}, "base s"),
        ({"t": 0}, "base t"),
        ("s_not_unit", "base s is not in Z*_N"),
        ("s_out_of_range", "base s"),
        ("s_not_in_t", "Πprm"),
        ("prm_tampered", "Πprm"),
        ({"prm_proof": b"\x00garbage"}, "malformed Πprm"),
        ("copy_of_ours", "copy of ours"),
        ("even_modulus", "even"),
    ],
)
def test_bad_ring_pedersen_reveal(
    session: Session, changes: dict[str, object] | str, reason: str
) -> None:
    m2 = session.m2[2]
    if changes == "s_not_unit":
        changes = {"s": session.keys[2].p}
    elif changes == "s_out_of_range":
        changes = {"s": m2.s + m2.n}
    elif changes == "s_not_in_t":
        # -s is a quadratic non-residue, so it is outside ⟨t⟩ ⊂ QR_N; the proof is for s.
        changes = {"s": m2.n - m2.s}
    elif changes == "prm_tampered":
        proof = prm.PrmProof.from_bytes(m2.prm_proof)
        responses = (proof.responses[0] + 1, *proof.responses[1:])
        changes = {"prm_proof": dataclasses.replace(proof, responses=responses).to_bytes()}
    elif changes == "copy_of_ours":
        m1 = session.m2[1]
        changes = {"n": m1.n, "s": m1.s, "t": m1.t, "prm_proof": m1.prm_proof}
    elif changes == "even_modulus":
        changes = {"n": m2.n + 1}
    assert isinstance(changes, dict)
    m1_override, m2_override = _malicious_reveal(session, **changes)
    abort = _abort(_party1, session, m1=m1_override, m2=m2_override)
    assert abort.culprits == (2,)
    assert reason in abort.reason


# --- round 3 ------------------------------------------------------------------------------


def test_non_blum_modulus(session: Session) -> None:
    """BitForge: a modulus that is not Paillier-Blum (p ≡ 1 mod 4) fails Πmod."""
    bad_key = PaillierSecretKey(_prime(1024, 1, "aux-non-blum-p"), _prime(1024, 3, "aux-nb-q"))
    abort = _abort(_with_bad_key, session, bad_key)
    assert abort.culprits == (2,)
    assert "Πmod" in abort.reason


def test_small_factor_modulus(session: Session) -> None:
    """Alpha-Rays/BitForge: a 2048-bit Blum modulus with a 300-bit factor fails Πfac."""
    bad_key = PaillierSecretKey(_prime(300, 3, "aux-small-p"), _prime(1748, 3, "aux-small-q"))
    assert bad_key.n.bit_length() == 2048
    abort = _abort(_with_bad_key, session, bad_key)
    assert abort.culprits == (2,)
    assert "Πfac" in abort.reason


def test_proofs_replayed_from_another_session(session: Session) -> None:
    """Proofs made for another session id, in a message with this session's header."""
    abort = _abort(_with_bad_key, session, session.keys[2], None, OTHER_SID)
    assert abort.culprits == (2,)
    assert "Πmod" in abort.reason


def test_tampered_mod_proof(session: Session) -> None:
    message = session.m3[(2, 1)]
    proof = mod.ModProof.from_bytes(message.mod_proof)
    tampered = dataclasses.replace(proof, z=(proof.z[0] + 1, *proof.z[1:])).to_bytes()
    abort = _abort(_party1_round3, session, {2: dataclasses.replace(message, mod_proof=tampered)})
    assert abort.culprits == (2,)
    assert "Πmod" in abort.reason


def test_tampered_fac_proof(session: Session) -> None:
    message = session.m3[(2, 1)]
    proof = fac.FacProof.from_bytes(message.fac_proof)
    tampered = dataclasses.replace(proof, v=proof.v + 1).to_bytes()
    abort = _abort(_party1_round3, session, {2: dataclasses.replace(message, fac_proof=tampered)})
    assert abort.culprits == (2,)
    assert "Πfac" in abort.reason


def test_fac_proof_for_another_recipient(session: Session) -> None:
    """Πfac made against party 3's ring-Pedersen parameters does not convince party 1."""
    message = dataclasses.replace(session.m3[(2, 1)], fac_proof=session.m3[(2, 3)].fac_proof)
    abort = _abort(_party1_round3, session, {2: message})
    assert abort.culprits == (2,)


def test_out_of_range_fac_response(session: Session) -> None:
    message = session.m3[(2, 1)]
    proof = fac.FacProof.from_bytes(message.fac_proof)
    tampered = dataclasses.replace(proof, z1=proof.z1 << 1200).to_bytes()
    abort = _abort(_party1_round3, session, {2: dataclasses.replace(message, fac_proof=tampered)})
    assert abort.culprits == (2,)
    assert "z1 or z2" in abort.reason


HUGE = 1 << 100_000


def _oversized(proof: object, field: str) -> object:
    value = getattr(proof, field)
    # In a per-repetition list, the last repetition: every earlier one is honest.
    forged = (*value[:-1], HUGE) if isinstance(value, tuple) else HUGE
    return dataclasses.replace(proof, **{field: forged})  # type: ignore[call-overload]


@pytest.mark.usefixtures("no_huge_exponent")
@pytest.mark.parametrize(
    ("kind", "field"),
    [
        *(("mod", f) for f in ("w", "x", "a", "b", "z")),
        *(("fac", f) for f in ("P", "Q", "A", "B", "T", "sigma", "z1", "z2", "w1", "w2", "v")),
    ],
)
def test_oversized_round3_proof_field_names_only_the_sender(
    session: Session, kind: str, field: str
) -> None:
    """Every Πmod and Πfac value of ``2^100000`` is refused by its bound, naming party 2
    (never the honest party 3), before anything is exponentiated with it."""
    message = session.m3[(2, 1)]
    if kind == "mod":
        forged = dataclasses.replace(
            message,
            mod_proof=_oversized(mod.ModProof.from_bytes(message.mod_proof), field).to_bytes(),  # type: ignore[attr-defined]
        )
    else:
        forged = dataclasses.replace(
            message,
            fac_proof=_oversized(fac.FacProof.from_bytes(message.fac_proof), field).to_bytes(),  # type: ignore[attr-defined]
        )
    abort = _abort(_party1_round3, session, {2: forged})
    assert abort.culprits == (2,)
    assert ("Πmod" if kind == "mod" else "Πfac") in abort.reason


@pytest.mark.usefixtures("no_huge_exponent")
@pytest.mark.parametrize("field", ["commitments", "responses"])
def test_oversized_prm_field_names_only_the_sender(session: Session, field: str) -> None:
    """A Πprm value of ``2^100000``, committed to in round 1 like any reveal, is refused at
    round 2 by its bound, naming party 2 alone."""
    proof = prm.PrmProof.from_bytes(session.m2[2].prm_proof)
    m1_override, m2_override = _malicious_reveal(
        session,
        prm_proof=_oversized(proof, field).to_bytes(),  # type: ignore[attr-defined]
    )
    abort = _abort(_party1, session, m1=m1_override, m2=m2_override)
    assert abort.culprits == (2,)
    assert "Πprm" in abort.reason


def test_malformed_proof_bytes(session: Session) -> None:
    message = dataclasses.replace(session.m3[(2, 1)], mod_proof=b"\x01")
    abort = _abort(_party1_round3, session, {2: message})
    assert abort.culprits == (2,)
    assert "malformed" in abort.reason


def test_direct_message_for_someone_else(session: Session) -> None:
    abort = _abort(_party1_round3, session, {2: session.m3[(2, 3)]})
    assert abort.culprits == (2,)
    assert "addressed to another party" in abort.reason


def test_every_culprit_is_named(session: Session) -> None:
    bad = {
        j: dataclasses.replace(session.m3[(j, 1)], fac_proof=session.m3[(j, 1)].mod_proof)
        for j in (2, 3)
    }
    abort = _abort(_party1_round3, session, bad)
    assert abort.culprits == (2, 3)


def test_wire_round_trip(session: Session) -> None:
    for message in (session.m1[2], session.m2[2], session.m3[(2, 1)]):
        assert type(message).from_bytes(message.to_bytes()) == message
    with pytest.raises(EncodingError):
        AuxRound2Message.from_bytes(session.m1[2].to_bytes())


def test_round_is_terminal_after_abort(session: Session) -> None:
    round3 = copy.deepcopy(session.round3_party1)
    bad = dataclasses.replace(session.m3[(2, 1)], mod_proof=b"\x01")
    with pytest.raises(ProtocolAbort):
        round3.next([bad, session.m3[(3, 1)]])
    with pytest.raises(MisuseError):
        round3.next([session.m3[(2, 1)], session.m3[(3, 1)]])


def test_key_generation_refuses_small_moduli() -> None:
    """Production key generation never goes below 2048 bits (no test-only escape)."""
    with pytest.raises(MisuseError):
        aux_info.generate_paillier_key(system_random, modulus_bits=1024)


def test_echo_misreporting_our_commitment_blames_the_reporter(session: Session) -> None:
    """Party 3 claims party 1 (us) committed to something else: party 1 knows better."""
    echo = (bytes(32), session.m2[3].echo[1], session.m2[3].echo[2])
    abort = _abort(_party1, session, m2={3: dataclasses.replace(session.m2[3], echo=echo)})
    assert abort.culprits == (3,)


def test_echo_misreporting_its_own_commitment_blames_the_reporter(session: Session) -> None:
    """Party 3 echoes its own commitment as something else: only party 3 can be lying."""
    echo = (session.m2[3].echo[0], session.m2[3].echo[1], bytes(32))
    abort = _abort(_party1, session, m2={3: dataclasses.replace(session.m2[3], echo=echo)})
    assert abort.culprits == (3,)


def test_echo_of_wrong_length(session: Session) -> None:
    abort = _abort(_party1, session, m2={3: dataclasses.replace(session.m2[3], echo=())})
    assert abort.culprits == (3,)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_decoders_raise_only_typed_errors(session: Session, data: st.DataObject) -> None:
    """Fuzz: mutated or random bytes either decode or raise EncodingError, nothing else."""
    kind = data.draw(st.sampled_from([AuxRound1Message, AuxRound2Message, AuxRound3Message]))
    sample = {
        AuxRound1Message: session.m1[2],
        AuxRound2Message: session.m2[2],
        AuxRound3Message: session.m3[(2, 1)],
    }[kind].to_bytes()
    if data.draw(st.booleans()):
        raw = data.draw(st.binary(max_size=200))
    else:
        mutated = bytearray(sample[:4000])
        for _ in range(data.draw(st.integers(1, 4))):
            index = data.draw(st.integers(0, len(mutated) - 1))
            mutated[index] = data.draw(st.integers(0, 255))
        raw = bytes(mutated)
    for decoder in (kind.from_bytes, mod.ModProof.from_bytes, fac.FacProof.from_bytes):
        try:
            decoder(raw)
        except EncodingError:
            pass


def test_a_bad_proof_to_one_party_leaves_no_party_with_auxiliary_info(session: Session) -> None:
    """Party 2 sends party 1 alone a bad Πmod: party 1 names it, and party 3, whose proofs
    were all good, gets no auxiliary info without party 1's key confirmation."""
    message = session.m3[(2, 1)]
    proof = mod.ModProof.from_bytes(message.mod_proof)
    tampered = dataclasses.replace(proof, z=(proof.z[0] + 1, *proof.z[1:])).to_bytes()
    abort = _abort(_party1_round3, session, {2: dataclasses.replace(message, mod_proof=tampered)})
    assert abort.culprits == (2,)
    confirmation3, message3 = copy.deepcopy(session.round3_party3).next(
        [session.m3[(1, 3)], session.m3[(2, 3)]]
    )
    # Party 2 confirms what party 3 holds (the same digest); party 1, which aborted,
    # confirms nothing, so party 3 never gets its auxiliary info.
    from_2 = dataclasses.replace(
        message3, header=dataclasses.replace(message3.header, sender=PartyId(2))
    )
    with pytest.raises(TransportError, match="missing"):
        confirmation3.finish([from_2])


def test_key_confirmation_of_other_auxiliary_info_names_the_sender(session: Session) -> None:
    confirmation1, _ = copy.deepcopy(session.round3_party1).next(
        [session.m3[(2, 1)], session.m3[(3, 1)]]
    )
    _, message3 = copy.deepcopy(session.round3_party3).next(
        [session.m3[(1, 3)], session.m3[(2, 3)]]
    )
    other = dataclasses.replace(message3, confirmation=bytes(32))
    forged2 = dataclasses.replace(
        message3, header=dataclasses.replace(message3.header, sender=PartyId(2))
    )
    abort = _abort(confirmation1.finish, [forged2, other])
    assert abort.culprits == (3,)
