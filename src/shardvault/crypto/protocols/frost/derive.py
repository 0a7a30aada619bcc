"""Non-hardened, BIP32-style derivation of FROST keys: one DKG, many addresses.

BIP32 is defined for secp256k1 ECDSA keys only. For FROST keys shardvault uses the
documented additive scheme of :mod:`shardvault.crypto.bip32` (``additive_tweak``): along a
path of non-hardened indices, ``I = HMAC-SHA512(c_par, pk_par || ser32(i))``,
``t_i = int(I_L) mod order``, ``pk_child = pk_par + t_i * G``, ``c_child = I_R``, where
``pk_par`` is the group's own encoding of the parent key (32 bytes for Ed25519, the 33-byte
compressed point for secp256k1, before any BIP340 normalisation).

Anyone holding the public key package derives the child public key; each party adds the
same total tweak ``t`` to its signing share, and every verifying share moves by ``t * G``.
Because the Lagrange coefficients of any quorum sum to one, the tweaked shares are shares
of the child secret, and the whole key is never formed.
"""

from __future__ import annotations

from shardvault.crypto.bip32 import additive_tweak, parse_path
from shardvault.crypto.errors import InvalidPointError
from shardvault.crypto.group import Point, Scalar
from shardvault.crypto.protocols.frost.keys import KeyPackage, PublicKeyPackage


def derive_tweak(public: PublicKeyPackage, path: str) -> tuple[Scalar, Point, bytes]:
    """The total tweak, child group key and child chain code along ``path``.

    Raises:
        MisuseError: a malformed or hardened path.
        InvalidPointError: a child key at the identity (probability ~2**-250).
    """
    group = public.suite.group
    total = group.scalar(0)
    key, chain_code = public.group_public_key, public.chain_code
    for index in parse_path(path):
        tweak, chain_code = additive_tweak(group, key.to_bytes(), chain_code, index)
        key = key + group.base_multiply(tweak)
        if key.is_identity():
            raise InvalidPointError(f"child {index} is the identity; use another index")
        total = total + tweak
    return total, key, chain_code


def derive_public_package(public: PublicKeyPackage, path: str) -> PublicKeyPackage:
    """The public key package of the child at ``path`` (no secret needed)."""
    tweak, key, chain_code = derive_tweak(public, path)
    offset = public.suite.group.base_multiply(tweak)
    return PublicKeyPackage(
        public.suite,
        public.min_signers,
        public.max_signers,
        key,
        {party: share + offset for party, share in public.verifying_shares.items()},
        chain_code,
    )


def derive_key_package(key: KeyPackage, path: str) -> KeyPackage:
    """This party's key package for the child at ``path``: its share plus the tweak."""
    tweak, _, _ = derive_tweak(key.public, path)
    return KeyPackage(
        key.identifier, key.signing_share + tweak, derive_public_package(key.public, path)
    )
