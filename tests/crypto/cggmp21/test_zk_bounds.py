"""Every response and commitment of every CGGMP21 proof is bounded before any
exponentiation (ePrint 2021/060: the presigning proofs of Figures 14, 15, 25, 30 and 31,
and the auxiliary-info proofs Πmod, Πprm and Πfac of Figures 16, 17 and 28).

Each test takes an honest proof, replaces one field with ``±2^100000`` (a value a peer can
send inside the 4 MiB message limit), and verifies it with ``gmpy2.powmod`` recording
every call and refusing operands longer than any honest proof needs
(:func:`exponentiations`): the verifier must raise its typed :class:`VerificationError`,
naming the field, before its first exponentiation. (Πsch has no integer field: its
response is a scalar that decodes only below the group order.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from shardvault.crypto._sampling import random_signed, random_unit_mod
from shardvault.crypto.errors import VerificationError
from shardvault.crypto.group import SECP256K1
from shardvault.crypto.ring_pedersen import generate as generate_ring_pedersen
from shardvault.crypto.zk import aff_g, dec, enc, fac, log_star, mod, mul_star, prm
from tests.crypto.cggmp21.ecdsa_helpers import fixture_keys
from tests.crypto.cggmp21.zk_helpers import RNG, make_setup

G = SECP256K1
HUGE = 1 << 100_000


def _enc() -> tuple[Any, Callable[[Any], None]]:
    s = make_setup()
    k = 12345678901234567890
    K, rho = s.prover.encrypt(k, RNG)
    proof = enc.prove(s.context, G.order, s.prover, s.setup, K, k, rho, RNG)
    return proof, lambda p: enc.verify(s.context, G.order, s.prover.public, s.setup, K, p)


def _aff_g() -> tuple[Any, Callable[[Any], None]]:
    s = make_setup()
    verifier = s.verifier.public
    C, _ = verifier.encrypt(31337, RNG)
    x = 2**200 + 5
    y = random_signed(1280, RNG)
    masked, rho = verifier.encrypt(y, RNG)
    D = verifier.add(verifier.scalar_mul(C, x), masked)
    Y, rho_y = s.prover.encrypt(y, RNG)
    X = G.base_multiply(G.scalar(x))
    proof = aff_g.prove(
        s.context, G, verifier, s.prover, s.setup, C, D, Y, X, (x, y, rho, rho_y), RNG
    )
    return proof, lambda p: aff_g.verify(
        s.context, G, verifier, s.prover.public, s.setup, C, D, Y, X, p
    )


def _log_star() -> tuple[Any, Callable[[Any], None]]:
    s = make_setup()
    x = 987654321
    base = G.base_multiply(G.scalar(77))
    X = base * G.scalar(x)
    C, rho = s.prover.encrypt(x, RNG)
    proof = log_star.prove(s.context, G, s.prover, s.setup, C, X, base, x, rho, RNG)
    return proof, lambda p: log_star.verify(s.context, G, s.prover.public, s.setup, C, X, base, p)


def _mul_star() -> tuple[Any, Callable[[Any], None]]:
    s = make_setup()
    x = 0xC0FFEE
    C, _ = s.prover.encrypt(123456789, RNG)
    pk = s.prover.public
    rho = random_unit_mod(pk.n, RNG)
    D = pk.add(pk.scalar_mul(C, x), s.prover.nonce_power(rho))
    X = G.base_multiply(G.scalar(x))
    proof = mul_star.prove(s.context, G, s.prover, s.setup, C, D, X, x, rho, RNG)
    return proof, lambda p: mul_star.verify(s.context, G, pk, s.setup, C, D, X, p)


def _dec() -> tuple[Any, Callable[[Any], None]]:
    s = make_setup()
    y = -(3**900)
    bits = 1500
    C, _ = s.prover.encrypt(y, RNG)
    base = G.base_multiply(G.scalar(99))
    Y = base * G.scalar(y)
    proof = dec.prove(s.context, G, s.prover, s.setup, C, base, Y, bits, RNG)
    return proof, lambda p: dec.verify(s.context, G, s.prover.public, s.setup, C, base, Y, bits, p)


def _mod() -> tuple[Any, Callable[[Any], None]]:
    key = fixture_keys()[0]
    sid = RNG(32)
    proof = mod.prove(key, session_id=sid, prover=2, rng=RNG)
    return proof, lambda p: mod.verify(p, key.n, session_id=sid, prover=2)


def _prm() -> tuple[Any, Callable[[Any], None]]:
    key = fixture_keys()[0]
    params, secret = generate_ring_pedersen(key.p, key.q, RNG)
    sid = RNG(32)
    proof = prm.prove(params, secret, session_id=sid, prover=2, rng=RNG)
    return proof, lambda p: prm.verify(p, params, session_id=sid, prover=2)


def _fac() -> tuple[Any, Callable[[Any], None]]:
    keys = fixture_keys()
    setup, _ = generate_ring_pedersen(keys[1].p, keys[1].q, RNG)
    sid = RNG(32)
    proof = fac.prove(keys[0], setup, session_id=sid, prover=2, rng=RNG)
    return proof, lambda p: fac.verify(p, keys[0].n, setup, session_id=sid, prover=2)


def _last(values: tuple[int, ...], value: int) -> tuple[int, ...]:
    # The last repetition: a verifier that checked repetitions one at a time would have
    # exponentiated every earlier one before reaching it.
    return (*values[:-1], value)


_CASES: list[tuple[str, str, str]] = [
    *(("enc", f, f" {f} ") for f in ("S", "A", "C", "z1", "z2", "z3")),
    *(
        ("aff_g", f, f" {f} ")
        for f in ("A", "By", "E", "S", "F", "T", "z1", "z2", "z3", "z4", "w", "wy")
    ),
    *(("log_star", f, f" {f} ") for f in ("S", "A", "D", "z1", "z2", "z3")),
    *(("mul_star", f, f" {f} ") for f in ("A", "E", "S", "z1", "z2", "w")),
    *(("dec", f, f" {f} ") for f in ("S", "T", "A", "z1", "z2", "w")),
    ("mod", "w", "w is not"),
    *(("mod", f, "a_127 or b_127") for f in ("a", "b")),
    *(("mod", f, "x_127 or z_127") for f in ("x", "z")),
    ("prm", "commitments", "A_127 or z_127"),
    ("prm", "responses", "A_127 or z_127"),
    *(("fac", f, f"{f} is not in") for f in ("P", "Q", "A", "B", "T")),
    ("fac", "sigma", "sigma is out of range"),
    *(("fac", f, "z1 or z2") for f in ("z1", "z2")),
    *(("fac", f, "w1 or w2") for f in ("w1", "w2")),
    ("fac", "v", "v is out of range"),
]

_BUILDERS = {
    "enc": _enc,
    "aff_g": _aff_g,
    "log_star": _log_star,
    "mul_star": _mul_star,
    "dec": _dec,
    "mod": _mod,
    "prm": _prm,
    "fac": _fac,
}


@pytest.mark.parametrize("sign", [1, -1], ids=["positive", "negative"])
@pytest.mark.parametrize(("proof_name", "field", "reason"), _CASES)
def test_oversized_field_is_refused_before_exponentiation(
    proof_name: str, field: str, reason: str, sign: int, exponentiations: list[int]
) -> None:
    proof, verify = _BUILDERS[proof_name]()
    verify(proof)
    assert exponentiations, "the honest proof was verified without exponentiating"
    value = getattr(proof, field)
    forged = _last(value, sign * HUGE) if isinstance(value, tuple) else sign * HUGE
    exponentiations.clear()
    with pytest.raises(VerificationError, match=reason):
        verify(replace(proof, **{field: forged}))
    assert exponentiations == []
