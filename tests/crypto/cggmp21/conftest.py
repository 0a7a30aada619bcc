"""Fixtures for the CGGMP21 tests: TEST-ONLY Paillier keys and auxiliary info.

The safe primes come from ``tests/fixtures/test_only_paillier.json``, made once by
``scripts/gen_test_fixtures.py``; they are public, so nothing built from them is secret.
Tests never search for safe primes of real sizes.

Fixtures:

- ``paillier_fixture``: the parsed JSON file.
- ``paillier_keys_2048`` / ``paillier_keys_3072``: lists of :class:`PaillierSecretKey`.
- ``paillier_keys_1024``: too-small keys (built with ``unsafe_test_only``), only for
  tests that show such a modulus is refused.
- ``seeded_rng``: a factory of deterministic random sources (test-only).
- ``aux_info_factory``: builds a consistent ``{party: AuxInfo}`` from fixture keys WITHOUT
  running the proofs (fast; for tests of later phases; the auxiliary-info phase itself is
  tested in ``test_aux_info.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from shardvault.crypto.paillier import PaillierSecretKey
from shardvault.crypto.protocols.cggmp21.aux_info import AuxInfo, PartyAuxPublic
from shardvault.crypto.protocols.common import PartyId
from shardvault.crypto.ring_pedersen import generate as generate_ring_pedersen
from shardvault.crypto.rng import RandomSource

FIXTURE_PATH = Path(__file__).resolve().parents[2] / "fixtures" / "test_only_paillier.json"


def make_seeded_rng(seed: bytes | str) -> RandomSource:
    """A deterministic random source (SHAKE256 in counter mode). TEST ONLY."""
    seed_bytes = seed.encode() if isinstance(seed, str) else seed
    counter = 0

    def draw(n: int) -> bytes:
        nonlocal counter
        counter += 1
        return hashlib.shake_256(seed_bytes + counter.to_bytes(8, "big")).digest(n)

    return draw


def _load() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(FIXTURE_PATH.read_text())
    assert "TEST ONLY" in document["warning"]
    return document


def _keys(document: dict[str, Any], size: str, **kwargs: Any) -> list[PaillierSecretKey]:
    return [
        PaillierSecretKey.from_primes(int(pair["p"], 16), int(pair["q"], 16), **kwargs)
        for pair in document["moduli"][size]
    ]


@pytest.fixture(scope="session")
def paillier_fixture() -> dict[str, Any]:
    """The parsed test-only prime fixture."""
    return _load()


@pytest.fixture(scope="session")
def paillier_keys_2048(paillier_fixture: dict[str, Any]) -> list[PaillierSecretKey]:
    """Test-only Paillier-Blum keys with 2048-bit moduli (12 of them)."""
    return _keys(paillier_fixture, "2048")


@pytest.fixture(scope="session")
def paillier_keys_3072(paillier_fixture: dict[str, Any]) -> list[PaillierSecretKey]:
    """Test-only Paillier-Blum keys with 3072-bit moduli (6 of them)."""
    return _keys(paillier_fixture, "3072", min_modulus_bits=3072)


@pytest.fixture(scope="session")
def paillier_keys_1024(paillier_fixture: dict[str, Any]) -> list[PaillierSecretKey]:
    """Too-small test-only keys (1024-bit moduli): only to show they are refused."""
    return _keys(paillier_fixture, "1024", min_modulus_bits=1024, unsafe_test_only=True)


@pytest.fixture
def seeded_rng() -> Callable[[bytes | str], RandomSource]:
    """A factory of deterministic random sources (test-only)."""
    return make_seeded_rng


def build_aux_info(
    keys: Sequence[PaillierSecretKey], parties: Sequence[int], rng: RandomSource
) -> dict[PartyId, AuxInfo]:
    """Consistent auxiliary info for ``parties`` (party ``parties[k]`` gets ``keys[k]``),
    with fresh ring-Pedersen parameters and NO proofs run. TEST ONLY."""
    if len(keys) < len(parties):
        raise ValueError("not enough fixture keys for that many parties")
    public: dict[PartyId, PartyAuxPublic] = {}
    for party, key in zip(parties, keys, strict=False):
        params, _ = generate_ring_pedersen(key.p, key.q, rng)
        public[PartyId(party)] = PartyAuxPublic(key.public, params)
    return {
        PartyId(party): AuxInfo(PartyId(party), key, dict(public))
        for party, key in zip(parties, keys, strict=False)
    }


@pytest.fixture(scope="session")
def aux_info_factory(
    paillier_keys_2048: list[PaillierSecretKey],
) -> Callable[[Sequence[int]], dict[PartyId, AuxInfo]]:
    """``factory(parties)`` -> ``{party: AuxInfo}`` over the 2048-bit fixture keys, without
    proofs (fast). TEST ONLY."""

    def factory(parties: Sequence[int]) -> dict[PartyId, AuxInfo]:
        return build_aux_info(
            paillier_keys_2048, parties, make_seeded_rng("aux-info-factory:" + repr(parties))
        )

    return factory


HONEST_EXPONENT_BITS = 1 << 14
"""Longer than any exponent or base an honest proof makes a verifier use (exponents of at
most about ``ℓ' + ε + |N̂|`` bits, or ``N`` itself; bases below ``N²``, for moduli up to
4096 bits)."""


class HugeExponentError(Exception):
    """Raised by :func:`exponentiations` when a verifier exponentiates a peer's value
    longer than :data:`HONEST_EXPONENT_BITS`."""


@pytest.fixture
def exponentiations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record every ``gmpy2.powmod`` call (the bit length of its longer operand) and refuse
    any whose exponent or base is longer than :data:`HONEST_EXPONENT_BITS`, so a test sees
    a verifier exponentiate an unchecked value instead of waiting for it, and can assert
    that a refusal came before any exponentiation at all."""
    import gmpy2

    real = gmpy2.powmod
    log: list[int] = []

    def guarded(base: Any, exponent: Any, modulus: Any) -> Any:
        bits = max(abs(int(exponent)).bit_length(), abs(int(base)).bit_length())
        if bits > HONEST_EXPONENT_BITS:
            raise HugeExponentError(f"exponentiation with a {bits}-bit operand")
        log.append(bits)
        return real(base, exponent, modulus)

    monkeypatch.setattr(gmpy2, "powmod", guarded)
    return log


@pytest.fixture
def no_huge_exponent(exponentiations: list[int]) -> None:
    """:func:`exponentiations`, for tests that need only its refusal."""
