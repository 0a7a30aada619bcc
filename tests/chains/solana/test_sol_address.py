"""Solana addresses: base58 keys, the on-curve test, PDAs and associated token accounts.

solders (the Rust SDK's ``Pubkey``) is the reference: our on-curve decision, our
``find_program_address`` / ``create_program_address`` and our associated token address
must equal its results on random inputs.
"""

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.bindings import crypto_core_ed25519_is_valid_point
from solders.pubkey import Pubkey as SoldersPubkey
from solders.token.associated import get_associated_token_address

from shardvault.chains.errors import InvalidAddressError
from shardvault.chains.solana import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    Pubkey,
    associated_token_address,
    create_program_address,
    find_program_address,
    is_on_curve,
)


def test_is_on_curve_matches_solders_where_libsodium_validity_does_not() -> None:
    disagreements_with_strict_check = 0
    for _ in range(2000):
        raw = os.urandom(32)
        theirs = SoldersPubkey(raw).is_on_curve()
        assert is_on_curve(raw) == theirs
        disagreements_with_strict_check += crypto_core_ed25519_is_valid_point(raw) != theirs
    # libsodium's strict validity check rejects points outside the prime-order subgroup,
    # which is most on-curve points: using it would derive wrong PDAs.
    assert disagreements_with_strict_check > 100
    assert not is_on_curve(b"\x01" * 31)


@given(
    seeds=st.lists(st.binary(max_size=32), max_size=4),
    program=st.binary(min_size=32, max_size=32),
)
def test_find_program_address_matches_solders(seeds: list[bytes], program: bytes) -> None:
    ours, bump = find_program_address(seeds, Pubkey(program))
    theirs, their_bump = SoldersPubkey.find_program_address(seeds, SoldersPubkey(program))
    assert (ours.raw, bump) == (bytes(theirs), their_bump)
    assert create_program_address([*seeds, bytes([bump])], Pubkey(program)) == ours


@given(
    wallet=st.binary(min_size=32, max_size=32),
    mint=st.binary(min_size=32, max_size=32),
    program=st.sampled_from([TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID]),
)
def test_associated_token_address_matches_solders(
    wallet: bytes, mint: bytes, program: Pubkey
) -> None:
    ours = associated_token_address(Pubkey(wallet), Pubkey(mint), program)
    theirs = get_associated_token_address(
        SoldersPubkey(wallet), SoldersPubkey(mint), SoldersPubkey(program.raw)
    )
    assert ours.raw == bytes(theirs)


def test_well_known_program_ids() -> None:
    assert str(SYSTEM_PROGRAM_ID) == "11111111111111111111111111111111"
    assert str(ASSOCIATED_TOKEN_PROGRAM_ID) == "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"


def test_seed_limits_and_on_curve_refusal() -> None:
    program = Pubkey(bytes(32))
    with pytest.raises(InvalidAddressError) as exc:
        create_program_address([b"x" * 33], program)
    assert exc.value.field == "seeds[0]"
    with pytest.raises(InvalidAddressError) as exc:
        find_program_address([b""] * 16, program)
    assert exc.value.field == "seeds"
    # Find a seed whose hash is on the curve: create_program_address must refuse it.
    _, bump = find_program_address([b"seed"], program)
    on_curve_bumps = [b for b in range(bump + 1, 256)]
    for b in on_curve_bumps:
        with pytest.raises(InvalidAddressError, match="lies on the Ed25519 curve"):
            create_program_address([b"seed", bytes([b])], program)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0" * 40,  # '0' is not in the base58 alphabet
        "11111111111111111111111111111111111111111111111",  # too long
        "3yZe7d",  # too short
        "1111111111111111111111111111111111111111111",  # 43 chars, decodes to 43 zero bytes
        "I" * 32,
    ],
)
def test_malformed_pubkeys(text: str) -> None:
    with pytest.raises(InvalidAddressError) as exc:
        Pubkey.from_base58(text, field="recipient")
    assert exc.value.field == "recipient"


def test_pubkey_construction() -> None:
    with pytest.raises(InvalidAddressError):
        Pubkey(b"\x00" * 31)
    key = Pubkey(bytes(range(32)))
    assert Pubkey.from_base58(str(key)) == key
    assert bytes(key) == key.raw
    assert repr(key) == f"Pubkey({key})"


@given(st.text(max_size=60))
def test_pubkey_fuzz_only_typed_errors(text: str) -> None:
    try:
        Pubkey.from_base58(text)
    except InvalidAddressError:
        pass


def test_is_on_curve_edge_encodings_match_solders() -> None:
    # Non-canonical y (p <= y < 2**255) with either sign bit, the identity, y = 1 with the
    # sign bit set (x = 0, "negative zero") and y = -1: decoders often differ on these.
    p = 2**255 - 19
    encodings = [
        (y | (sign << 255)).to_bytes(32, "little") for y in range(p, 2**255) for sign in (0, 1)
    ]
    encodings += [
        bytes(32),
        (1 | (1 << 255)).to_bytes(32, "little"),
        (p - 1).to_bytes(32, "little"),
    ]
    for raw in encodings:
        assert is_on_curve(raw) == SoldersPubkey(raw).is_on_curve(), raw.hex()
