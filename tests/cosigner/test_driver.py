"""The session driver runs FROST over signed envelopes in memory.

Signatures are checked with PyNaCl (Ed25519, RFC 8032) and coincurve (BIP340), verifiers
written by others.
"""

import dataclasses

import coincurve
import pytest
from nacl.signing import VerifyKey

from shardvault.cosigner.errors import SessionError
from shardvault.cosigner.frost import dkg_driver, signing_driver
from shardvault.crypto.channel import (
    Directory,
    PartyIdentity,
    ReplayError,
    ReplayGuard,
    open_envelope,
    peek_header,
    seal,
)
from shardvault.crypto.errors import ProtocolAbort
from shardvault.crypto.protocols.common import PartyId, SessionId, session_id
from shardvault.crypto.protocols.complaints import ShareContext, encrypt_share
from shardvault.crypto.protocols.frost import (
    ED25519_SHA512,
    SECP256K1_BIP340,
    DkgRound2Message,
)
from shardvault.crypto.protocols.frost.ciphersuite import Ciphersuite
from shardvault.crypto.rng import system_random


def _parties(n=3):
    ids = {p: PartyIdentity.generate(p, system_random) for p in range(1, n + 1)}
    directory = Directory.of({p: i.public for p, i in ids.items()})
    guards = {p: ReplayGuard() for p in ids}
    return ids, directory, guards


def _pump(drivers, initial):
    """Deliver envelopes until quiet; broadcasts go to every other party."""
    from shardvault.crypto.channel import peek_header

    queue = list(initial)
    delivered = []
    while queue:
        envelope = queue.pop(0)
        delivered.append(envelope)
        header = peek_header(envelope)
        targets = (
            [header.recipient]
            if header.recipient is not None
            else [p for p in drivers if p != header.sender]
        )
        for target in targets:
            queue.extend(drivers[target].receive(envelope))
    return delivered


def _dkg(suite: Ciphersuite, ids, directory, guards, session: SessionId):
    drivers = {
        p: dkg_driver(
            suite=suite,
            identity=ids[p],
            directory=directory,
            guard=guards[p],
            session=session,
            parties=list(ids),
            min_signers=2,
            rng=system_random,
        )
        for p in ids
    }
    first = [e for d in drivers.values() for e in d.start()]
    wire = _pump(drivers, first)
    assert all(d.done for d in drivers.values())
    return {p: d.result for p, d in drivers.items()}, wire


@pytest.mark.parametrize("suite", [ED25519_SHA512, SECP256K1_BIP340])
def test_dkg_and_signing_over_envelopes(suite):
    ids, directory, guards = _parties()
    keys, wire = _dkg(suite, ids, directory, guards, session_id(system_random(32)))
    public = {k.public.public_key_bytes for k in keys.values()}
    assert len(public) == 1
    # No share crosses the wire in the clear.
    for key in keys.values():
        assert key.signing_share.to_bytes() not in b"".join(wire)
    message = b"a message to sign" if suite is ED25519_SHA512 else bytes(range(32))
    signers = [1, 3]
    sid = session_id(system_random(32))
    drivers = {
        p: signing_driver(
            key=keys[p],
            identity=ids[p],
            directory=directory,
            guard=guards[p],
            session=sid,
            signers=signers,
            message=message,
            rng=system_random,
        )
        for p in signers
    }
    _pump(drivers, [e for d in drivers.values() for e in d.start()])
    signatures = {d.result for d in drivers.values()}
    assert len(signatures) == 1
    signature = signatures.pop()
    key_bytes = public.pop()
    if suite is ED25519_SHA512:
        VerifyKey(key_bytes).verify(message, signature)
    else:
        assert coincurve.PublicKeyXOnly(key_bytes).verify(signature, message)


def _pump_catching(drivers, initial, tamper):
    """Deliver envelopes until quiet, passing each through ``tamper``; an abort ends only
    the driver that raised it."""
    queue = [tamper(e) for e in initial]
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
                queue.extend(tamper(e) for e in drivers[target].receive(envelope))
            except ProtocolAbort:
                pass


@pytest.mark.parametrize("fault", ["undecryptable", "bad-share"])
def test_bad_share_over_envelopes_is_judged_alike_by_every_honest_party(fault):
    # Party 3 broadcasts, validly signed, a round-2 ciphertext for party 1 that does not
    # open, or a wrong share correctly encrypted to party 1's complaint key. Party 1
    # complains; party 2 (whose own share was good) judges the complaint and names party 3
    # too; nobody gets a key.
    ids, directory, guards = _parties()
    sid = session_id(system_random(32))
    drivers = {
        p: dkg_driver(
            suite=ED25519_SHA512,
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
    forged = []

    def tamper(envelope):
        header = peek_header(envelope)
        if header.sender != 3 or header.round != 2:
            return envelope
        inner = DkgRound2Message.from_bytes(open_envelope(envelope, ids[1], directory).payload)
        keys, ciphertexts = list(inner.share_keys), list(inner.share_ciphertexts)
        if fault == "undecryptable":
            ciphertexts[0] = bytes([ciphertexts[0][0] ^ 1]) + ciphertexts[0][1:]
        else:
            # The culprit knows party 1's complaint key from round 1; it encrypts 7.
            round1 = drivers[3]._step._state  # the culprit reads its own state
            share = encrypt_share(
                ShareContext("frost/dkg", sid, PartyId(3), PartyId(1)),
                round1._complaint_keys[1],
                ED25519_SHA512.group.scalar(7).to_bytes(),
                system_random,
            )
            keys[0], ciphertexts[0] = share.ephemeral_key, share.ciphertext
        bad = dataclasses.replace(
            inner, share_keys=tuple(keys), share_ciphertexts=tuple(ciphertexts)
        )
        sealed = seal(bad.to_bytes(), bad.header, ids[3], None, system_random)
        forged.append(sealed)
        return sealed

    _pump_catching(drivers, [e for d in drivers.values() for e in d.start()], tamper)
    assert forged
    for party in (1, 2):
        assert drivers[party].done
        assert drivers[party].result is None
        assert drivers[party].abort is not None
        assert drivers[party].abort.culprits == (3,), drivers[party].abort
        assert "complaint" in drivers[party].abort.reason
    # The signed round-2 broadcast that convicts party 3 is in the evidence.
    assert forged[0] in drivers[1].evidence[3]
    with pytest.raises(SessionError):
        drivers[1].receive(forged[0])


def test_replayed_envelope_is_refused_and_the_session_continues():
    ids, directory, guards = _parties()
    sid = session_id(system_random(32))
    drivers = {
        p: dkg_driver(
            suite=ED25519_SHA512,
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
    first = drivers[2].start()
    drivers[1].receive(first[0])
    with pytest.raises(ReplayError):
        drivers[1].receive(first[0])
    assert not drivers[1].done
    assert drivers[1].missing() == [3]


def _to(envelope):
    from shardvault.crypto.channel import peek_header

    return peek_header(envelope).recipient


def _from(envelope):
    from shardvault.crypto.channel import peek_header

    return peek_header(envelope).sender
