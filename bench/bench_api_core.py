"""Latency and throughput of the platform core through a real uvicorn server on loopback.

For SQLite (a temporary file) and PostgreSQL (a temporary database on 127.0.0.1:5432):
sequential signed reads (GET /v1/workspace) and writes (POST /v1/users: authentication,
nonce, idempotency record, user row and audit event in one transaction), then writes from
20 concurrent clients, and how fast the workspace's audit chain verifies.
Run: ``.venv/bin/python bench/bench_api_core.py``.
"""

import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import uvicorn
from psycopg import sql

from shardvault.api import create_app
from shardvault.audit import Actor, AuditSigner, verify_chain
from shardvault.sdk import ApiKeyCredentials, generate_key_pair
from shardvault.service.platform import Platform
from shardvault.service.workspaces import create_workspace
from shardvault.store import Database, migrate
from shardvault.store.models import KeyAlgorithm

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SEQUENTIAL = 300
CONCURRENT_CLIENTS = 20
CONCURRENT_REQUESTS = 600


@contextmanager
def serve(platform: Platform) -> Iterator[str]:
    config = uvicorn.Config(
        create_app(platform), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()


def _headers(
    creds: ApiKeyCredentials, method: str, uri: str, body: bytes, key: str | None
) -> dict[str, str]:
    headers = {
        "X-API-Key": creds.api_key_id,
        "Authorization": "Bearer " + creds.sign_request(method, uri, body),
    }
    if key:
        headers |= {"Idempotency-Key": key, "Content-Type": "application/json"}
    return headers


def _user(index: str) -> bytes:
    return json.dumps({"name": "b", "email": f"{index}@bench.example", "role": "viewer"}).encode()


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    return f"p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  ({len(ordered) / sum(ordered):7.1f} req/s)"


async def _concurrent(url: str, creds: ApiKeyCredentials) -> float:
    queue = list(range(CONCURRENT_REQUESTS))
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def worker() -> None:
            while queue:
                index = f"c{queue.pop()}"
                body = _user(index)
                response = await client.post(
                    "/v1/users",
                    content=body,
                    headers=_headers(creds, "POST", "/v1/users", body, index),
                )
                response.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENT_CLIENTS)))
        return CONCURRENT_REQUESTS / (time.perf_counter() - start)


def bench(label: str, url: str) -> None:
    migrate(url)
    database = Database(url)
    platform = Platform(database, AuditSigner.generate())
    private_pem, public_pem = generate_key_pair()
    with platform.unit_of_work() as uow:
        _, _, key = create_workspace(
            uow,
            name="bench",
            owner_name="Bench",
            owner_email="bench@bench.example",
            owner_key_algorithm=KeyAlgorithm.ED25519,
            owner_public_key_pem=public_pem,
            actor=Actor.cli(),
        )
    creds = ApiKeyCredentials.from_pem(key.id, private_pem)
    with serve(platform) as base, httpx.Client(base_url=base) as client:
        reads, writes = [], []
        for index in range(SEQUENTIAL):
            start = time.perf_counter()
            client.get("/v1/workspace", headers=_headers(creds, "GET", "/v1/workspace", b"", None))
            reads.append(time.perf_counter() - start)
            body = _user(f"s{index}")
            start = time.perf_counter()
            response = client.post(
                "/v1/users",
                content=body,
                headers=_headers(creds, "POST", "/v1/users", body, f"s{index}"),
            )
            writes.append(time.perf_counter() - start)
            response.raise_for_status()
        rate = asyncio.run(_concurrent(base, creds))
    with platform.unit_of_work() as uow:
        start = time.perf_counter()
        report = verify_chain(uow.session, key.workspace_id, platform.keyring())
        verify_rate = report.events / (time.perf_counter() - start)
    database.dispose()
    print(f"{label:10s} GET  /v1/workspace sequential  {_percentiles(reads)}")
    print(f"{label:10s} POST /v1/users     sequential  {_percentiles(writes)}")
    print(f"{label:10s} POST /v1/users     {CONCURRENT_CLIENTS} clients  {rate:7.1f} req/s")
    print(f"{label:10s} audit verify       {report.events} events  {verify_rate:9.0f} events/s")


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        bench("sqlite", f"sqlite:///{Path(scratch) / 'bench.db'}")
    name = f"sv_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        bench("postgresql", f"postgresql://postgres@127.0.0.1:5432/{name}")
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            statement = sql.SQL("DROP DATABASE {} WITH (FORCE)")
            conn.execute(statement.format(sql.Identifier(name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
