"""CGGMP21 key generation, presigning and online signing through the session driver.

The same round objects as ``tests/crypto/cggmp21``, but every message crosses the
channel as a signed (and, when direct, encrypted) envelope. Auxiliary info comes from the
TEST-ONLY Paillier fixture (``tests/fixtures/test_only_paillier.json``). The signature is
verified with coincurve (libsecp256k1) and eth-account recovery.
"""

from __future__ import annotations

import secrets
from dataclasses import replace

from shardvault.cosigner.cggmp21 import ecdsa_signing_driver, keygen_driver, presign_driver
from shardvault.cosigner.driver import Advance, Step
from shardvault.crypto.channel import Directory, PartyIdentity, ReplayGuard, peek_header
from shardvault.crypto.errors import ProtocolAbort
from shardvault.crypto.group import SECP256K1
from shardvault.crypto.protocols.cggmp21.messages import PresignRound3Message
from shardvault.crypto.protocols.cggmp21.presign import PresignRound2
from shardvault.crypto.protocols.common import session_id
from shardvault.crypto.rng import system_random
from tests.crypto.cggmp21.conftest import build_aux_info, make_seeded_rng
from tests.crypto.cggmp21.ecdsa_helpers import assert_valid_signature, fixture_keys, make_key_shares
from tests.crypto.cggmp21.presign_helpers import forge_round3


def _pump(drivers, initial):
    queue = list(initial)
    wire = []
    while queue:
        envelope = queue.pop(0)
        wire.append(envelope)
        header = peek_header(envelope)
        targets = (
            [header.recipient]
            if header.recipient is not None
            else [p for p in drivers if p != header.sender]
        )
        for target in targets:
            queue.extend(drivers[target].receive(envelope))
    return wire


def _start(drivers):
    return [e for d in drivers.values() for e in d.start()]


def test_keygen_presign_sign_over_envelopes():
    ids = {p: PartyIdentity.generate(p, system_random) for p in (1, 2, 3)}
    directory = Directory.of({p: i.public for p, i in ids.items()})
    guards = {p: ReplayGuard() for p in ids}
    sid = session_id(secrets.token_bytes(32))
    keygen = {
        p: keygen_driver(
            identity=ids[p],
            directory=directory,
            guard=guards[p],
            session=sid,
            parties=[1, 2, 3],
            min_signers=2,
            rng=system_random,
        )
        for p in ids
    }
    wire = _pump(keygen, _start(keygen))
    assert all(d.done and d.abort is None for d in keygen.values())
    aux = build_aux_info(fixture_keys()[:3], [1, 2, 3], make_seeded_rng("cosigner-driver"))
    shares = {p: keygen[p].result.with_aux(aux[p]) for p in ids}
    for share in shares.values():
        assert share.share.to_bytes() not in b"".join(wire)

    signers = [1, 3]
    presign_sid = session_id(secrets.token_bytes(32))
    presign = {
        p: presign_driver(
            key=shares[p],
            identity=ids[p],
            directory=directory,
            guard=guards[p],
            session=presign_sid,
            signers=signers,
            rng=system_random,
        )
        for p in signers
    }
    _pump(presign, _start(presign))
    assert all(d.done and d.abort is None for d in presign.values())

    digest = secrets.token_bytes(32)
    sign_sid = session_id(secrets.token_bytes(32))
    sign = {
        p: ecdsa_signing_driver(
            key=shares[p],
            presignature=presign[p].result,
            digest=digest,
            identity=ids[p],
            directory=directory,
            guard=guards[p],
            session=sign_sid,
            rng=system_random,
        )
        for p in signers
    }
    _pump(sign, _start(sign))
    signatures = {d.result for d in sign.values()}
    assert len(signatures) == 1
    public_key = shares[1].public_key.to_bytes()
    assert_valid_signature(public_key, digest, signatures.pop())


class _Tampering(Step):
    """Wraps a party's steps and rewrites what it sends (a malicious co-signer: its
    envelopes are still signed with its own identity)."""

    def __init__(self, inner: Step, tamper) -> None:
        self._inner = inner
        self._tamper = tamper
        self.protocol = inner.protocol
        self.round_number = inner.round_number
        self.wants_broadcast = inner.wants_broadcast
        self.wants_direct = inner.wants_direct

    def decode(self, data, direct):
        return self._inner.decode(data, direct)

    def advance(self, broadcasts, directs):
        step = self._inner.advance(broadcasts, directs)
        following = step.next_step
        return Advance(
            [self._tamper(m) for m in step.outbound],
            None if following is None else _Tampering(following, self._tamper),
            step.result,
        )


def _pump_through_aborts(drivers, initial):
    """Deliver every envelope; a party that aborts keeps its abort and drops out."""
    queue = list(initial)
    while queue:
        envelope = queue.pop(0)
        header = peek_header(envelope)
        targets = (
            [header.recipient]
            if header.recipient is not None
            else [p for p in drivers if p != header.sender]
        )
        for target in targets:
            if drivers[target].done:
                continue
            try:
                queue.extend(drivers[target].receive(envelope))
            except ProtocolAbort:
                pass


def test_mixed_identification_names_only_the_cheater():
    """Signer 3 sends signer 1 a wrong δ and signer 2 a wrong S in round 3 (changed after
    its ψ'' was made, by a co-signer that signs its envelopes). Both honest signers end
    naming exactly signer 3, never each other: ψ'' binds the values it came with. (A
    cheater that proves for what it sends is exposed in round 4:
    tests/crypto/cggmp21/test_presign_agreement.py.)"""
    ids = {p: PartyIdentity.generate(p, system_random) for p in (1, 2, 3)}
    directory = Directory.of({p: i.public for p, i in ids.items()})
    shares = {s.party: s for s in make_key_shares(3, 3, "mixed-identification")}
    sid = session_id(secrets.token_bytes(32))
    drivers = {
        p: presign_driver(
            key=shares[p],
            identity=ids[p],
            directory=directory,
            guard=ReplayGuard(),
            session=sid,
            signers=[1, 2, 3],
            rng=system_random,
        )
        for p in ids
    }

    def equivocate(message):
        if not isinstance(message, PresignRound3Message):
            return message
        payload = dict(message.payload)
        if message.header.recipient == 1:
            delta = (int.from_bytes(payload["delta"], "big") + 1) % SECP256K1.order
            payload["delta"] = delta.to_bytes(32, "big")
        else:
            S = SECP256K1.decode_point(payload["S"]) + SECP256K1.generator()
            payload["S"] = S.to_bytes()
        return replace(message, payload=payload)

    drivers[3]._step = _Tampering(drivers[3]._step, equivocate)
    _pump_through_aborts(drivers, _start(drivers))
    for honest in (1, 2):
        abort = drivers[honest].abort
        assert abort is not None, f"signer {honest} did not end its session"
        assert abort.culprits == (3,), (honest, abort.reason)


def test_an_equivocating_signer_that_proves_what_it_sends_is_named_in_round4(monkeypatch):
    """The same cheat by a signer that proves ψ'' for what each honest signer gets: round
    3 passes everywhere, and round 4 (over signed envelopes, as co-signers run it) makes
    both honest signers name signer 3 alone."""
    honest_next = PresignRound2.next

    def cheating_next(self, received):
        if self._s.me != 3:
            return honest_next(self, received)
        changes = {1: {"delta": 1}, 2: {"S": 1}}
        return forge_round3(self, received, changes, honest_next=honest_next)

    monkeypatch.setattr(PresignRound2, "next", cheating_next)
    ids = {p: PartyIdentity.generate(p, system_random) for p in (1, 2, 3)}
    directory = Directory.of({p: i.public for p, i in ids.items()})
    shares = {s.party: s for s in make_key_shares(3, 3, "mixed-identification-proved")}
    sid = session_id(secrets.token_bytes(32))
    drivers = {
        p: presign_driver(
            key=shares[p],
            identity=ids[p],
            directory=directory,
            guard=ReplayGuard(),
            session=sid,
            signers=[1, 2, 3],
            rng=system_random,
        )
        for p in ids
    }
    _pump_through_aborts(drivers, _start(drivers))
    for honest in (1, 2):
        abort = drivers[honest].abort
        assert abort is not None, f"signer {honest} did not end its session"
        assert abort.culprits == (3,), (honest, abort.reason)
        assert "round 4" in abort.reason
