"""BIP32 derivation of a CGGMP21 threshold key: derived shares sign under the key that
standard BIP32 public derivation gives from the root xpub (checked by coincurve and
eth-account)."""

from __future__ import annotations

import secrets

import pytest

from shardvault.crypto.bip32 import ExtendedPublicKey
from shardvault.crypto.errors import MisuseError
from shardvault.crypto.protocols.cggmp21.bip32 import derive_key_share, root_xpub
from shardvault.crypto.protocols.cggmp21.local import run_presign, run_sign
from tests.crypto.cggmp21.ecdsa_helpers import (
    assert_valid_signature,
    make_key_shares,
    pick,
    random_digest,
)

RNG = secrets.token_bytes


def test_derived_shares_sign_under_the_xpub_derived_key() -> None:
    shares = make_key_shares(2, 3, "bip32")
    path = "m/44/60/0/0/7"
    xpub = ExtendedPublicKey.parse(root_xpub(shares[0]).serialize())
    expected = xpub.derive(path)
    derived = [derive_key_share(s, path) for s in shares]
    for share in derived:
        assert share.public_key == expected.public_key
        assert share.chain_code == expected.chain_code
    signers = pick(derived, [1, 3])
    digest = random_digest()
    signature = run_sign(signers, run_presign(signers, RNG), digest, RNG)
    assert_valid_signature(expected.public_key.to_bytes(), digest, signature)


def test_hardened_path_is_refused() -> None:
    shares = make_key_shares(2, 2, "bip32-hardened")
    with pytest.raises(MisuseError):
        derive_key_share(shares[0], "m/44'/60")
