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
import hashlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from nacl.signing import SigningKey

from shardvault.chains import ethereum, solana
from shardvault.chains.solana import system
from shardvault.cosigner.node import TEST_ONLY_PRIMES_ENV
from shardvault.cosigner.relay_app import create_relay_app
from shardvault.cosigner.relay_core import RelayCore
from shardvault.cosigner.state import init_node, pin_peers, unseal_identity
from shardvault.crypto.channel import Directory
from shardvault.custody.backends.local import DEVELOPMENT_COST
from shardvault.custody.secret import SecretBytes
from shardvault.policy import new_bundle, parse_address_book, parse_admin_set, parse_policy

ROOT = Path(__file__).resolve().parents[1]
PRIMES = ROOT / "tests" / "fixtures" / "test_only_paillier.json"
WORKSPACE, VAULT, PASSPHRASE = "bench", "vault", "bench passphrase"
ADMIN = SigningKey(hashlib.sha256(b"bench admin").digest())
ADMINS = {
    "quorum": 1,
    "members": [
        {"id": "admin", "algorithm": "ed25519", "public_key": bytes(ADMIN.verify_key).hex()}
    ],
}
POLICY = {
    "format": "shardvault.policy/v1",
    "version": 1,
    "reference_currency": "USD",
    "rules": [
        {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
        {"name": "transfers", "when": {"operation": ["transfer"]}, "action": "allow"},
    ],
}


def _metadata() -> dict[str, object]:
    return {
        "initiator": {"type": "api_key", "id": "bench"},
        "source": {"vault": VAULT},
        "created_at": int(time.time()),
    }


class Harness:
    def __init__(self, root: Path) -> None:
        dirs = {p: root / f"c{p}" for p in (1, 2, 3)}
        identities = {}
        for party, directory in dirs.items():
            with SecretBytes(PASSPHRASE.encode()) as passphrase:
                identities[party] = init_node(
                    directory, party, WORKSPACE, ADMINS, passphrase, cost=DEVELOPMENT_COST
                )
        for directory in dirs.values():
            with SecretBytes(PASSPHRASE.encode()) as passphrase:
                pin_peers(directory, identities, unseal_identity(directory, passphrase))
        self.core = RelayCore(Directory.of(identities), keep_transcript=False)
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._sock = sock
        self._server = uvicorn.Server(
            uvicorn.Config(create_relay_app(self.core), log_level="warning", lifespan="off")
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        while not self._server.started:
            time.sleep(0.02)
        env = {**os.environ, "SV_BENCH_PASS": PASSPHRASE, TEST_ONLY_PRIMES_ENV: str(PRIMES)}
        self._log = open(root / "cosigners.log", "w")
        self.processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "shardvault.cli.main",
                    "cosigner",
                    "run",
                    "--id",
                    str(p),
                    "--data-dir",
                    str(d),
                    "--coordinator",
                    url,
                    "--passphrase-env",
                    "SV_BENCH_PASS",
                    "--poll-wait",
                    "5",
                ],
                stdout=subprocess.PIPE,
                stderr=self._log,
                env=env,
                text=True,
            )
            for p, d in dirs.items()
        ]
        for process in self.processes:
            process.stdout.readline()

    def run(self, body: dict, parties, timeout: float = 120.0) -> dict[int, dict]:
        self.core.submit(body, list(parties))
        results = self.core.wait_results(body["request_id"], list(parties), timeout)
        statuses = {r["status"] for r in results.values()}
        if statuses != {"ok"} or len(results) != len(parties):
            raise SystemExit(f"request {body['kind']} failed: {results}")
        return results

    def close(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            process.wait(timeout=10)
            process.stdout.close()
        self.core.close()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
        self._log.close()


def _sign_body(chain: str, payload: bytes, signers, key_id: str, **extra) -> dict:
    return {
        "kind": "sign",
        "request_id": secrets.token_hex(8),
        "session_id": secrets.token_hex(32),
        "vault": VAULT,
        "key_id": key_id,
        "signers": list(signers),
        "chain": chain,
        "payload": payload.hex(),
        "metadata": _metadata(),
        "approvals": [],
        **extra,
    }


def _solana_message(key: bytes, lamports: int) -> bytes:
    ours = solana.Pubkey(key)
    to = solana.Pubkey(hashlib.sha256(b"bench destination").digest())
    message = solana.compile_legacy_message(
        ours, [system.transfer(ours, to, lamports)], secrets.token_bytes(32)
    )
    return solana.serialize_message(message)


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
            bundle = new_bundle(
                WORKSPACE,
                parse_policy(POLICY),
                parse_address_book({"format": "shardvault.address-book/v1", "entries": []}),
                parse_admin_set(ADMINS),
            )
            bundle = bundle.with_signature("admin", ADMIN.sign(bundle.signing_message()).signature)
            harness.run(
                {"kind": "policy", "request_id": "policy", "bundles": [bundle.to_json()]},
                (1, 2, 3),
            )
            t = time.perf_counter()
            dkg = {
                "kind": "dkg",
                "request_id": "dkg-sol",
                "session_id": secrets.token_hex(32),
                "scheme": "eddsa-ed25519",
                "vault": VAULT,
                "key_id": "sol",
                "parties": [1, 2, 3],
                "min_signers": 2,
                "metadata": _metadata(),
            }
            key = bytes.fromhex(harness.run(dkg, (1, 2, 3))[1]["public_key"])
            print(f"FROST Ed25519 2-of-3 key generation: {(time.perf_counter() - t) * 1000:.1f} ms")

            latencies = []
            for i in range(count):
                body = _sign_body("solana", _solana_message(key, 1000 + i), (1, 2), "sol")
                t = time.perf_counter()
                harness.run(body, (1, 2))
                latencies.append(time.perf_counter() - t)
            print(f"FROST Ed25519 signing, sequential x{count}: {_ms(latencies)}")

            bodies = [
                _sign_body("solana", _solana_message(key, 5000 + i), (1 + i % 2, 3), "sol")
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
            ecdsa = {
                **dkg,
                "request_id": "dkg-eth",
                "session_id": secrets.token_hex(32),
                "aux_session_id": secrets.token_hex(32),
                "scheme": "ecdsa-secp256k1",
                "key_id": "eth",
            }
            harness.run(ecdsa, (1, 2, 3))
            print(
                "CGGMP21 2-of-3 aux info + key generation (TEST-ONLY primes): "
                f"{time.perf_counter() - t:.2f} s"
            )
            rounds = max(3, count // 10)
            presign_times, sign_times = [], []
            for i in range(rounds):
                t = time.perf_counter()
                harness.run(
                    {
                        "kind": "presign",
                        "request_id": f"presign-{i}",
                        "session_id": secrets.token_hex(32),
                        "vault": VAULT,
                        "key_id": "eth",
                        "signers": [1, 2],
                        "presignature": f"p{i}",
                    },
                    (1, 2),
                )
                presign_times.append(time.perf_counter() - t)
            for i in range(rounds):
                tx = ethereum.native_transfer(
                    chain_id=1,
                    nonce=i,
                    to="0x2222222222222222222222222222222222222222",
                    amount="0.01",
                    fees=ethereum.FeeParameters(30 * 10**9, 10**9, 21000),
                )
                body = _sign_body(
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
