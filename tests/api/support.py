"""Helpers shared by the API, SDK and service tests: a platform on a real database, a
bootstrapped workspace with an owner key, and a real uvicorn server on loopback."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from sqlalchemy import func, select, text

from shardvault.audit import Actor, AuditSigner
from shardvault.sdk import ApiKeyCredentials, generate_key_pair
from shardvault.sdk.auth import Algorithm
from shardvault.service.platform import Platform, PlatformSettings
from shardvault.service.workspaces import create_workspace
from shardvault.store import Database
from shardvault.store.models import AuditEvent, KeyAlgorithm

TEST_SETTINGS = PlatformSettings(checkpoint_interval=5, nonce_purge_interval_s=0.0)


def make_platform(database: Database) -> Platform:
    return Platform(database, AuditSigner.generate(), settings=TEST_SETTINGS)


@dataclass(frozen=True)
class Tenant:
    workspace_id: str
    owner_user_id: str
    owner: ApiKeyCredentials


def bootstrap(platform: Platform, name: str = "acme", algorithm: Algorithm = "EdDSA") -> Tenant:
    private_pem, public_pem = generate_key_pair(algorithm)
    with platform.unit_of_work() as uow:
        workspace, owner, key = create_workspace(
            uow,
            name=name,
            owner_name="Olivia Owner",
            owner_email=f"owner@{name}.example",
            owner_key_algorithm=KeyAlgorithm(algorithm),
            owner_public_key_pem=public_pem,
            actor=Actor.cli(),
        )
    return Tenant(workspace.id, owner.id, ApiKeyCredentials.from_pem(key.id, private_pem))


def refusals(platform: Platform, chain: str) -> list[AuditEvent]:
    """The refused requests recorded in ``chain``, oldest first."""
    with platform.unit_of_work() as uow:
        return list(
            uow.session.scalars(
                select(AuditEvent)
                .where(AuditEvent.chain == chain, AuditEvent.outcome == "refused")
                .order_by(AuditEvent.seq)
            ).all()
        )


PROBLEM_MEDIA_TYPE = "application/problem+json"


def signed_post(
    http: httpx.Client, tenant: Tenant, path: str, body: bytes, key: str
) -> httpx.Response:
    """A POST of ``body`` exactly as given, signed by ``tenant``'s owner (the SDK cannot
    send some bodies: a JSON encoder has a recursion limit)."""
    headers = {
        "X-API-Key": tenant.owner.api_key_id,
        "Authorization": f"Bearer {tenant.owner.sign_request('POST', path, body)}",
        "Content-Type": "application/json",
        "Idempotency-Key": key,
    }
    return http.post(path, content=body, headers=headers)


def count_rows(platform: Platform, *models: type) -> int:
    """How many rows the tables of ``models`` hold together."""
    with platform.unit_of_work(read_only=True) as uow:
        return sum(
            int(uow.session.scalar(select(func.count()).select_from(model)) or 0)
            for model in models
        )


def assert_problem(response: httpx.Response, status: int, problem: str) -> dict[str, Any]:
    """``response`` is a problem+json of that status and type; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:shardvault:problem:{problem}", body
    return body


class SwitchableApp:
    """An ASGI app that forwards to whichever app a test plugs in, so one long-lived
    server (started once per test session) serves every test's own app."""

    def __init__(self) -> None:
        self.target: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.target is None:
            raise RuntimeError("no app is plugged into the test server")
        await self.target(scope, receive, send)


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port) in a thread; yield its URL."""
    # Let uvicorn bind the port itself: handing it a pre-bound socket loses TCP_NODELAY
    # on accepted connections, and every response then waits ~40 ms for a delayed ACK.
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            limit_concurrency=500,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def writing_meanwhile(platform: Platform, function: Any, written: list[bool]) -> Any:
    """``function`` wrapped so that, before it runs, another thread commits a write and is
    waited for (at most 5 s); the write appends to ``written``. On SQLite it cannot
    commit while the calling thread holds the single write lock: a test that the caller
    reads on a snapshot, outside its write transaction."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        def write() -> None:
            with platform.unit_of_work() as uow:
                uow.session.execute(text("UPDATE workspaces SET name = name"))
            written.append(True)

        other = threading.Thread(target=write)
        other.start()
        other.join(timeout=5)
        return function(*args, **kwargs)

    return wrapper
