"""CGGMP21 (threshold ECDSA on secp256k1) glue for ``shardvault mpc``.

All parties of a ceremony run in this process, passing messages in memory, exactly as
:mod:`shardvault.crypto.protocols.cggmp21.local` does; key shares leave as their versioned
canonical serialization (``KeyShare.to_bytes``), which the caller encrypts to disk.

Auxiliary info (CGGMP21's Paillier-Blum moduli and ring-Pedersen parameters, with Πmod,
Πprm and Πfac run between the parties) needs two fresh safe primes per party. In production
they are searched in a background process pool that reports progress (slow: seconds to
minutes per party). For tests and demos only, the environment variable
:data:`TEST_ONLY_PRIMES_ENV` may name the TEST-ONLY fixture file of published primes
(``tests/fixtures/test_only_paillier.json``); every key made that way is insecure, and the
summary says so.

The whole ECDSA key never exists: each share is used only by its own party's round objects.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from shardvault.chains.ethereum.address import address_from_public_key
from shardvault.crypto.bip32 import parse_path
from shardvault.crypto.errors import MisuseError
from shardvault.crypto.paillier import PaillierSecretKey
from shardvault.crypto.primes import PoolProgress
from shardvault.crypto.protocols.cggmp21.aux_info import (
    AuxInfo,
    AuxInfoConfig,
    generate_paillier_key,
    run_locally,
)
from shardvault.crypto.protocols.cggmp21.bip32 import derive_key_share, root_xpub
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.cggmp21.local import (
    run_keygen,
    run_presign,
    run_refresh,
    run_sign,
)
from shardvault.crypto.protocols.common import PartyId, SessionId
from shardvault.crypto.rng import RandomSource, system_random

SCHEME = "ecdsa-secp256k1"
"""The scheme name ``shardvault mpc --scheme`` uses for CGGMP21."""

TEST_ONLY_PRIMES_ENV = "SHARDVAULT_UNSAFE_TEST_ONLY_PAILLIER_PRIMES"
"""Environment variable naming the TEST-ONLY fixture of published safe primes. Keys made
with it are insecure; never set it outside tests and demos."""

ProgressCallback = Callable[[str], None]


def _test_only_keys(count: int, rng: RandomSource) -> list[PaillierSecretKey] | None:
    path = os.environ.get(TEST_ONLY_PRIMES_ENV)
    if not path:
        return None
    document = json.loads(Path(path).read_text())
    if "TEST ONLY" not in str(document.get("warning", "")):
        raise MisuseError(f"{path} is not a test-only prime fixture")
    pairs = document["moduli"]["2048"]
    if len(pairs) < count:
        raise MisuseError(f"the test-only fixture has {len(pairs)} moduli, {count} needed")
    # A random choice of fixture moduli, so that a refresh changes the parties' moduli.
    chosen: list[dict[str, str]] = []
    available = list(pairs)
    while len(chosen) < count:
        index = int.from_bytes(rng(4), "big") % len(available)
        chosen.append(available.pop(index))
    return [PaillierSecretKey.from_primes(int(p["p"], 16), int(p["q"], 16)) for p in chosen]


def _fresh_aux(
    parties: Sequence[int], rng: RandomSource, on_progress: ProgressCallback | None
) -> tuple[dict[PartyId, AuxInfo], bool]:
    """Run the auxiliary-info phase (with all its proofs) for ``parties``.

    Returns the aux info and whether it came from TEST-ONLY primes.
    """
    keys = _test_only_keys(len(parties), rng)
    test_only = keys is not None
    if keys is None:
        keys = []
        for party in parties:

            def report(progress: PoolProgress, party: int = party) -> None:
                if on_progress is not None:
                    on_progress(
                        f"party {party}: safe primes {progress.done}/{progress.total} "
                        f"({progress.bits} bits)"
                    )

            keys.append(generate_paillier_key(system_random, on_progress=report))
    session = SessionId(rng(32))
    configs = [
        AuxInfoConfig(session, PartyId(p), tuple(PartyId(q) for q in parties)) for p in parties
    ]
    secrets: dict[int, PaillierSecretKey] = dict(zip(parties, keys, strict=True))
    return run_locally(configs, secrets, rng), test_only


def _summary(share: KeyShare, test_only: bool) -> dict[str, object]:
    public_key = share.public_key.to_bytes()
    summary: dict[str, object] = {
        "scheme": SCHEME,
        "public_key": public_key.hex(),
        "address": address_from_public_key(public_key).checksummed,
        "xpub": root_xpub(share).serialize(),
        "chain_code": share.chain_code.hex(),
        "min_signers": share.min_signers,
        "max_signers": share.max_signers,
        "party_ids": [int(p) for p in share.parties],
        "epoch": share.epoch,
    }
    if test_only:
        summary["warning"] = "TEST ONLY: auxiliary info from published fixture primes"
    return summary


def keygen_ecdsa(
    min_signers: int,
    max_signers: int,
    rng: RandomSource,
    *,
    on_progress: ProgressCallback | None = None,
) -> tuple[list[bytes], dict[str, object]]:
    """Key generation and auxiliary info for parties ``1..max_signers``.

    Returns each party's serialized key share (to be encrypted by the caller) and a public
    summary with ``public_key``, ``address`` (Ethereum) and ``xpub`` (BIP32 root).

    Raises:
        MisuseError: thresholds out of range.
        CryptoError: a protocol failure (cannot happen with honest in-process parties).
    """
    if not 2 <= min_signers <= max_signers:
        raise MisuseError(
            "need 2 <= min_signers <= max_signers (one signer: every share is the key)"
        )
    outputs = run_keygen(min_signers, max_signers, rng)
    aux, test_only = _fresh_aux([o.party for o in outputs], rng, on_progress)
    shares = [o.with_aux(aux[o.party]) for o in outputs]
    return [s.to_bytes() for s in shares], _summary(shares[0], test_only)


def _load(shares: Sequence[bytes]) -> list[KeyShare]:
    loaded = [KeyShare.from_bytes(data) for data in shares]
    if len({s.key_id for s in loaded}) != 1:
        raise MisuseError("the share files belong to different keys or epochs")
    if len({s.party for s in loaded}) != len(loaded):
        raise MisuseError("two share files of the same party")
    return loaded


def sign_ecdsa(
    shares: Sequence[bytes],
    signers: Sequence[int],
    digest: bytes,
    path: str | None = None,
    *,
    rng: RandomSource = system_random,
) -> dict[str, object]:
    """Presign and sign ``digest`` with the shares of ``signers`` (optionally derived).

    Returns ``r``, ``s`` (hex, low-s), ``v`` (recovery id 0/1), ``signature``
    (65-byte ``r || s || v`` hex) and ``public_key`` (33-byte compressed hex of the key
    that signed, the derived one when ``path`` is given).

    Raises:
        MisuseError: missing shares, too few signers, a bad path or digest.
        ProtocolAbort: a party misbehaved (names it).
    """
    if len(digest) != 32:
        raise MisuseError("the digest must be 32 bytes")
    by_party = {s.party: s for s in _load(shares)}
    missing = [p for p in signers if p not in by_party]
    if missing:
        raise MisuseError(f"no share file for signers {missing}")
    keys = [by_party[PartyId(p)] for p in sorted(set(signers))]
    if path is not None:
        parse_path(path)
        keys = [derive_key_share(k, path) for k in keys]
    presignatures = run_presign(keys, rng)
    signature = run_sign(keys, presignatures, digest, rng)
    return {
        "r": f"{signature.r:064x}",
        "s": f"{signature.s:064x}",
        "v": signature.recovery_id,
        "signature": signature.to_bytes().hex(),
        "public_key": keys[0].public_key.to_bytes().hex(),
    }


def derive(share: bytes, path: str) -> dict[str, object]:
    """The public key, Ethereum address and xpub at ``path`` (non-hardened), without signing.

    Raises:
        EncodingError: the share does not decode.
        MisuseError: a hardened or malformed path.
    """
    key = KeyShare.from_bytes(share)
    derived = root_xpub(key).derive(path)
    public_key = derived.public_key.to_bytes()
    return {
        "path": path,
        "public_key": public_key.hex(),
        "address": address_from_public_key(public_key).checksummed,
        "xpub": derived.serialize(),
    }


def refresh(
    shares: Sequence[bytes],
    *,
    rng: RandomSource = system_random,
    on_progress: ProgressCallback | None = None,
) -> list[bytes]:
    """Refresh every party's share: same key, new shares, new auxiliary info, next epoch.

    ``shares`` must hold every party's share. Returns the new shares in party order; the
    old ones are useless afterwards (another epoch).

    Raises:
        MisuseError: shares missing or of different keys.
        ProtocolAbort: a party misbehaved (names it).
    """
    keys = sorted(_load(shares), key=lambda k: k.party)
    if [k.party for k in keys] != list(keys[0].parties):
        raise MisuseError("a refresh needs the share of every party")
    aux, _ = _fresh_aux([k.party for k in keys], rng, on_progress)
    return [k.to_bytes() for k in run_refresh(keys, aux, rng)]


def describe_share(share: bytes) -> dict[str, object]:
    """The public summary of one serialized key share (no secret in it).

    Raises:
        EncodingError: the share does not decode.
    """
    return _summary(KeyShare.from_bytes(share), test_only=False)
