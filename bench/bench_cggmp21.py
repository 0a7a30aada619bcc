"""CGGMP21 threshold ECDSA timings, side by side with a single-party libsecp256k1 signature.

Run: ``.venv/bin/python bench/bench_cggmp21.py [--runs N]``. All parties run in this one
process (so a "presignature" time is the work of every signer together; per-party figures
divide by the number of signers). Auxiliary info comes from the TEST-ONLY fixture primes
(``tests/fixtures/test_only_paillier.json``) with fresh ring-Pedersen parameters and no
auxiliary-info proofs: that phase is the auxiliary-info benchmark's subject.

The modular-exponentiation floor: one presigning run is recorded with every
``gmpy2.powmod`` call it makes (base, exponent, modulus), then exactly those calls are
replayed and timed alone. The ratio presigning / floor shows how much time goes to
anything but GMP's exponentiations (Python, hashing, curve arithmetic).
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import coincurve
import gmpy2

from shardvault.crypto.paillier import PaillierSecretKey
from shardvault.crypto.protocols.cggmp21.aux_info import AuxInfo, PartyAuxPublic
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.cggmp21.local import run_keygen, run_presign, run_sign
from shardvault.crypto.protocols.cggmp21.sign import SignRound
from shardvault.crypto.protocols.common import PartyId
from shardvault.crypto.ring_pedersen import generate as generate_ring_pedersen

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "test_only_paillier.json"
RNG = secrets.token_bytes


def _keys(size: str, count: int) -> list[PaillierSecretKey]:
    document = json.loads(FIXTURE.read_text())
    assert "TEST ONLY" in document["warning"]
    pairs = document["moduli"][size][:count]
    return [
        PaillierSecretKey.from_primes(int(p["p"], 16), int(p["q"], 16), min_modulus_bits=int(size))
        for p in pairs
    ]


def _fixture_aux(keys: list[PaillierSecretKey], parties: list[int]) -> dict[int, AuxInfo]:
    public: dict[PartyId, PartyAuxPublic] = {}
    for party, key in zip(parties, keys, strict=True):
        params, _ = generate_ring_pedersen(key.p, key.q, RNG)
        public[PartyId(party)] = PartyAuxPublic(key.public, params)
    return {p: AuxInfo(PartyId(p), k, dict(public)) for p, k in zip(parties, keys, strict=True)}


def keygen_with_fixture_aux(
    min_signers: int, max_signers: int, keys: list[PaillierSecretKey]
) -> list[KeyShare]:
    """Key generation (all rounds and checks) plus fixture aux info attached."""
    outputs = run_keygen(min_signers, max_signers, RNG)
    aux = _fixture_aux(keys[:max_signers], list(range(1, max_signers + 1)))
    return [o.with_aux(aux[o.party]) for o in outputs]


def _time(action: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median wall time of ``runs`` calls (the machine is shared: medians, not means)."""
    samples = []
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        result = action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


def _record_powmods(action: Callable[[], Any]) -> list[tuple[Any, Any, Any]]:
    calls: list[tuple[Any, Any, Any]] = []
    original = gmpy2.powmod

    def counting(base: Any, exponent: Any, modulus: Any) -> Any:
        calls.append((base, exponent, modulus))
        return original(base, exponent, modulus)

    gmpy2.powmod = counting
    try:
        action()
    finally:
        gmpy2.powmod = original
    return calls


def _replay(calls: list[tuple[Any, Any, Any]]) -> float:
    prepared = [(gmpy2.mpz(b), gmpy2.mpz(e), gmpy2.mpz(m)) for b, e, m in calls]
    powmod = gmpy2.powmod
    start = time.perf_counter()
    for b, e, m in prepared:
        powmod(b, e, m)
    return time.perf_counter() - start


def _histogram(calls: list[tuple[Any, Any, Any]]) -> str:
    sizes = Counter(
        (int(gmpy2.mpz(m).bit_length()), 64 * ((abs(int(e)).bit_length() + 63) // 64))
        for _, e, m in calls
    )
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:6]
    return ", ".join(f"{n}x(mod {m}b, exp≤{e}b)" for (m, e), n in top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median)")
    args = parser.parse_args()
    runs = args.runs

    digest = secrets.token_bytes(32)
    single = coincurve.PrivateKey()
    t_single, _ = _time(lambda: single.sign_recoverable(digest, hasher=None), 200)
    print(f"single-party coincurve ECDSA sign          : {t_single * 1e3:8.3f} ms")

    keys_2048 = _keys("2048", 3)
    t_keygen, shares = _time(lambda: keygen_with_fixture_aux(2, 3, keys_2048), runs)
    print(
        f"keygen 2-of-3 (aux from fixtures)           : {t_keygen * 1e3:8.1f} ms"
        "   target <= 2000 ms"
    )

    configs = [("2-of-3", 2, 3), ("3-of-3", 3, 3)]
    for size in ("2048", "3072"):
        keys = _keys(size, 3)
        for label, min_signers, max_signers in configs:
            shares = keygen_with_fixture_aux(min_signers, max_signers, keys)
            signers = shares[:min_signers]
            # Each run is timed while its powmods are recorded; the replay follows at once,
            # so both see the same machine load (the machine is shared). Medians and the
            # median of the per-run ratios are printed.
            totals, floors, ratios = [], [], []
            calls: list[tuple[Any, Any, Any]] = []
            for _ in range(runs):
                start = time.perf_counter()
                calls = _record_powmods(lambda signers=signers: run_presign(signers, RNG))
                total = time.perf_counter() - start
                floor = _replay(calls)
                totals.append(total)
                floors.append(floor)
                ratios.append(total / floor)
            t_pre = statistics.median(totals)
            floor = statistics.median(floors)
            per_party = t_pre / min_signers
            print(
                f"presign {label} N={size}: {t_pre * 1e3:8.1f} ms total, "
                f"{per_party * 1e3:7.1f} ms/party; powmod floor {floor * 1e3:8.1f} ms "
                f"({floor / min_signers * 1e3:.1f} ms/party, {len(calls)} powmods); "
                f"ratio {statistics.median(ratios):4.2f}  target <= 1.50"
            )
            print(f"    powmods by size: {_histogram(calls)}")

    shares = keygen_with_fixture_aux(2, 3, keys_2048)
    signers = shares[:2]

    # Online signing: presignatures made first, then each signature timed on its own.
    prepared = [run_presign(signers, RNG) for _ in range(max(runs, 5))]
    online_samples: list[float] = []
    for presignatures in prepared:
        sid = RNG(32)
        start = time.perf_counter()
        rounds = [SignRound(k, p, digest, sid) for k, p in zip(signers, presignatures, strict=True)]
        messages = [r.message for r in rounds]
        for r in rounds:
            r.finish([m for m in messages if m.header.sender != r.message.header.sender])
        online_samples.append(time.perf_counter() - start)
    t_online = statistics.median(online_samples)
    print(
        f"online signing 2-of-3 from a presignature   : {t_online * 1e3:8.3f} ms "
        f"(min {min(online_samples) * 1e3:.3f})   target <= 2 ms"
        f"  ({t_online / t_single:.0f}x single-party)"
    )
    t_full, _ = _time(lambda: run_sign(signers, run_presign(signers, RNG), digest, RNG), runs)
    print(f"full signing 2-of-3 (presign + online)      : {t_full * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
