"""BIP32 public derivation against the BIP32 test vectors.

Source: bitcoin/bips ``bip-0032.mediawiki`` test vectors 1 to 5, transcribed in
``tests/vectors/bip32/bip32-test-vectors.json``. Every non-hardened step is reproduced
from its parent's xpub by public derivation alone; every xpub round-trips.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from shardvault.crypto.bip32 import (
    ExtendedPublicKey,
    additive_tweak,
    ckd_pub,
    parse_path,
)
from shardvault.crypto.errors import EncodingError, MisuseError
from shardvault.crypto.group import ED25519, SECP256K1
from tests.vectors import load_vector


def _vectors() -> dict[str, Any]:
    loaded: dict[str, Any] = load_vector("bip32/bip32-test-vectors.json")
    return loaded


def _public_steps() -> list[tuple[str, str, int]]:
    cases = []
    for vector in _vectors()["vectors"]:
        steps = vector["steps"]
        for parent, child in itertools.pairwise(steps):
            if child["public_derivation_possible_from_parent_xpub"]:
                cases.append((parent["xpub"], child["xpub"], child["child_indices"][-1]))
    return cases


@pytest.mark.parametrize(("parent", "child", "index"), _public_steps())
def test_non_hardened_step_from_parent_xpub(parent: str, child: str, index: int) -> None:
    assert ExtendedPublicKey.parse(parent).child(index).serialize() == child


def test_every_xpub_round_trips() -> None:
    for vector in _vectors()["vectors"]:
        for step in vector["steps"]:
            assert ExtendedPublicKey.parse(step["xpub"]).serialize() == step["xpub"]


def test_invalid_extended_keys_are_refused() -> None:
    """Every invalid key of BIP32 test vector 5 is refused as an extended public key."""
    cases = _vectors()["invalid_extended_keys"]
    assert len(cases) == 16
    for case in cases:
        with pytest.raises(EncodingError):
            ExtendedPublicKey.parse(case["key"])


def test_paths() -> None:
    assert parse_path("m/44/60/0/0/7") == [44, 60, 0, 0, 7]
    assert parse_path("m") == []
    for bad in ("44/1", "m/1'", "m/x", f"m/{2**31}"):
        with pytest.raises(MisuseError):
            parse_path(bad)
    with pytest.raises(MisuseError):
        ckd_pub(SECP256K1.generator(), bytes(32), 2**31)


@pytest.mark.parametrize("group", [ED25519, SECP256K1])
def test_additive_scheme_commutes_with_public_keys(group: Any) -> None:
    """Adding the tweak to a secret adds tweak·G to its public key (the FROST scheme)."""
    secret = group.scalar(123456789)
    public = group.base_multiply(secret)
    tweak, code = additive_tweak(group, public.to_bytes(), bytes(range(32)), 5)
    assert len(code) == 32
    assert group.base_multiply(secret + tweak) == public + group.base_multiply(tweak)


def test_depth_is_bounded_and_testnet_keys_parse() -> None:
    xpub = ExtendedPublicKey.parse(_vectors()["vectors"][0]["steps"][0]["xpub"])
    deep = ExtendedPublicKey(xpub.public_key, xpub.chain_code, depth=255)
    with pytest.raises(MisuseError):
        deep.child(0)
    from shardvault.crypto.bip32 import TPUB_VERSION

    testnet = ExtendedPublicKey(xpub.public_key, xpub.chain_code, version=TPUB_VERSION)
    assert testnet.serialize().startswith("tpub")
    assert ExtendedPublicKey.parse(testnet.serialize()) == testnet
