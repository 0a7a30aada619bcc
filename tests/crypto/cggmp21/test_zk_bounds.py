"""Every response and commitment of the presigning proofs is bounded before any
exponentiation (CGGMP21, ePrint 2021/060, Figures 14, 15, 25, 30 and 31).

Each test takes an honest proof, replaces one field with ``±2^100000`` (a value a peer can
send inside the 4 MiB message limit), and verifies it with ``gmpy2.powmod`` refusing
exponents longer than any honest proof needs (:func:`no_huge_exponent`): the verifier
must raise its typed :class:`VerificationError`, naming the field, before it
exponentiates the value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from shardvault.crypto._sampling import random_signed, random_unit_mod
from shardvault.crypto.errors import VerificationError
from shardvault.crypto.group import SECP256K1
from shardvault.crypto.zk import aff_g, dec, enc, log_star, mul_star
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


_CASES = [
    *(("enc", f) for f in ("S", "A", "C", "z1", "z2")),
    ("enc", "z3"),
    *(("aff_g", f) for f in ("A", "By", "E", "S", "F", "T", "z1", "z2", "w", "wy")),
    ("aff_g", "z3"),
    ("aff_g", "z4"),
    *(("log_star", f) for f in ("S", "A", "D", "z1", "z2")),
    ("log_star", "z3"),
    *(("mul_star", f) for f in ("A", "E", "S", "z1", "w")),
    ("mul_star", "z2"),
    *(("dec", f) for f in ("S", "T", "A", "z1", "w")),
    ("dec", "z2"),
]

_BUILDERS = {
    "enc": _enc,
    "aff_g": _aff_g,
    "log_star": _log_star,
    "mul_star": _mul_star,
    "dec": _dec,
}


@pytest.mark.usefixtures("no_huge_exponent")
@pytest.mark.parametrize("sign", [1, -1], ids=["positive", "negative"])
@pytest.mark.parametrize(("proof_name", "field"), _CASES)
def test_oversized_field_is_refused_before_exponentiation(
    proof_name: str, field: str, sign: int
) -> None:
    proof, verify = _BUILDERS[proof_name]()
    verify(proof)
    with pytest.raises(VerificationError, match=f" {field} "):
        verify(replace(proof, **{field: sign * HUGE}))
