"""Statements and witnesses for the zero-knowledge proof tests (TEST-ONLY keys)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from shardvault.crypto.paillier import PaillierSecretKey
from shardvault.crypto.ring_pedersen import RingPedersenParams
from shardvault.crypto.ring_pedersen import generate as generate_ring_pedersen
from shardvault.crypto.zk.context import ProofContext
from tests.crypto.cggmp21.ecdsa_helpers import fixture_keys

RNG = secrets.token_bytes


@dataclass
class Setup:
    prover: PaillierSecretKey
    verifier: PaillierSecretKey
    setup: RingPedersenParams
    context: ProofContext


def make_setup() -> Setup:
    keys = fixture_keys()
    params, _ = generate_ring_pedersen(keys[1].p, keys[1].q, RNG)
    return Setup(keys[0], keys[1], params, ProofContext(RNG(32), 1, "secp256k1", RNG(32)))


def other_context(context: ProofContext, **changes: object) -> ProofContext:
    fields = {
        "session_id": context.session_id,
        "prover": context.prover,
        "curve": context.curve,
        "binding": context.binding,
    }
    fields.update(changes)
    return ProofContext(**fields)  # type: ignore[arg-type]
