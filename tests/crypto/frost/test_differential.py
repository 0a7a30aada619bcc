"""FROST aggregates verified by libraries written by others, across thresholds and quorums.

Ed25519 signatures must verify with libsodium (PyNaCl) and OpenSSL (pyca/cryptography);
BIP340 signatures with libsecp256k1's BIP340 verification (coincurve), with and without
the BIP341 taproot tweak.
"""

import hashlib
import secrets

import coincurve
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardvault.crypto.group import SECP256K1
from shardvault.crypto.protocols.frost import ED25519_SHA512, SECP256K1_BIP340, Ciphersuite
from shardvault.crypto.protocols.frost.keys import taproot_tweak
from shardvault.crypto.protocols.frost.local import run_dkg, run_signing
from tests.crypto.frost.conftest import verify_externally

SUITES = [ED25519_SHA512, SECP256K1_BIP340]


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_random_thresholds_and_quorums_verify(suite: Ciphersuite, data: st.DataObject) -> None:
    max_signers = data.draw(st.integers(min_value=2, max_value=7), label="max_signers")
    min_signers = data.draw(st.integers(min_value=2, max_value=min(5, max_signers)), label="min")
    keys = run_dkg(suite, min_signers, max_signers, secrets.token_bytes)
    size = data.draw(st.integers(min_value=min_signers, max_value=max_signers), label="quorum")
    quorum = data.draw(st.permutations(keys), label="order")[:size]
    message = data.draw(st.binary(max_size=200), label="message")
    signature = run_signing(quorum, message, secrets.token_bytes)
    assert len(signature) == 64
    public_key = keys[0].public.public_key_bytes
    assert all(k.public.public_key_bytes == public_key for k in keys)
    verify_externally(suite, public_key, message, signature)


def test_every_party_derives_the_same_public_package() -> None:
    keys = run_dkg(ED25519_SHA512, 3, 5, secrets.token_bytes)
    first = keys[0].public
    for key in keys[1:]:
        assert key.public.group_public_key == first.group_public_key
        assert dict(key.public.verifying_shares) == dict(first.verifying_shares)
        assert key.public.chain_code == first.chain_code


@pytest.mark.parametrize("merkle_root", [b"", bytes(range(32))], ids=["key-path", "script-root"])
def test_bip340_taproot_tweak_matches_libsecp256k1(merkle_root: bytes) -> None:
    keys = run_dkg(SECP256K1_BIP340, 2, 3, secrets.token_bytes)
    internal = keys[0].public.public_key_bytes
    # The output key as libsecp256k1 computes it (BIP341 taproot_tweak_pubkey).
    tweak = taproot_tweak(internal, merkle_root)
    output_key = coincurve.PublicKeyXOnly(internal)
    output_key.tweak_add(tweak.to_bytes())  # libsecp256k1 tweaks the key in place
    message = hashlib.sha256(b"taproot sighash stand-in").digest()
    signature = run_signing(
        [keys[1], keys[2]], message, secrets.token_bytes, taproot_merkle_root=merkle_root
    )
    assert coincurve.PublicKeyXOnly(output_key.format()).verify(signature, message)
    # The untweaked internal key must not verify it.
    assert not coincurve.PublicKeyXOnly(internal).verify(signature, message)


def test_bip340_handles_odd_group_keys() -> None:
    # Run DKGs until both parities of the group key have been seen and signed under.
    seen = set()
    for _ in range(40):
        keys = run_dkg(SECP256K1_BIP340, 2, 2, secrets.token_bytes)
        parity = SECP256K1.has_even_y(keys[0].public.group_public_key)
        message = secrets.token_bytes(32)
        signature = run_signing(keys, message, secrets.token_bytes)
        verify_externally(SECP256K1_BIP340, keys[0].public.public_key_bytes, message, signature)
        seen.add(parity)
        if seen == {True, False}:
            break
    assert seen == {True, False}
