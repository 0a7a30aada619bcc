"""FROST key packages: serialization, validation of tampered packages, secrecy in repr."""

import secrets

import pytest

from shardvault.crypto.errors import EncodingError, MisuseError
from shardvault.crypto.protocols.frost import ED25519_SHA512, SECP256K1_BIP340, KeyPackage
from shardvault.crypto.protocols.frost.local import run_dkg, run_signing
from tests.crypto.frost.conftest import verify_externally


@pytest.mark.parametrize("suite", [ED25519_SHA512, SECP256K1_BIP340], ids=lambda s: s.name)
def test_round_trip_keeps_signing(suite) -> None:  # type: ignore[no-untyped-def]
    keys = run_dkg(suite, 2, 3, secrets.token_bytes)
    restored = [KeyPackage.from_bytes(k.to_bytes()) for k in keys]
    assert [r.to_bytes() for r in restored] == [k.to_bytes() for k in keys]
    signature = run_signing([restored[0], restored[2]], b"after restore", secrets.token_bytes)
    verify_externally(suite, keys[0].public.public_key_bytes, b"after restore", signature)


def test_tampered_packages_are_refused() -> None:
    key = run_dkg(ED25519_SHA512, 2, 3, secrets.token_bytes)[0]
    data = key.to_bytes()
    for position in range(0, len(data), 7):
        tampered = bytearray(data)
        tampered[position] ^= 0x01
        try:
            restored = KeyPackage.from_bytes(bytes(tampered))
        except EncodingError:
            continue
        # Only the chain code carries no redundancy; share files protect it with their AEAD.
        assert restored.public.chain_code != key.public.chain_code, position
    with pytest.raises(EncodingError):
        KeyPackage.from_bytes(data[:-3])


def test_share_not_matching_public_share_is_refused() -> None:
    keys = run_dkg(ED25519_SHA512, 2, 3, secrets.token_bytes)
    with pytest.raises(MisuseError, match="does not match"):
        KeyPackage(keys[0].identifier, keys[1].signing_share, keys[0].public)


def test_repr_hides_the_share() -> None:
    key = run_dkg(SECP256K1_BIP340, 2, 2, secrets.token_bytes)[0]
    text = repr(key)
    assert "redacted" in text
    assert key.signing_share.to_bytes().hex() not in text
    assert str(key.signing_share.value) not in text
