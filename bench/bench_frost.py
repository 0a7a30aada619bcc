"""FROST benchmark: DKG and signing, beside a single-party signature in the same run.

For 2-of-3 and 3-of-5, on FROST(Ed25519, SHA-512) and FROST with BIP340 signatures:

* DKG: both rounds for every party, all in one process (the sum of all parties' work);
* signing: round one for every signer, round two for every signer, and one aggregation
  with its check (the sum of all signers' work plus the coordinator's);
* single-party reference: libsodium's Ed25519 (PyNaCl) and libsecp256k1's BIP340
  (coincurve), the same native libraries the group layer uses.

Every signature made (warm-ups included) is verified outside the timed region by a
library written by others. Targets (this machine): signing 2-of-3 <= 2 ms per signature,
DKG 2-of-3 <= 20 ms. Run: ``.venv/bin/python bench/bench_frost.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import statistics
import time
from collections.abc import Callable

import coincurve
import nacl.signing

from shardvault.crypto.protocols.frost import (
    ED25519_SHA512,
    SECP256K1_BIP340,
    Ciphersuite,
    KeyPackage,
    SignRound1,
)
from shardvault.crypto.protocols.frost.local import run_dkg

RNG = secrets.token_bytes


def sign_once(keys: list[KeyPackage], message: bytes) -> bytes:
    """Both rounds for every signer and one aggregation, as a coordinator would run it."""
    signers = [k.identifier for k in keys]
    session = RNG(32)
    round1 = [SignRound1(k, session, signers, RNG) for k in keys]
    commitments = [r.message for r in round1]
    results = [
        r.sign(message, [c for c in commitments if c.header.sender != r.message.header.sender])
        for r in round1
    ]
    state, _ = results[0]
    return state.aggregate([share for _, share in results[1:]])


def verify(suite: Ciphersuite, public_key: bytes, message: bytes, signature: bytes) -> None:
    if suite is ED25519_SHA512:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    elif not coincurve.PublicKeyXOnly(public_key).verify(signature, message):
        raise AssertionError("BIP340 signature did not verify")


def single_party(suite: Ciphersuite) -> Callable[[bytes], bytes]:
    if suite is ED25519_SHA512:
        key = nacl.signing.SigningKey.generate()
        return lambda m: key.sign(m).signature
    private = coincurve.PrivateKey()
    return lambda m: private.sign_schnorr(m)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed runs per figure")
    args = parser.parse_args()
    print(f"FROST benchmark: {args.runs} runs per figure, medians in ms (min, max)")
    print(
        f"{'suite':<16}{'T-of-N':<8}{'DKG':>24}{'sign (2 rounds+agg)':>28}"
        f"{'single-party':>16}{'ratio':>8}"
    )
    verified = 0
    for suite in (ED25519_SHA512, SECP256K1_BIP340):
        reference = single_party(suite)
        for min_signers, max_signers in ((2, 3), (3, 5)):
            dkg_times: list[float] = []
            sign_times: list[float] = []
            single_times: list[float] = []
            keys = run_dkg(suite, min_signers, max_signers, RNG)
            quorum = keys[:min_signers]
            public_key = keys[0].public.public_key_bytes
            for run in range(args.runs + 10):
                message = hashlib.sha256(run.to_bytes(8, "big")).digest()
                t0 = time.perf_counter()
                run_dkg(suite, min_signers, max_signers, RNG)
                t1 = time.perf_counter()
                signature = sign_once(quorum, message)
                t2 = time.perf_counter()
                reference(message)
                t3 = time.perf_counter()
                d, s, r = ((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
                verify(suite, public_key, message, signature)
                verified += 1
                if run >= 10:  # warm-up runs are verified but not counted
                    dkg_times.append(d)
                    sign_times.append(s)
                    single_times.append(r)

            def fmt(xs: list[float]) -> str:
                return f"{statistics.median(xs):.3f} ({min(xs):.2f}, {max(xs):.2f})"

            ratio = statistics.median(sign_times) / statistics.median(single_times)
            print(
                f"{suite.name:<16}{f'{min_signers}-of-{max_signers}':<8}{fmt(dkg_times):>24}"
                f"{fmt(sign_times):>28}{statistics.median(single_times):>16.4f}{ratio:>7.1f}x"
            )
    print(f"signatures verified by libsodium/libsecp256k1: {verified}/{verified}")


if __name__ == "__main__":
    main()
