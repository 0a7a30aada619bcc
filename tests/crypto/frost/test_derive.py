"""FROST key derivation: children derived publicly sign with tweaked shares."""

import secrets

import pytest

from shardvault.crypto.errors import MisuseError
from shardvault.crypto.protocols.frost import ED25519_SHA512, SECP256K1_BIP340, Ciphersuite
from shardvault.crypto.protocols.frost.derive import derive_key_package, derive_public_package
from shardvault.crypto.protocols.frost.local import run_dkg, run_signing
from tests.crypto.frost.conftest import verify_externally


@pytest.mark.parametrize("suite", [ED25519_SHA512, SECP256K1_BIP340], ids=lambda s: s.name)
def test_derived_children_sign_under_publicly_derived_keys(suite: Ciphersuite) -> None:
    keys = run_dkg(suite, 2, 3, secrets.token_bytes)
    seen = set()
    for path in ("m/0", "m/44/501/0/0/7", "m/44/501/0/0/8", "m/1/2/3"):
        child_public = derive_public_package(keys[0].public, path)
        children = [derive_key_package(k, path) for k in (keys[0], keys[2])]
        assert all(c.public.group_public_key == child_public.group_public_key for c in children)
        message = path.encode()
        signature = run_signing(children, message, secrets.token_bytes)
        verify_externally(suite, child_public.public_key_bytes, message, signature)
        seen.add(child_public.public_key_bytes)
    assert len(seen) == 4
    assert keys[0].public.public_key_bytes not in seen


def test_derivation_is_path_composition() -> None:
    keys = run_dkg(ED25519_SHA512, 2, 2, secrets.token_bytes)
    direct = derive_public_package(keys[0].public, "m/5/6")
    stepwise = derive_public_package(derive_public_package(keys[0].public, "m/5"), "m/6")
    assert direct.group_public_key == stepwise.group_public_key
    assert direct.chain_code == stepwise.chain_code


@pytest.mark.parametrize("path", ["m/0'", "44/0", "m/x", f"m/{2**31}"])
def test_hardened_or_malformed_paths_are_refused(path: str) -> None:
    keys = run_dkg(ED25519_SHA512, 2, 2, secrets.token_bytes)
    with pytest.raises(MisuseError):
        derive_public_package(keys[0].public, path)
