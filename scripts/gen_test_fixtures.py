"""Generate the TEST-ONLY safe primes that the CGGMP21 tests and benchmarks load.

Safe primes are slow to find, so tests never search for them: this script searches once and
writes ``tests/fixtures/test_only_paillier.json``. The primes in that file are public, so
any key built from them is broken by construction: they must never protect anything real.
The file says so in its name and in its top-level ``"warning"`` field. Its 1024-bit moduli
are below the 2048-bit floor and load only with ``unsafe_test_only=True``; they exist for
the tests that show such a modulus is refused.

Usage::

    .venv/bin/python scripts/gen_test_fixtures.py \\
        [--pairs-1024 3] [--pairs-2048 12] [--pairs-3072 6]

It prints how long each size took (the figure the benchmarks quote for safe-prime search).
"""

import argparse
import json
import sys
import time
from pathlib import Path

from shardvault.crypto.primes import PoolProgress, generate_safe_primes_parallel, is_safe_prime
from shardvault.crypto.rng import system_random

OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "test_only_paillier.json"

WARNING = (
    "TEST ONLY. These safe primes are published in the repository; every Paillier key or "
    "ring-Pedersen parameter made from them is known to everyone. Never use them outside tests "
    "and benchmarks."
)


def _report(progress: PoolProgress) -> None:
    print(f"  {progress.bits}-bit safe prime {progress.done}/{progress.total}", flush=True)


def _pairs(prime_bits: int, pairs: int, workers: int) -> tuple[list[dict[str, str]], float]:
    started = time.perf_counter()
    found = generate_safe_primes_parallel(
        prime_bits, 2 * pairs, system_random, workers=workers, on_progress=_report
    )
    elapsed = time.perf_counter() - started
    out = []
    for index in range(pairs):
        p, q = found[2 * index], found[2 * index + 1]
        assert is_safe_prime(p)
        assert is_safe_prime(q)
        assert p != q
        assert (p * q).bit_length() == 2 * prime_bits
        out.append({"p": format(p, "x"), "q": format(q, "x")})
    return out, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs-1024", type=int, default=3)
    parser.add_argument("--pairs-2048", type=int, default=12)
    parser.add_argument("--pairs-3072", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    # Too-small moduli (1024 bits): only for tests that show such a modulus is refused.
    print(f"searching {2 * args.pairs_1024} safe primes of 512 bits", flush=True)
    pairs_1024, _ = _pairs(512, args.pairs_1024, args.workers)
    print(f"searching {2 * args.pairs_2048} safe primes of 1024 bits", flush=True)
    pairs_2048, seconds_2048 = _pairs(1024, args.pairs_2048, args.workers)
    print(f"searching {2 * args.pairs_3072} safe primes of 1536 bits", flush=True)
    pairs_3072, seconds_3072 = _pairs(1536, args.pairs_3072, args.workers)

    document = {
        "warning": WARNING,
        "format": "hex, big-endian; each entry is one Paillier-Blum modulus N = p*q of safe primes",
        "generated_by": "scripts/gen_test_fixtures.py",
        "search_seconds": {
            "2048": round(seconds_2048, 2),
            "3072": round(seconds_3072, 2),
            "workers": args.workers,
        },
        "moduli": {"1024": pairs_1024, "2048": pairs_2048, "3072": pairs_3072},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=1) + "\n")
    print(
        f"1024-bit: {2 * args.pairs_2048} primes in {seconds_2048:.1f} s "
        f"({seconds_2048 * args.workers / (2 * args.pairs_2048):.2f} core-s per prime); "
        f"1536-bit: {2 * args.pairs_3072} primes in {seconds_3072:.1f} s "
        f"({seconds_3072 * args.workers / (2 * args.pairs_3072):.2f} core-s per prime); "
        f"wrote {args.output}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
