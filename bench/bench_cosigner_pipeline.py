"""Transactions created, policy-checked and signed per second through three co-signer
processes, and the latency from the API call to ``signed``.

Everything is real and local: hardhat (:mod:`shardvault.devchain`), ``shardvault init``,
``shardvault server`` as a child process (SQLite, the default co-signer signer, several
pipeline workers), which starts the workspace's three ``shardvault cosigner run``
processes; each transaction goes API (signed JWT) -> store -> policy -> serialization ->
a signing session in which the two signing co-signers each re-check the payload and the
signed policy -> signature. Times come from the audit events' timestamps
(``transaction.signed``) against the client's clock at the API call (one machine).

Four runs:

0. **paced from the pool**: PACED transfers, one every 1/RATE s (below capacity), so
   the latency from the API call to ``signed`` is the path's own, without queueing.
1. **burst from a full ECDSA presignature pool**: POOL presignatures are made in the
   background first (the bench waits until the co-signers are idle), then BURST ETH
   transfers are created at once; each signature is one online round; BURSTS runs, the
   median reported. Targets: at least 50 signed transactions per second, p50 under 60
   ms (read as run 0's latency: in a burst the median queues behind half the others).
2. **ECDSA sustained** (pool drained): SUSTAINED transfers at once; presigning bounds the
   rate, so it is reported beside the presigning rate measured alone (the pool fill).
3. **FROST Ed25519 sustained**: SUSTAINED Solana transfers (signed and verified, not
   broadcast), two rounds each, no presignature.

Before each burst a fixed probe (a pure-Python loop and GMP exponentiations) gives the
machine's speed at that moment; this machine's speed drifts by a factor of two between
hours, so figures from different runs are compared through it.

The key generation uses the TEST-ONLY published primes (key generation speed is not
measured here). The bench ends by printing every transfer's final state (a run counts
only if none failed). Run: ``.venv/bin/python bench/bench_cosigner_pipeline.py [--burst
N] [--bursts N] [--pool N] [--sustained N] [--workers N] [--batch N] [--postgres]`` (about 4 min).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import gmpy2
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Engine, create_engine, text

from shardvault.devchain import HardhatNode, start_hardhat, stop_hardhat
from shardvault.sdk import ApiKeyCredentials, AsyncShardvaultClient, ShardvaultClient
from shardvault.sdk.custody import sign_bundle
from shardvault.service.pipeline import DEFAULT_BATCH_SIZE

REPO = Path(__file__).resolve().parents[1]
PRIMES = REPO / "tests" / "fixtures" / "test_only_paillier.json"
ETH_RECIPIENT = "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955"
SOL_RECIPIENT = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"
MIN_AFTER_POOL = 10
"""Fewest transfers signed after the pool ran out for a presign-bound rate to be given."""

POLICY = {
    "format": "shardvault.policy/v1",
    "version": 1,
    "reference_currency": "USD",
    "rules": [
        {"name": "key-generation", "when": {"operation": ["key_generation"]}, "action": "allow"},
        {"name": "transfers", "when": {"operation": ["transfer"]}, "action": "allow"},
    ],
}


def _cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def _machine_probe() -> dict[str, float]:
    """How fast this machine is right now: a fixed pure-Python loop (the server's kind of
    work) and fixed GMP modular exponentiations (the co-signers' kind), in ms, and the
    round trip of a wake-up between two threads, in microseconds; lower is faster. The
    pipeline's rate on the same code drifts by a factor of two between hours (docs/
    performance.md), so each burst is printed with the probe taken just before it."""
    started = time.perf_counter()
    sum(i * i for i in range(2_000_000))
    python_ms = (time.perf_counter() - started) * 1000
    base = gmpy2.mpz(2) ** 2048 + 981
    modulus = gmpy2.next_prime(gmpy2.mpz(3) << 1024) ** 2
    started = time.perf_counter()
    for _ in range(60):
        gmpy2.powmod(base, modulus, modulus)
    gmp_ms = (time.perf_counter() - started) * 1000
    # Wake-ups: a byte sent back and forth between two threads over a socket pair (the
    # server's threads, the co-signers and hardhat hand work to each other all the time).
    here, there = socket.socketpair()
    rounds = 2000

    def echo() -> None:
        for _ in range(rounds):
            there.sendall(there.recv(1))

    echoer = threading.Thread(target=echo)
    echoer.start()
    started = time.perf_counter()
    for _ in range(rounds):
        here.sendall(b"x")
        here.recv(1)
    wakeup_us = (time.perf_counter() - started) / rounds * 1e6
    echoer.join()
    here.close()
    there.close()
    return {
        "python_ms": round(python_ms, 1),
        "gmp_ms": round(gmp_ms, 1),
        "wakeup_us": round(wakeup_us, 1),
    }


def _cosigner_pids(data_dir: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # ``shardvault cosigner run`` or ``python -m shardvault.cli.cosigner run`` (how
        # the server starts them), with a data directory beside the server's.
        launched = b"cosigner" in command or b"shardvault.cli.cosigner" in command
        if launched and any(str(data_dir).encode() in c for c in command):
            pids.append(int(entry.name))
    return pids


def _wait_idle(pids: list[int], quiet_s: float = 1.5, timeout: float = 900.0) -> float:
    """Wait until the co-signers use no CPU for ``quiet_s``; answers when they stopped."""
    start = time.monotonic()
    last, last_change = _cpu_ticks(pids), time.monotonic()
    while time.monotonic() - start < timeout:
        time.sleep(0.25)
        now = _cpu_ticks(pids)
        if now != last:
            last, last_change = now, time.monotonic()
        elif time.monotonic() - last_change >= quiet_s:
            return last_change - start
    raise TimeoutError("the co-signers did not go idle")


def _utc_ts(value: object) -> float:
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp()


_ENGINES: dict[str, Engine] = {}


def _rows(db: str, query: str, ids: list[str]) -> list[tuple[object, ...]]:
    engine = _ENGINES.get(db) or _ENGINES.setdefault(db, create_engine(db))
    names = {f"id{i}": v for i, v in enumerate(ids)}
    marks = ",".join(f":{n}" for n in names)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(query.format(ids=marks)), names)]


def _signed_at(db: str, ids: list[str]) -> dict[str, float]:
    rows = _rows(
        db,
        "SELECT resource_id, occurred_at FROM audit_events "
        "WHERE action = 'transaction.signed' AND resource_id IN ({ids})",
        ids,
    )
    return {str(r): _utc_ts(t) for r, t in rows}


_STEPS = ("submitted", "pending_policy", "approved", "signing", "signed")


def _step_medians(db: str, ids: list[str]) -> dict[str, float]:
    """Median time spent before each state, from consecutive audit events."""
    rows = _rows(
        db,
        "SELECT resource_id, action, occurred_at FROM audit_events WHERE resource_id IN ({ids})",
        ids,
    )
    at: dict[str, dict[str, float]] = {}
    for resource, action, occurred in rows:
        at.setdefault(str(resource), {})[str(action).removeprefix("transaction.")] = _utc_ts(
            occurred
        )
    out = {}
    for before, after in itertools.pairwise(_STEPS):
        gaps = [(t[after] - t[before]) * 1000 for t in at.values() if before in t and after in t]
        if gaps:
            out[f"to_{after}"] = round(statistics.median(gaps), 1)
    return out


async def _send(
    url: str,
    owner: ApiKeyCredentials,
    wallet: str,
    to: str,
    amount: str,
    count: int,
    interval: float = 0.0,
) -> list[tuple[str, float]]:
    """``count`` creates at once, or one every ``interval`` seconds."""
    async with AsyncShardvaultClient(url, owner) as client:

        async def one(delay: float) -> tuple[str, float]:
            await asyncio.sleep(delay)
            started = time.time()
            tx = await client.create_transaction(wallet_id=wallet, destination=to, amount=amount)
            return tx.id, started

        return await asyncio.gather(*(one(i * interval) for i in range(count)))


_PROCESSES: dict[str, list[int]] = {}
"""Process groups whose CPU time each run reports (server, co-signers, hardhat)."""


_SERVER_PID: list[int] = []
_HARDHAT_PID: list[int] = []


def _run(
    label: str,
    db: str,
    url: str,
    owner: ApiKeyCredentials,
    wallet: str,
    to: str,
    count: int,
    *,
    skip: int = 0,
    interval: float = 0.0,
) -> dict[str, float]:
    """Create ``count`` transfers at once; rate and latency to ``signed``. With ``skip``,
    also the rate after the first ``skip`` signatures (once a pool of that size is used
    up, what presigning sustains)."""
    cpu_before = {name: _cpu_ticks(pids) for name, pids in _PROCESSES.items()}
    calls = asyncio.run(_send(url, owner, wallet, to, "0.001", count, interval))
    ids = [i for i, _ in calls]
    deadline = time.monotonic() + 600
    signed: dict[str, float] = {}
    while time.monotonic() < deadline:
        signed = _signed_at(db, ids)
        if len(signed) == len(ids):
            break
        time.sleep(0.2)
    if len(signed) != len(ids):
        raise RuntimeError(f"{label}: only {len(signed)} of {len(ids)} were signed")
    latencies = sorted((signed[i] - t) * 1000 for i, t in calls)
    first_call = min(t for _, t in calls)
    span = max(signed.values()) - first_call
    result = {
        "count": count,
        "signed_per_s": round(count / span, 1),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
        "span_s": round(span, 2),
    }
    hz = os.sysconf("SC_CLK_TCK")
    result["cpu_ms_per_tx"] = {  # type: ignore[assignment]
        name: round((_cpu_ticks(pids) - cpu_before[name]) / hz * 1000 / count, 1)
        for name, pids in _PROCESSES.items()
    }
    steps = _step_medians(db, ids)
    if steps:
        result["median_step_ms"] = steps  # type: ignore[assignment]
    # A rate over a handful of transfers after the pool says nothing (two signed in the
    # same millisecond make thousands per second): ask for at least ten.
    if 0 < skip and count - skip >= MIN_AFTER_POOL:
        times = sorted(signed.values())
        result["after_pool_per_s"] = round((count - skip) / (times[-1] - times[skip - 1]), 2)
    print(f"{label}: {json.dumps(result)}", flush=True)
    return result


def _outcomes(db: str, timeout: float = 60.0) -> dict[str, object]:
    """Every transfer's final status once none is in flight (ETH ones complete on
    hardhat, Solana ones stay signed), with the reasons of any that failed."""
    engine = _ENGINES.get(db) or _ENGINES.setdefault(db, create_engine(db))
    in_flight = ("submitted", "pending_policy", "approved", "signing", "broadcasting", "confirming")
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT status, status_reason FROM transactions")).all()
        statuses = [str(status).lower() for status, _ in rows]
        if not any(s in in_flight for s in statuses) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    reasons = sorted({str(r) for s, r in rows if str(s).lower() in ("failed", "blocked")})
    return {
        "statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
        "failure_reasons": reasons[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--bursts", type=int, default=3, help="burst runs (median reported)")
    parser.add_argument("--pool", type=int, default=0, help="default: the burst size")
    parser.add_argument("--sustained", type=int, default=40)
    parser.add_argument(
        "--workers", type=int, default=4, help="pipeline worker threads (the server's default)"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help="transfers a worker claims at once (the server's default)",
    )
    parser.add_argument("--paced", type=int, default=30, help="transfers in the paced run")
    parser.add_argument("--paced-rate", type=float, default=4.0, help="per second")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="PostgreSQL on 127.0.0.1:5432 (a fresh database, dropped at the end) "
        "instead of SQLite",
    )
    parser.add_argument(
        "--server-log", type=Path, help="keep the server's log here (default: dropped)"
    )
    parser.add_argument(
        "--code",
        type=Path,
        help="run the server and its co-signers from this source tree's src/ (another "
        "revision; see bench/bench_pipeline_revisions.py) instead of this checkout",
    )
    parser.add_argument(
        "--server-log-level",
        default="warning",
        help="the server's log level (info: every "
        "request and nonce-gap wait; it costs the server CPU)",
    )
    args = parser.parse_args()
    pool = args.pool or args.burst
    with tempfile.TemporaryDirectory(prefix="sv-bench-cosigners-") as tmp:
        work = Path(tmp)
        (work / "hardhat").mkdir()
        hardhat, node = start_hardhat(work / "hardhat")
        _HARDHAT_PID.append(hardhat.pid)
        server = None
        try:
            db = (
                _create_postgres()
                if args.postgres
                else f"sqlite:///{work / 'data' / 'shardvault.db'}"
            )
            server, url, owner, data = _start(
                work,
                pool,
                args.workers,
                args.batch,
                db,
                args.server_log,
                args.server_log_level,
                args.code,
            )
            _SERVER_PID.append(server.pid)
            print(f"database: {db.split('://')[0]}", flush=True)
            _measure(url, owner, data, node, args, pool, db)
        finally:
            if server is not None:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=60)
            stop_hardhat(hardhat)
            for engine in _ENGINES.values():
                engine.dispose()
            if args.postgres:
                _drop_postgres(db)


_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _create_postgres() -> str:
    name = f"sv_bench_{os.getpid()}"
    with psycopg.connect(_PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _drop_postgres(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(_PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _start(
    work: Path,
    pool: int,
    workers: int,
    batch: int,
    db: str,
    log_path: Path | None,
    log_level: str,
    code: Path | None,
) -> tuple[subprocess.Popen[bytes], str, ApiKeyCredentials, Path]:
    data = work / "data"
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str((code / "src").resolve())
    init = subprocess.run(
        [sys.executable, "-m", "shardvault.cli.main", "init", "--name", "bench",
         "--owner-name", "B", "--owner-email", "b@bench.example",
         "--key-out", str(work / "owner.pem"), "--data-dir", str(data), "--db", db, "--json"],
        capture_output=True, check=True, text=True, env=env,
    )  # fmt: skip
    doc = json.loads(init.stdout)
    log = (log_path or work / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "shardvault.cli.main", "server", "--port", "0",
         "--data-dir", str(data), "--db", db, "--json", "--log-level", log_level,
         "--presignature-pool", str(pool), "--pipeline-workers", str(workers),
         "--pipeline-batch", str(batch),
         "--unsafe-test-only-primes", str(PRIMES)],
        stdout=subprocess.PIPE, stderr=log, env=env,
    )  # fmt: skip
    assert server.stdout is not None
    url = str(json.loads(server.stdout.readline())["url"])
    owner = ApiKeyCredentials.from_file(doc["api_key_id"], work / "owner.pem")
    return server, url, owner, data


def _measure(
    url: str,
    owner: ApiKeyCredentials,
    data: Path,
    node: HardhatNode,
    args: argparse.Namespace,
    pool: int,
    db: str,
) -> None:
    admin = Ed25519PrivateKey.generate()
    raw = admin.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    with ShardvaultClient(url, owner) as client:
        client.configure_network(
            name="hardhat", kind="evm", chain_id=node.chain_id, rpc_url=node.url
        )
        client.add_asset(symbol="ETH", network="hardhat")
        client.configure_network(name="solana", kind="solana")
        client.add_asset(symbol="SOL", network="solana")
        policy = client.create_policy(document=POLICY)
        members = [{"id": "admin", "algorithm": "ed25519", "public_key": raw}]
        proposed = client.propose_policy(policy.id, admins={"quorum": 1, "members": members})
        assert proposed.signing_message is not None
        client.sign_policy(
            policy.id, signer="admin", signature=sign_bundle(admin, proposed.signing_message)
        )
        client.activate_policy(policy.id)
        started = time.perf_counter()
        vault = client.create_vault(name="bench", schemes=["ecdsa-secp256k1", "eddsa-ed25519"])
        print(f"vault keygen (ECDSA + Ed25519, 3 co-signer processes): "
              f"{time.perf_counter() - started:.2f} s", flush=True)  # fmt: skip
        eth = client.create_wallet(vault_id=vault.id, asset="ETH")
        sol = client.create_wallet(vault_id=vault.id, asset="SOL")
    node.fund(eth.addresses[0].address, 1000 * 10**18)
    pids = _cosigner_pids(data)
    print(f"co-signer processes: {len(pids)}", flush=True)
    _PROCESSES["cosigners"] = pids
    _PROCESSES["server"] = list(_SERVER_PID)
    _PROCESSES["bench client"] = [os.getpid()]
    _PROCESSES["hardhat"] = _HARDHAT_PID
    # Warm up: the first signature at this address presigns on demand; afterwards the
    # backend fills the pool in the background. Time the fill: presigning alone.
    _run("warm-up (1, presign on demand)", db, url, owner, eth.id, ETH_RECIPIENT, 1)
    fill_started = time.perf_counter()
    busy = _wait_idle(pids)
    fill = busy if busy > 0 else time.perf_counter() - fill_started
    presign_rate = pool / fill
    print(
        f"presignature pool: {pool} made in {fill:.1f} s = {presign_rate:.2f} presignatures/s "
        "(2 signing co-signers, presigning alone)",
        flush=True,
    )
    paced = _run(
        f"ECDSA paced from the pool ({args.paced} at {args.paced_rate}/s, no queueing)",
        db, url, owner, eth.id, ETH_RECIPIENT, args.paced, interval=1 / args.paced_rate,
    )  # fmt: skip
    # The burst's rate varies from run to run (scheduling, and this machine's speed
    # drifts): several runs, the median one reported.
    bursts = []
    probes = []
    for run in range(args.bursts):
        _wait_idle(pids)  # the pool is full again
        probes.append(_machine_probe())
        print(f"machine probe: {json.dumps(probes[-1])}", flush=True)
        print(f"burst {run + 1} starting", flush=True)
        bursts.append(_run(f"ECDSA burst {run + 1}/{args.bursts} from a full pool "
                           f"({args.burst})", db, url, owner, eth.id, ETH_RECIPIENT,
                           args.burst))  # fmt: skip
    burst = sorted(bursts, key=lambda r: r["signed_per_s"])[len(bursts) // 2]
    _wait_idle(pids)  # let the pool refill, then drain it from empty
    sustained_n = pool + args.sustained
    sustained = _run(f"ECDSA sustained ({sustained_n}: the pool, then presign-bound)", db, url,
                     owner, eth.id, ETH_RECIPIENT, sustained_n, skip=pool)  # fmt: skip
    _wait_idle(pids)
    frost = _run(f"FROST Ed25519 sustained ({args.sustained * 2})", db, url, owner, sol.id,
                 SOL_RECIPIENT, args.sustained * 2)  # fmt: skip
    outcome = _outcomes(db)
    print(f"outcomes: {json.dumps(outcome, sort_keys=True)}", flush=True)
    summary = {
        "paced_p50_ms": paced["p50_ms"],
        "paced_p99_ms": paced["p99_ms"],
        "burst_signed_per_s": burst["signed_per_s"],
        "burst_runs_signed_per_s": [r["signed_per_s"] for r in bursts],
        "burst_p50_ms": burst["p50_ms"],
        "burst_p99_ms": burst["p99_ms"],
        # 50/s in the burst; p50 < 60 ms read as the latency without queueing (paced):
        # in a burst of N created at once the median waits for about N/2 others.
        "rate_target_met": burst["signed_per_s"] >= 50,
        "unqueued_p50_target_met": paced["p50_ms"] < 60,
        "presign_rate_alone_per_s": round(presign_rate, 2),
        "ecdsa_sustained_per_s": sustained.get("after_pool_per_s"),
        "ecdsa_sustained_to_presign_ratio": (
            round(sustained["after_pool_per_s"] / presign_rate, 2)
            if "after_pool_per_s" in sustained
            else None
        ),
        "frost_sustained_per_s": frost["signed_per_s"],
        "frost_p50_ms": frost["p50_ms"],
        "machine_probe_median": {
            k: statistics.median(p[k] for p in probes) for k in ("python_ms", "gmp_ms", "wakeup_us")
        },
    }
    print(json.dumps(summary, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
