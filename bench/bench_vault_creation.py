"""Vault creation through the API with three co-signer processes, warm and cold prime pool,
beside the DKLs23 peer's key generation in the same run.

A ``shardvault server`` (embedded co-signers: three ``shardvault cosigner run``
processes, real safe primes, no test-only fixture) in a temporary directory, its
workspace made with ``shardvault init`` and a policy that allows key generation signed
by a throw-away admin key. Every vault has three keys: CGGMP21 ECDSA 2-of-3, FROST
Ed25519 and FROST BIP340 2-of-3, made through ``POST /v1/vaults`` (the SDK's
``create_vault``, which waits for the vault).

* **first vault, cold pool**: the first vault of a fresh server, with the default pool
  (8 primes): the co-signers start with this request and their pools are empty, so each
  searches its two primes in the request (this figure includes starting the three
  co-signer processes);
* **pool off**: a second fresh server whose co-signers run with
  ``SHARDVAULT_PRIME_POOL_SIZE=0`` (the search always runs in the request, as before
  the pool), after an Ed25519-only vault has started the co-signers;
* **warm, prepared aux sets**: a third fresh server whose co-signers keep
  ``2 × count + 2`` primes and whose backend keeps ``count`` prepared auxiliary-info
  sets (``SHARDVAULT_AUX_SETS``; each co-signer's ``SHARDVAULT_AUX_POOL_MAX`` the same);
  an Ed25519-only vault starts the co-signers and an ECDSA-only one starts the
  background filler, the bench waits until every co-signer holds ``count`` sets (the
  names in its share store), then creates ``--count`` vaults (default 20) one after
  another: p50 and p99 of their latency.
* **DKLs23 peer**: ``bench/peers/dkls.mjs`` key generation 2-of-3 (all parties in one
  process, no transport), ``KG_RUNS=--count``, if ``make bench-peers`` installed it.

Each ECDSA key is checked to come from a prepared set in the warm run: during the
timed vaults every co-signer must have taken exactly ``count`` sets.

Run: ``.venv/bin/python bench/bench_vault_creation.py [--count N] [--no-peer]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shardvault.sdk import ApiKeyCredentials, ShardvaultClient
from shardvault.sdk.custody import sign_bundle

ROOT = Path(__file__).resolve().parent.parent
SCHEMES = ["ecdsa-secp256k1", "eddsa-ed25519", "schnorr-bip340"]
POLICY = {
    "format": "shardvault.policy/v1",
    "version": 1,
    "reference_currency": "USD",
    "rules": [
        {"name": "key-generation", "when": {"operation": ["key_generation"]}, "action": "allow"}
    ],
}


def _raw(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


@contextmanager
def _server(
    workdir: Path, pool_size: int | None, aux_sets: int = 0
) -> Iterator[tuple[str, ApiKeyCredentials]]:
    data_dir = workdir / "data"
    owner_pem = workdir / "owner.pem"
    init = subprocess.run(
        [sys.executable, "-m", "shardvault.cli.main", "init", "--name", "bench",
         "--owner-name", "Olivia", "--owner-email", "olivia@bench.example",
         "--key-out", str(owner_pem), "--data-dir", str(data_dir), "--json"],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    owner_doc = json.loads(init.stdout)
    env = dict(os.environ)
    if pool_size is not None:
        env["SHARDVAULT_PRIME_POOL_SIZE"] = str(pool_size)
        env["SHARDVAULT_PRIME_POOL_RATE"] = "6000"
    # Prepared aux-info sets: the server's target and each co-signer's bound.
    env["SHARDVAULT_AUX_SETS"] = str(aux_sets)
    env["SHARDVAULT_AUX_POOL_MAX"] = str(max(aux_sets, 1))
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "shardvault.cli.main", "server", "--port", "0",
         "--data-dir", str(data_dir), "--json", "--log-level", "warning"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = str(json.loads(process.stdout.readline())["url"])
        owner = ApiKeyCredentials.from_file(owner_doc["api_key_id"], owner_pem)
        _install_policy(url, owner)
        yield url, owner
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _install_policy(url: str, owner: ApiKeyCredentials) -> None:
    admin = Ed25519PrivateKey.generate()
    with ShardvaultClient(url, owner) as client:
        draft = client.create_policy(document=POLICY)
        members = [{"id": "admin", "algorithm": "ed25519", "public_key": _raw(admin)}]
        proposed = client.propose_policy(draft.id, admins={"quorum": 1, "members": members})
        assert proposed.signing_message is not None
        client.sign_policy(
            draft.id, signer="admin", signature=sign_bundle(admin, proposed.signing_message)
        )
        client.activate_policy(draft.id)


def _vault(client: ShardvaultClient, schemes: list[str]) -> float:
    started = time.perf_counter()
    vault = client.create_vault(name=f"v-{secrets.token_hex(6)}", schemes=schemes)
    seconds = time.perf_counter() - started
    assert [k.scheme for k in vault.keys] == schemes
    return seconds


def _pools(workdir: Path) -> list[tuple[int, int]]:
    """(ready, taken) primes of each embedded co-signer, read from the names in its
    share store (no file is opened: the primes are sealed). The embedded co-signers are
    not paired, so ``GET /v1/cosigners`` does not list them."""
    counts = []
    for party in sorted((workdir / "data-cosigners").glob("*/party-*")):
        ready = taken = 0
        for entry in (party / "shares" / "prime-pool" / "safe-primes").glob("*/*"):
            revisions = sorted(p.name for p in entry.iterdir())
            if revisions and revisions[-1].endswith("2.blob"):
                taken += 1
            elif revisions:
                ready += 1
        counts.append((ready, taken))
    return counts


def _aux_sets(workdir: Path) -> list[tuple[int, int]]:
    """(ready, taken) prepared aux-info sets of each embedded co-signer, from the names
    in its share store, as :func:`_pools` reads primes."""
    counts = []
    for party in sorted((workdir / "data-cosigners").glob("*/party-*")):
        ready = taken = 0
        for entry in (party / "shares" / "aux-pool" / "sets").glob("*/*"):
            revisions = sorted(p.name for p in entry.iterdir())
            if revisions and revisions[-1].endswith("2.blob"):
                taken += 1
            elif revisions:
                ready += 1
        counts.append((ready, taken))
    return counts


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _cold(count_label: str) -> None:
    with tempfile.TemporaryDirectory(prefix="sv-bench-vault-") as tmp:
        with _server(Path(tmp), None) as (url, owner), ShardvaultClient(url, owner) as client:
            seconds = _vault(client, SCHEMES)
    print(f"first vault, cold pool (co-signers start with it)  {seconds:6.2f} s{count_label}")


def _pool_off() -> None:
    with tempfile.TemporaryDirectory(prefix="sv-bench-vault-") as tmp:
        with _server(Path(tmp), 0) as (url, owner), ShardvaultClient(url, owner) as client:
            _vault(client, ["eddsa-ed25519"])
            seconds = [_vault(client, SCHEMES) for _ in range(3)]
    median = statistics.median(seconds)
    print(
        f"pool off (search in the request), 3 vaults       median {median:6.2f} s"
        f"  min {min(seconds):.2f}  max {max(seconds):.2f}"
    )


def _warm(count: int) -> list[float]:
    # Primes for the prepared sets (two per set and co-signer) and a spare pair.
    size = 2 * count + 2
    with tempfile.TemporaryDirectory(prefix="sv-bench-vault-") as tmp:
        with (
            _server(Path(tmp), size, aux_sets=count) as (url, owner),
            ShardvaultClient(url, owner) as client,
        ):
            _vault(client, ["eddsa-ed25519"])
            started = time.perf_counter()
            # One ECDSA vault starts the server's filler of prepared sets.
            _vault(client, ["ecdsa-secp256k1"])
            while True:
                sets = _aux_sets(Path(tmp))
                if len(sets) == 3 and all(ready >= count for ready, _ in sets):
                    break
                if time.perf_counter() - started > 3600:
                    raise RuntimeError(f"the prepared sets did not fill: {sets}")
                time.sleep(1.0)
            fill = time.perf_counter() - started
            print(
                f"warm-up: {count} prepared aux-info sets per co-signer in {fill:.0f} s "
                f"(primes searched on the way; 3 co-signers; load {os.getloadavg()[0]:.1f})"
            )
            before = [t for _, t in _aux_sets(Path(tmp))]
            seconds = [_vault(client, SCHEMES) for _ in range(count)]
            after = [t for _, t in _aux_sets(Path(tmp))]
    used = [a - b for a, b in zip(after, before, strict=True)]
    if used != [count] * 3:
        raise RuntimeError(f"expected every vault from a prepared set; taken {used}")
    p50, p99 = _percentile(seconds, 0.5), _percentile(seconds, 0.99)
    print(
        f"warm, prepared aux sets, {count} vaults (3 keys each)  p50 {p50:6.2f} s"
        f"  p99 {p99:.2f}  min {min(seconds):.2f}  max {max(seconds):.2f}"
        f"  (load {os.getloadavg()[0]:.1f})"
    )
    return seconds


def _peer(count: int) -> None:
    if not (ROOT / "bench" / "peers" / "node_modules").is_dir():
        print("DKLs23 peer: skipped (run `make bench-peers` first)")
        return
    env = {**os.environ, "CONFIGS": "2-3", "RUNS": "2", "KG_RUNS": str(count), "WARMUP": "1"}
    done = subprocess.run(
        ["node", "dkls.mjs"], cwd=ROOT / "bench" / "peers", env=env,
        capture_output=True, text=True, check=False, timeout=1800,
    )  # fmt: skip
    line = next((x for x in done.stdout.splitlines() if re.search(r"key generation", x)), None)
    print(f"DKLs23 peer (dkls.mjs, 2-of-3, {count} runs): {line or done.stderr[-300:]}")


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--warm-only", action="store_true", help="skip the cold figures")
    args = parser.parse_args()
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")
    if not args.warm_only:
        _cold("")
        _pool_off()
    _warm(args.count)
    if not args.no_peer:
        _peer(args.count)
    print(f"load at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
