"""Helpers for the CGGMP21 ECDSA tests: key shares from TEST-ONLY fixture aux info.

The whole secret key is never formed here either: tests check shares only through public
values (public shares, signatures verified by coincurve and eth-account).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence

import coincurve
from coincurve.utils import GROUP_ORDER_INT
from eth_account import Account

from shardvault.crypto.paillier import PaillierSecretKey
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.cggmp21.local import run_keygen
from shardvault.crypto.protocols.cggmp21.sign import EcdsaSignature
from tests.crypto.cggmp21.conftest import FIXTURE_PATH, _keys, build_aux_info, make_seeded_rng

_KEYS: list[PaillierSecretKey] = []


def fixture_keys() -> list[PaillierSecretKey]:
    """The 2048-bit TEST-ONLY Paillier keys, loaded once."""
    if not _KEYS:
        _KEYS.extend(_keys(json.loads(FIXTURE_PATH.read_text()), "2048"))
    return _KEYS


def make_key_shares(
    min_signers: int, max_signers: int, seed: str, offset: int = 0
) -> list[KeyShare]:
    """Run key generation and attach TEST-ONLY aux info (no aux proofs run)."""
    rng = make_seeded_rng(seed)
    outputs = run_keygen(min_signers, max_signers, rng)
    keys = fixture_keys()[offset : offset + max_signers]
    aux = build_aux_info(keys, list(range(1, max_signers + 1)), rng)
    return [o.with_aux(aux[o.party]) for o in outputs]


def assert_valid_signature(public_key: bytes, digest: bytes, signature: EcdsaSignature) -> None:
    """Differential check with libsecp256k1 (coincurve) and eth-account recovery."""
    assert 0 < signature.s <= GROUP_ORDER_INT // 2, "signature must be low-s"
    key = coincurve.PublicKey(public_key)
    assert key.verify(signature.to_der(), digest, hasher=None)
    recovered = coincurve.PublicKey.from_signature_and_message(
        signature.r.to_bytes(32, "big")
        + signature.s.to_bytes(32, "big")
        + bytes([signature.recovery_id]),
        digest,
        hasher=None,
    )
    assert recovered.format() == key.format()
    expected = _eth_address(key)
    address = Account._recover_hash(
        digest, vrs=(27 + signature.recovery_id, signature.r, signature.s)
    )
    assert address == expected


def _eth_address(key: coincurve.PublicKey) -> str:
    from eth_utils import keccak, to_checksum_address

    return str(to_checksum_address(keccak(key.format(compressed=False)[1:])[-20:]))


def random_digest() -> bytes:
    """A random 32-byte digest."""
    return secrets.token_bytes(32)


def pick(shares: Sequence[KeyShare], parties: Sequence[int]) -> list[KeyShare]:
    """The shares of ``parties``."""
    return [s for s in shares if s.party in parties]
