"""CGGMP21 key generation, presigning and online signing through the session driver.

The same round objects as ``tests/crypto/cggmp21``, but every message crosses the
channel as a signed (and, when direct, encrypted) envelope. Auxiliary info comes from the
TEST-ONLY Paillier fixture (``tests/fixtures/test_only_paillier.json``). The signature is
verified with coincurve (libsecp256k1) and eth-account recovery.
"""

from __future__ import annotations

import secrets

from shardvault.cosigner.cggmp21 import ecdsa_signing_driver, keygen_driver, presign_driver
from shardvault.crypto.channel import Directory, PartyIdentity, ReplayGuard, peek_header
from shardvault.crypto.protocols.common import session_id
from shardvault.crypto.rng import system_random
from tests.crypto.cggmp21.conftest import build_aux_info, make_seeded_rng
from tests.crypto.cggmp21.ecdsa_helpers import assert_valid_signature, fixture_keys


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
