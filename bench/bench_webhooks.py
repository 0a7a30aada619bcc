"""Webhook throughput and latency on this machine.

Prints:
- outbox: events recorded per second by ``emit_event`` (one transaction per event, one
  subscribed endpoint, so one delivery row each);
- dispatch: deliveries per second by one dispatcher to a receiver on 127.0.0.1 (signing,
  HTTP POST, two short transactions per delivery), for a backlog;
- end to end: p50 / p99 from the emitting transaction's commit to the receiver's arrival,
  with a dispatcher thread polling every 10 ms and events emitted one at a time.

Run: ``.venv/bin/python bench/bench_webhooks.py [--db postgresql://...] [--events 500]``
(default: a fresh SQLite file in a temporary directory). A PostgreSQL URL must name an
empty database the script may migrate.
"""

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from shardvault.audit import Actor, AuditSigner
from shardvault.sdk import generate_key_pair
from shardvault.service import webhooks as svc
from shardvault.service.context import Principal
from shardvault.service.platform import Platform
from shardvault.service.webhook_delivery import (
    DeliverySettings,
    DestinationPolicy,
    WebhookDispatcher,
    WebhookSigner,
)
from shardvault.service.workspaces import create_workspace
from shardvault.store import Database, migrate
from shardvault.store.models import KeyAlgorithm, Role


@dataclass
class Receiver:
    url: str = ""
    received: list[float] = field(default_factory=list)


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 that answers 200 and notes when each request arrived."""
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.received.append(time.perf_counter())
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--events", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate(url)
        database = Database(url)
        try:
            run(database, args.events)
        finally:
            database.dispose()


def run(database: Database, count: int) -> None:
    platform = Platform(database, AuditSigner.generate())
    _, public_pem = generate_key_pair()
    with platform.unit_of_work() as uow:
        workspace, owner, key = create_workspace(
            uow,
            name="bench",
            owner_name="Bench",
            owner_email="bench@bench.example",
            owner_key_algorithm=KeyAlgorithm.ED25519,
            owner_public_key_pem=public_pem,
            actor=Actor.cli(),
        )
    principal = Principal(workspace.id, key.id, owner.id, Role.OWNER)
    policy = DestinationPolicy.loopback_allowed()
    signer = WebhookSigner.generate()
    print(f"database: {database.dialect}, {count} events")
    with running_receiver() as receiver:
        with platform.unit_of_work() as uow:
            svc.create_endpoint(uow, principal, url=receiver.url, policy=policy)

        def emit(i: int) -> None:
            with platform.unit_of_work() as uow:
                svc.emit_event(
                    uow,
                    workspace.id,
                    "transaction",
                    f"tx-{i % 50}",
                    svc.TRANSACTION_STATUS_CHANGED,
                    {"status": "signing", "n": i},
                )

        # Outbox: emit a backlog.
        started = time.perf_counter()
        for i in range(count):
            emit(i)
        elapsed = time.perf_counter() - started
        print(f"outbox:    {count / elapsed:8.0f} events/s ({elapsed * 1000 / count:.2f} ms each)")

        # Dispatch the backlog.
        settings = DeliverySettings(batch_size=50, poll_interval_s=0.01)
        dispatcher = WebhookDispatcher(database, signer, policy, settings)
        started = time.perf_counter()
        delivered = 0
        while delivered < count:
            delivered += dispatcher.run_once().delivered
        elapsed = time.perf_counter() - started
        print(f"dispatch:  {count / elapsed:8.0f} deliveries/s (backlog, one dispatcher)")

        # End to end, one event at a time.
        receiver.received.clear()
        dispatcher.start()
        latencies = []
        try:
            for i in range(min(count, 200)):
                before = len(receiver.received)
                emit(count + i)
                committed = time.perf_counter()
                deadline = committed + 10
                while len(receiver.received) == before and time.perf_counter() < deadline:
                    time.sleep(0.0005)
                arrived = receiver.received[-1] if len(receiver.received) > before else deadline
                latencies.append((arrived - committed) * 1000)
        finally:
            stop = threading.Thread(target=dispatcher.close)
            stop.start()
            stop.join(30)
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"end2end:   p50 {p50:6.1f} ms, p99 {p99:6.1f} ms (commit -> receiver, 10 ms poll)")


if __name__ == "__main__":
    main()
