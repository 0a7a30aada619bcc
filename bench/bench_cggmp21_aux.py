"""Benchmark: CGGMP21 auxiliary info (Figure 7) per party, and safe-prime search.

Prints, at 2048- and 3072-bit moduli with primes from the TEST-ONLY fixture:

- the auxiliary-info phase for n = 2 and n = 3 parties run in one process, as total
  wall time and per party (each party makes Πprm, Πmod and n-1 Πfac, and verifies the
  same for its n-1 peers); target: at most 5 s per party at 2048 bits;
- each proof's prove and verify time;
- separately, the search for fresh safe primes (the part the fixtures skip): 1024- and
  1536-bit primes (for 2048- and 3072-bit moduli) in the process pool, per prime and key.

Usage: ``.venv/bin/python bench/bench_cggmp21_aux.py [--primes 6] [--skip-primes]``.
"""

import argparse
import json
import os
import time
from pathlib import Path

from shardvault.crypto.paillier import PaillierSecretKey
from shardvault.crypto.primes import generate_safe_primes_parallel
from shardvault.crypto.protocols.cggmp21.aux_info import AuxInfoConfig, run_locally
from shardvault.crypto.protocols.common import PartyId, SessionId
from shardvault.crypto.ring_pedersen import generate as generate_ring_pedersen
from shardvault.crypto.rng import system_random
from shardvault.crypto.zk import fac, mod, prm

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "test_only_paillier.json"
SID = SessionId(bytes(32))


def _keys(size: str) -> list[PaillierSecretKey]:
    document = json.loads(FIXTURE.read_text())
    return [
        PaillierSecretKey.from_primes(int(pair["p"], 16), int(pair["q"], 16), min_modulus_bits=2048)
        for pair in document["moduli"][size]
    ]


def _time(function: object, repeat: int = 3) -> float:
    assert callable(function)
    # Best of a few runs, in CPU time, so that other load on a shared machine counts less.
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        function()
        best = min(best, time.process_time() - started)
    return best


def bench_proofs(keys: list[PaillierSecretKey], bits: int) -> None:
    prover, verifier = keys[0], keys[1]
    params, trapdoor = generate_ring_pedersen(prover.p, prover.q, system_random)
    setup = generate_ring_pedersen(verifier.p, verifier.q, system_random)[0]
    prm_proof = prm.prove(params, trapdoor, session_id=SID, prover=1, rng=system_random)
    mod_proof = mod.prove(prover, session_id=SID, prover=1, rng=system_random)
    fac_proof = fac.prove(prover, setup, session_id=SID, prover=1, rng=system_random)
    rows = [
        (
            "Πprm",
            _time(lambda: prm.prove(params, trapdoor, session_id=SID, prover=1, rng=system_random)),
            _time(lambda: prm.verify(prm_proof, params, session_id=SID, prover=1)),
        ),
        (
            "Πmod",
            _time(lambda: mod.prove(prover, session_id=SID, prover=1, rng=system_random)),
            _time(lambda: mod.verify(mod_proof, prover.n, session_id=SID, prover=1)),
        ),
        (
            "Πfac",
            _time(lambda: fac.prove(prover, setup, session_id=SID, prover=1, rng=system_random)),
            _time(lambda: fac.verify(fac_proof, prover.n, setup, session_id=SID, prover=1)),
        ),
    ]
    for name, prove_s, verify_s in rows:
        print(
            f"  {bits}-bit {name}: prove {prove_s * 1e3:7.1f} ms, "
            f"verify {verify_s * 1e3:7.1f} ms (CPU)"
        )


def bench_aux_info(keys: list[PaillierSecretKey], bits: int, parties: int) -> float:
    ids = tuple(range(1, parties + 1))
    configs = [AuxInfoConfig(SID, PartyId(p), ids, min_modulus_bits=2048) for p in ids]
    secrets_by_party = {p: keys[p - 1] for p in ids}
    started, cpu_started = time.perf_counter(), time.process_time()
    out = run_locally(configs, secrets_by_party, system_random)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    assert len({info.digest() for info in out.values()}) == 1
    per_party = elapsed / parties
    # CPU time is what one party spends on a core of its own; wall time also counts any
    # other load on the machine.
    print(
        f"  {bits}-bit aux info, n={parties}: total {elapsed:6.2f} s wall, "
        f"per party {per_party:5.2f} s wall / {cpu / parties:5.2f} s CPU "
        "(target <= 5 s at 2048 bits)"
    )
    return per_party


def bench_primes(bits: int, count: int, workers: int) -> None:
    started = time.perf_counter()
    found = generate_safe_primes_parallel(bits, count, system_random, workers=workers)
    elapsed = time.perf_counter() - started
    assert len(set(found)) == count
    print(
        f"  {count} safe primes of {bits} bits with {workers} workers: {elapsed:6.2f} s wall, "
        f"{elapsed / count:5.2f} s per prime, {2 * elapsed / count:5.2f} s per "
        f"{2 * bits}-bit key (random: expect wide variation between runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="CGGMP21 auxiliary-info benchmark")
    parser.add_argument("--primes", type=int, default=6, help="1024-bit safe primes to search")
    parser.add_argument("--primes-1536", type=int, default=2, help="1536-bit safe primes")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--skip-primes", action="store_true")
    args = parser.parse_args()

    print(f"bench_cggmp21_aux on {os.cpu_count()} cores (one process; proofs use 1 core)")
    for size in ("2048", "3072"):
        keys = _keys(size)
        bench_proofs(keys, int(size))
        for parties in (2, 3):
            bench_aux_info(keys, int(size), parties)
    if not args.skip_primes:
        print("safe-prime search (production path, process pool):")
        bench_primes(1024, args.primes, args.workers)
        bench_primes(1536, args.primes_1536, args.workers)


if __name__ == "__main__":
    main()
