"""BIP32 non-hardened derivation of a CGGMP21 threshold key.

Source: BIP32 ``CKDpub`` (see :mod:`shardvault.crypto.bip32`). Key generation agrees a
chain code; the root extended public key is ``(X, chain code)``. Deriving along a
non-hardened path gives a total tweak ``t``; every party replaces its share ``x_i`` by
``x_i + t`` (and every public share ``X_j`` by ``X_j + t·G``), so the shares are Shamir
shares of ``x + t`` and the derived public key ``X + t·G`` equals what standard BIP32 public
derivation gives from the root ``xpub``. One key generation serves any number of addresses.
"""

from __future__ import annotations

from shardvault.crypto.bip32 import ExtendedPublicKey, derive_path, parse_path
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare


def root_xpub(share: KeyShare) -> ExtendedPublicKey:
    """The root extended public key of the threshold key (depth 0)."""
    return ExtendedPublicKey(share.public_key, share.chain_code)


def derive_key_share(share: KeyShare, path: str) -> KeyShare:
    """This party's share of the key at ``path`` (non-hardened steps only).

    Raises:
        MisuseError: a hardened or malformed path.
        InvalidChildError: BIP32's invalid-child case on some step.
    """
    tweak, _, chain_code = derive_path(share.public_key, share.chain_code, parse_path(path))
    return share.with_tweak(tweak, chain_code)
