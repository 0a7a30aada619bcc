"""What sharing records within the quorum costs a signature (docs/cosigner.md, "Records
shared within a quorum").

Two clusters of three ``shardvault cosigner run`` processes, each polling its own relay
on loopback, in one run: one as shipped (every signing session starts with the records
round: one more signed broadcast through the relay, the merge of the peers' new lines,
and the policy and replay checks again over them), one started with the measurement-only
``--no-record-sharing`` (what signing cost before the round existed). The two are driven
alternately, request by request, so machine noise falls on both. Quorums rotate ((1,2),
(1,3), (2,3)), so every session carries new record lines.

Prints p50/p99 latencies of FROST Ed25519 (Solana) signing and of CGGMP21 online signing
from a presignature (Ethereum; presigning not timed), and the ratio of the p50s.

Run: ``.venv/bin/python bench/bench_record_sharing.py [--count N]``.
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

QUORUMS = ((1, 2), (1, 3), (2, 3))
MODES = ("shared", "unshared")


def _p50(values: list[float]) -> float:
    return statistics.median(values) * 1000


def _show(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {_p50(ordered):.1f} ms, p99 {p99 * 1000:.1f} ms"


def _eth(nonce: int) -> bytes:
    tx = ethereum.native_transfer(
        chain_id=1,
        nonce=nonce,
        to="0x2222222222222222222222222222222222222222",
        amount="0.01",
        fees=ethereum.FeeParameters(30 * 10**9, 10**9, 21000),
    )
    return ethereum.encode_unsigned(tx)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=60, help="signatures per mode and scheme")
    count = parser.parse_args().count
    with tempfile.TemporaryDirectory() as tmp:
        clusters: dict[str, Harness] = {}
        try:
            for mode in MODES:
                extra = ("--no-record-sharing",) if mode == "unshared" else ()
                clusters[mode] = Harness(Path(tmp) / mode, extra_args=extra)
                install_policy(clusters[mode])
            keys = {
                mode: bytes.fromhex(
                    str(h.run(dkg_body("eddsa-ed25519", "sol"), (1, 2, 3))[1]["public_key"])
                )
                for mode, h in clusters.items()
            }
            for h in clusters.values():
                h.run(dkg_body("ecdsa-secp256k1", "eth"), (1, 2, 3))
            frost: dict[str, list[float]] = {mode: [] for mode in MODES}
            ecdsa: dict[str, list[float]] = {mode: [] for mode in MODES}
            for i in range(count):
                quorum = QUORUMS[i % len(QUORUMS)]
                for mode in MODES if i % 2 == 0 else reversed(MODES):
                    h = clusters[mode]
                    body = sign_body("solana", solana_message(keys[mode], 1000 + i), quorum, "sol")
                    t = time.perf_counter()
                    h.run(body, quorum)
                    frost[mode].append(time.perf_counter() - t)
                    h.run(presign_body("eth", quorum, f"p{i}"), quorum)
                    body = sign_body("ethereum", _eth(i), quorum, "eth", presignature=f"p{i}")
                    t = time.perf_counter()
                    h.run(body, quorum)
                    ecdsa[mode].append(time.perf_counter() - t)
            for name, times in (
                ("FROST Ed25519 signing", frost),
                ("CGGMP21 online signing", ecdsa),
            ):
                for mode in MODES:
                    print(f"{name}, records {mode}, x{count}: {_show(times[mode])}")
                ratio = _p50(times["shared"]) / _p50(times["unshared"])
                print(f"{name}: p50 with the records round / without = {ratio:.2f}")
            print(json.dumps({"cpus": os.cpu_count(), "count": count}))
        finally:
            for h in clusters.values():
                h.close()


if __name__ == "__main__":
    main()
