"""Concurrency through a real uvicorn server on loopback, on SQLite and PostgreSQL:
duplicate requests with one idempotency key run exactly once, and concurrent changes
never fork the audit chain."""

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from shardvault.audit import verify_chain
from shardvault.service.platform import Platform
from shardvault.store.models import AuditEvent, IdempotencyRecord, User
from tests.api.support import SwitchableApp, Tenant

CONCURRENCY = 50


class InFlight:
    """ASGI wrapper that records the most requests the server was handling at once."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.current = 0
        self.peak = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.current += 1
        self.peak = max(self.peak, self.current)
        try:
            await self.app(scope, receive, send)
        finally:
            self.current -= 1


@pytest.fixture
def in_flight(app: FastAPI, _loopback: tuple[SwitchableApp, str]) -> Iterator[InFlight]:
    switch, _ = _loopback
    counter = InFlight(app)
    switch.target = counter
    try:
        yield counter
    finally:
        switch.target = None


@pytest.fixture
def server_url(in_flight: InFlight, _loopback: tuple[SwitchableApp, str]) -> str:
    """The loopback server, serving the test's app through the in-flight counter."""
    return _loopback[1]


async def _post_many(
    server_url: str, tenant: Tenant, bodies: list[bytes], keys: list[str]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=server_url, timeout=60, limits=limits) as client:

        async def one(body: bytes, key: str) -> httpx.Response:
            token = tenant.owner.sign_request("POST", "/v1/users", body)
            return await client.post(
                "/v1/users",
                content=body,
                headers={
                    "X-API-Key": tenant.owner.api_key_id,
                    "Authorization": f"Bearer {token}",
                    "Idempotency-Key": key,
                    "Content-Type": "application/json",
                },
            )

        return await asyncio.gather(*(one(b, k) for b, k in zip(bodies, keys, strict=True)))


def _body(email: str) -> bytes:
    return json.dumps({"name": "Dup", "email": email, "role": "signer"}).encode()


def _count(platform: Platform, *where: object) -> int:
    with platform.unit_of_work() as uow:
        query = select(func.count()).select_from(User)
        return int(uow.session.scalar(query.where(*where)) or 0)  # type: ignore[arg-type]


def test_fifty_duplicates_with_one_key_create_one_user(
    server_url: str, platform: Platform, tenant: Tenant, in_flight: InFlight
) -> None:
    body = _body("dup@acme.example")
    responses = asyncio.run(
        _post_many(server_url, tenant, [body] * CONCURRENCY, ["same-key"] * CONCURRENCY)
    )
    assert [r.status_code for r in responses] == [201] * CONCURRENCY, {
        r.status_code: r.text for r in responses
    }
    assert len({r.content for r in responses}) == 1
    assert in_flight.peak > 10, "the requests did not overlap on the server"
    replayed = [r.headers["Idempotent-Replayed"] for r in responses]
    assert replayed.count("false") == 1
    assert replayed.count("true") == CONCURRENCY - 1
    assert _count(platform, User.email == "dup@acme.example") == 1
    with platform.unit_of_work() as uow:
        creations = uow.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "user.create", AuditEvent.chain == tenant.workspace_id)
        )
        records = uow.session.scalar(select(func.count()).select_from(IdempotencyRecord))
        verify_chain(uow.session, tenant.workspace_id, platform.keyring())
    # The owner's own creation at bootstrap, plus exactly one for the fifty requests.
    assert creations == 2
    assert records == 1


def test_one_key_with_different_bodies_runs_one_and_refuses_the_rest(
    server_url: str, platform: Platform, tenant: Tenant
) -> None:
    bodies = [_body(f"racer{i}@acme.example") for i in range(20)]
    responses = asyncio.run(_post_many(server_url, tenant, bodies, ["race-key"] * 20))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1
    assert statuses.count(409) == 19
    conflict = next(r for r in responses if r.status_code == 409)
    assert conflict.json()["type"].endswith(":idempotency-key-reused")
    assert _count(platform, User.email.like("racer%")) == 1


def test_fifty_concurrent_changes_keep_one_unbroken_chain(
    server_url: str, platform: Platform, tenant: Tenant
) -> None:
    bodies = [_body(f"user{i}@acme.example") for i in range(CONCURRENCY)]
    keys = [f"key-{i}" for i in range(CONCURRENCY)]
    responses = asyncio.run(_post_many(server_url, tenant, bodies, keys))
    assert {r.status_code for r in responses} == {201}
    assert _count(platform, User.email.like("user%")) == CONCURRENCY
    with platform.unit_of_work() as uow:
        report = verify_chain(uow.session, tenant.workspace_id, platform.keyring())
        seqs = uow.session.scalars(
            select(AuditEvent.seq).where(AuditEvent.chain == tenant.workspace_id)
        ).all()
    assert sorted(seqs) == list(range(1, report.last_seq + 1))
    assert report.events == 3 + CONCURRENCY
