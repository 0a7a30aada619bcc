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
    seal,
)
from shardvault.crypto.errors import ProtocolAbort
from shardvault.crypto.protocols.common import SessionId, session_id
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


def test_bad_share_aborts_naming_the_sender_with_evidence():
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
    round1 = {p: drivers[p].start() for p in ids}
    # Deliver round 1 everywhere; collect round-2 direct envelopes.
    round2 = []
    for sender, envelopes in round1.items():
        for receiver in ids:
            if receiver != sender:
                round2.extend(drivers[receiver].receive(envelopes[0]))
    # Party 3 replaces its share for party 1 with a wrong one, correctly signed.
    honest = [e for e in round2 if _to(e) == 1 and _from(e) == 2]
    from shardvault.crypto.channel import open_envelope

    original = next(e for e in round2 if _to(e) == 1 and _from(e) == 3)
    inner = DkgRound2Message.from_bytes(open_envelope(original, ids[1], directory).payload)
    bad_share = ED25519_SHA512.group.scalar(7).to_bytes()
    forged = dataclasses.replace(inner, share=bad_share)
    envelope = seal(forged.to_bytes(), forged.header, ids[3], ids[1].public, system_random)
    drivers[1].receive(honest[0])
    with pytest.raises(ProtocolAbort) as info:
        drivers[1].receive(envelope)
    assert info.value.culprits == (3,)
    assert envelope in drivers[1].evidence[3]
    assert drivers[1].done
    assert drivers[1].abort is not None
    with pytest.raises(SessionError):
        drivers[1].receive(envelope)


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
