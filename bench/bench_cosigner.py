"""Co-signer benchmark: three ``shardvault cosigner run`` processes and a relay on loopback.

Measures, end to end through the HTTP long-poll relay (every message signed, direct ones
encrypted, every request checked against the signed policy by every co-signer):

* FROST Ed25519 2-of-3 key generation;
* FROST Ed25519 signing of Solana transfers, one at a time (latency p50/p99) and as a
  burst of concurrent sessions (throughput);
* CGGMP21 2-of-3 key generation (auxiliary info with the TEST-ONLY published primes, so
  no prime search is timed), presigning and one-round online signing of Ethereum
  transactions.

Run: ``.venv/bin/python bench/bench_cosigner.py [--count N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from cosigner_harness import (
    Harness,
    dkg_body,
    install_policy,
    presign_body,
    sign_body,
    solana_message,
)
from shardvault.chains import ethereum


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=50)
    count = parser.parse_args().count
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        harness = Harness(Path(tmp))
        print(f"start-up (3 processes + relay): {time.perf_counter() - began:.2f} s")
        try:
            install_policy(harness)
            t = time.perf_counter()
            dkg = dkg_body("eddsa-ed25519", "sol")
            key = bytes.fromhex(str(harness.run(dkg, (1, 2, 3))[1]["public_key"]))
            print(f"FROST Ed25519 2-of-3 key generation: {(time.perf_counter() - t) * 1000:.1f} ms")

            latencies = []
            for i in range(count):
                body = sign_body("solana", solana_message(key, 1000 + i), (1, 2), "sol")
                t = time.perf_counter()
                harness.run(body, (1, 2))
                latencies.append(time.perf_counter() - t)
            print(f"FROST Ed25519 signing, sequential x{count}: {_ms(latencies)}")

            bodies = [
                sign_body("solana", solana_message(key, 5000 + i), (1 + i % 2, 3), "sol")
                for i in range(count)
            ]
            t = time.perf_counter()
            for body in bodies:
                harness.core.submit(body, body["signers"])
            for body in bodies:
                results = harness.core.wait_results(body["request_id"], body["signers"], 120)
                assert {r["status"] for r in results.values()} == {"ok"}, results
            elapsed = time.perf_counter() - t
            print(
                f"FROST Ed25519 signing, burst of {count} concurrent sessions: "
                f"{elapsed:.2f} s, {count / elapsed:.1f} signatures/s"
            )

            t = time.perf_counter()
            harness.run(dkg_body("ecdsa-secp256k1", "eth"), (1, 2, 3))
            print(
                "CGGMP21 2-of-3 aux info + key generation (TEST-ONLY primes): "
                f"{time.perf_counter() - t:.2f} s"
            )
            rounds = max(3, count // 10)
            presign_times, sign_times = [], []
            for i in range(rounds):
                t = time.perf_counter()
                harness.run(presign_body("eth", (1, 2), f"p{i}"), (1, 2))
                presign_times.append(time.perf_counter() - t)
            for i in range(rounds):
                tx = ethereum.native_transfer(
                    chain_id=1,
                    nonce=i,
                    to="0x2222222222222222222222222222222222222222",
                    amount="0.01",
                    fees=ethereum.FeeParameters(30 * 10**9, 10**9, 21000),
                )
                body = sign_body(
                    "ethereum", ethereum.encode_unsigned(tx), (1, 2), "eth", presignature=f"p{i}"
                )
                t = time.perf_counter()
                harness.run(body, (1, 2))
                sign_times.append(time.perf_counter() - t)
            print(f"CGGMP21 presigning x{rounds}: {_ms(presign_times)}")
            print(f"CGGMP21 online signing from a presignature x{rounds}: {_ms(sign_times)}")
            print(json.dumps({"cpus": os.cpu_count(), "count": count}))
        finally:
            harness.close()


if __name__ == "__main__":
    main()
