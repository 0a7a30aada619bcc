"""Webhooks in the service layer, on SQLite and PostgreSQL, with a real HTTP receiver on
127.0.0.1: the outbox is written in the change's transaction, sequence numbers per
resource, Ed25519 signatures checked with PyNaCl (an independent verifier), at-least-once
delivery with growing retry delays, per-resource ordering, redelivery after a dispatcher
dies mid-delivery, resend, the delivery log, RBAC, tenant isolation and the SSRF guard."""

import base64
import ipaddress
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import VerifyKey
from sqlalchemy import event, func, select

from shardvault.audit import Actor
from shardvault.cli.main import cli
from shardvault.sdk import WebhookVerificationError, verify_webhook
from shardvault.service import webhooks as svc
from shardvault.service.context import Principal
from shardvault.service.errors import Conflict, Forbidden, NotFound, ValidationError
from shardvault.service.platform import Platform
from shardvault.service.webhook_delivery import (
    DeliverySettings,
    DestinationPolicy,
    WebhookDispatcher,
    WebhookKeyError,
    WebhookSigner,
    signed_message,
)
from shardvault.store import Database
from shardvault.store.models import AuditEvent, Role
from shardvault.store.models_webhooks import (
    AttemptOutcome,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEvent,
)
from tests.api.support import Tenant, bootstrap, make_platform
from tests.service.webhook_support import Clock, Receiver, running_receiver

LOOPBACK = DestinationPolicy.loopback_allowed()
SETTINGS = DeliverySettings(
    timeout_s=5.0, max_attempts=5, backoff_base_s=10.0, backoff_factor=3.0, lease_s=60.0
)


@pytest.fixture
def platform(database: Database) -> Platform:
    return make_platform(database)


@pytest.fixture
def tenant(platform: Platform) -> Tenant:
    return bootstrap(platform, "acme")


def owner_of(tenant: Tenant) -> Principal:
    return Principal(tenant.workspace_id, tenant.owner.api_key_id, tenant.owner_user_id, Role.OWNER)


def as_role(tenant: Tenant, role: Role) -> Principal:
    return Principal(tenant.workspace_id, tenant.owner.api_key_id, tenant.owner_user_id, role)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture
def signer() -> WebhookSigner:
    return WebhookSigner.generate()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def dispatcher(
    database: Database, signer: WebhookSigner, clock: Clock
) -> Iterator[WebhookDispatcher]:
    d = WebhookDispatcher(
        database, signer, LOOPBACK, SETTINGS, clock=clock, unit_random=lambda: 0.5
    )
    try:
        yield d
    finally:
        d.close()


def add_endpoint(
    platform: Platform, tenant: Tenant, url: str, types: tuple[str, ...] = ("*",)
) -> svc.EndpointView:
    with platform.unit_of_work() as uow:
        return svc.create_endpoint(
            uow, owner_of(tenant), url=url, event_types=types, policy=LOOPBACK
        )


def emit(
    platform: Platform,
    tenant: Tenant,
    resource_id: str = "tx-1",
    event_type: str = "transaction.status_changed",
    **data: object,
) -> svc.EventView:
    with platform.unit_of_work() as uow:
        return svc.emit_event(
            uow, tenant.workspace_id, "transaction", resource_id, event_type, dict(data)
        )


def drain(dispatcher: WebhookDispatcher, clock: Clock, rounds: int = 50) -> None:
    """Run the dispatcher, jumping the clock to each next due time, until nothing is left."""
    for _ in range(rounds):
        report = dispatcher.run_once()
        if report.claimed == 0:
            due = next_due(dispatcher, after=clock.now)
            if due is None:
                return
            clock.jump_to(due + 0.001)


def next_due(dispatcher: WebhookDispatcher, after: float | None = None) -> float | None:
    """The earliest time a pending delivery is due (later than ``after``, if given)."""
    database: Database = dispatcher._database
    query = select(func.min(WebhookDelivery.next_attempt_at)).where(
        WebhookDelivery.status == DeliveryStatus.PENDING
    )
    if after is not None:
        query = query.where(WebhookDelivery.next_attempt_at > datetime.fromtimestamp(after, UTC))
    with database.transaction() as session:
        due = session.scalar(query)
    return None if due is None else due.timestamp()


def jwk_key(signer: WebhookSigner, kid: str) -> VerifyKey:
    (jwk,) = [k for k in signer.jwks()["keys"] if k["kid"] == kid]
    assert jwk["kty"] == "OKP"
    assert jwk["crv"] == "Ed25519"
    return VerifyKey(base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4)))


# The outbox.


def test_event_is_written_only_if_the_change_commits(platform: Platform, tenant: Tenant) -> None:
    endpoint = add_endpoint(platform, tenant, "https://hooks.example.com/a")

    def failing_change() -> None:
        with platform.unit_of_work() as uow:
            svc.emit_event(
                uow, tenant.workspace_id, "transaction", "tx-1", "transaction.created", {}
            )
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    with platform.database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    event = emit(platform, tenant, event_type="transaction.created", amount="1")
    with platform.database.transaction() as session:
        (delivery,) = session.scalars(select(WebhookDelivery)).all()
    assert delivery.event_id == event.id
    assert delivery.endpoint_id == endpoint.id
    assert delivery.status is DeliveryStatus.PENDING
    # A rolled-back event took no sequence number.
    assert event.sequence == 1


def test_sequence_numbers_are_per_resource(platform: Platform, tenant: Tenant) -> None:
    a = [emit(platform, tenant, "tx-a", n=i) for i in range(3)]
    b = [emit(platform, tenant, "tx-b", n=i) for i in range(2)]
    assert [e.sequence for e in a] == [1, 2, 3]
    assert [e.sequence for e in b] == [1, 2]
    assert len({e.id for e in a + b}) == 5
    body = json.loads(a[2].body)
    assert body["id"] == a[2].id
    assert body["sequence"] == 3
    assert body["resource"] == {"type": "transaction", "id": "tx-a"}
    assert body["data"] == {"n": 2}
    assert body["type"] == "transaction.status_changed"


def test_several_events_of_a_resource_in_one_transaction_take_consecutive_numbers(
    platform: Platform, tenant: Tenant
) -> None:
    """A pipeline step can move a transaction through several states in one database
    transaction: its events share the locked counter row and the endpoint list; an
    endpoint created in the same transaction still gets the events emitted after it."""
    first = add_endpoint(platform, tenant, "https://a.example.com/")
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(platform.database.engine, "before_cursor_execute", count)
    try:
        with platform.unit_of_work() as uow:
            emitted = [
                svc.emit_event(uow, tenant.workspace_id, "transaction", "tx-u", "a.b", {"n": n})
                for n in range(3)
            ]
            later = svc.create_endpoint(
                uow,
                owner_of(tenant),
                url="https://b.example.com/",
                event_types=("*",),
                policy=LOOPBACK,
            )
            emitted.append(
                svc.emit_event(uow, tenant.workspace_id, "transaction", "tx-u", "a.b", {"n": 3})
            )
    finally:
        event.remove(platform.database.engine, "before_cursor_execute", count)
    assert [e.sequence for e in emitted] == [1, 2, 3, 4]
    # The counter row is read (and locked) once, the endpoints twice: once at first,
    # once after the new endpoint made the transaction forget them.
    counters = [
        s
        for s in statements
        if s.lstrip().upper().startswith("SELECT") and "webhook_resource_sequences" in s
    ]
    endpoints = [
        s
        for s in statements
        if s.lstrip().upper().startswith("SELECT")
        and "FROM webhook_endpoints" in s
        and re.search(r"enabled IS (1|true)", s, re.IGNORECASE)
    ]
    assert len(counters) == 1
    assert len(endpoints) == 2
    with platform.unit_of_work() as uow:
        targets = {
            e.id: {
                d.endpoint_id
                for d in svc.list_deliveries(uow, owner_of(tenant), event_id=e.id).items
            }
            for e in emitted
        }
    assert [targets[e.id] for e in emitted] == [{first.id}] * 3 + [{first.id, later.id}]
    assert emit(platform, tenant, "tx-u").sequence == 5  # the next transaction goes on


def test_event_filters_choose_endpoints(platform: Platform, tenant: Tenant) -> None:
    everything = add_endpoint(platform, tenant, "https://a.example.com/")
    prefix = add_endpoint(platform, tenant, "https://b.example.com/", ("transaction.*",))
    exact = add_endpoint(platform, tenant, "https://c.example.com/", ("vault.created",))
    event = emit(platform, tenant)
    with platform.unit_of_work() as uow:
        page = svc.list_deliveries(uow, owner_of(tenant), event_id=event.id)
    assert {d.endpoint_id for d in page.items} == {everything.id, prefix.id}
    assert exact.id not in {d.endpoint_id for d in page.items}
    assert svc.subscribes(["transaction.*"], "transaction.created")
    assert not svc.subscribes(["transaction.*"], "transactions.created")


@pytest.mark.parametrize(
    ("event_type", "resource_type", "payload", "field"),
    [
        ("Transaction.Created", "transaction", {}, "event_type"),
        ("created", "transaction", {}, "event_type"),
        ("transaction.created", "Transaction", {}, "resource_type"),
        ("transaction.created", "transaction", {"x": float("nan")}, "payload"),
        ("transaction.created", "transaction", {"x": object()}, "payload"),
        ("transaction.created", "transaction", {"x": "y" * 300_000}, "payload"),
    ],
)
def test_emit_event_refuses_bad_input(
    platform: Platform,
    tenant: Tenant,
    event_type: str,
    resource_type: str,
    payload: dict[str, object],
    field: str,
) -> None:
    with pytest.raises(ValidationError) as caught, platform.unit_of_work() as uow:
        svc.emit_event(uow, tenant.workspace_id, resource_type, "r-1", event_type, payload)
    assert caught.value.field == field
    with platform.database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0


# Delivery, signatures, retries.


def test_delivery_is_signed_with_the_webhook_key(
    platform: Platform,
    tenant: Tenant,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    signer: WebhookSigner,
    clock: Clock,
) -> None:
    """The signature is checked with PyNaCl against the key published in the JWKS."""
    add_endpoint(platform, tenant, receiver.url)
    event = emit(platform, tenant, status="completed")
    report = dispatcher.run_once()
    assert report.delivered == 1
    (got,) = receiver.received
    assert got.body == event.body.encode()
    assert got.headers["X-Shardvault-Event-Id"] == event.id
    assert got.headers["X-Shardvault-Key-Id"] == signer.key_id
    fields = dict(p.split("=", 1) for p in got.headers["X-Shardvault-Signature"].split(","))
    timestamp = int(fields["t"])
    assert timestamp == int(clock.now)
    key = jwk_key(signer, got.headers["X-Shardvault-Key-Id"])
    key.verify(str(timestamp).encode() + b"." + got.body, base64.b64decode(fields["v1"]))
    # The SDK helper agrees, and refuses a changed body, a stale timestamp, a wrong key id.
    verified = verify_webhook(got.body, got.headers, signer.jwks(), now=clock.now)
    assert verified["id"] == event.id
    with pytest.raises(WebhookVerificationError, match="no signature"):
        verify_webhook(
            got.body.replace(b"completed", b"cancelled"), got.headers, signer.jwks(), now=clock.now
        )
    with pytest.raises(WebhookVerificationError, match="timestamp"):
        verify_webhook(got.body, got.headers, signer.jwks(), now=clock.now + 301)
    with pytest.raises(WebhookVerificationError, match="kid"):
        verify_webhook(got.body, got.headers, WebhookSigner.generate().jwks(), now=clock.now)
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify_webhook(got.body, {}, signer.jwks(), now=clock.now)
    bad = dict(got.headers, **{"X-Shardvault-Signature": "v1=AAAA"})
    with pytest.raises(WebhookVerificationError, match="t="):
        verify_webhook(got.body, bad, signer.jwks(), now=clock.now)
    assert signed_message(5, b"{}") == b"5.{}"


def test_failing_receiver_gets_the_event_once_successfully_after_growing_delays(
    platform: Platform,
    tenant: Tenant,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    clock: Clock,
) -> None:
    add_endpoint(platform, tenant, receiver.url)
    receiver.script = [500, 503, 502]
    event = emit(platform, tenant)
    due_times = []
    for _ in range(3):
        assert dispatcher.run_once().retrying == 1
        due = next_due(dispatcher)
        assert due is not None
        due_times.append(due - clock.now)
        # Not due before its time: nothing is claimed a moment earlier.
        clock.jump_to(due - 1)
        assert dispatcher.run_once().claimed == 0
        clock.jump_to(due + 0.001)
    assert dispatcher.run_once().delivered == 1
    assert dispatcher.run_once().claimed == 0
    # Delays 10, 30, 90 s (times 1.125 for the fixed jitter), each longer than the last.
    assert due_times == pytest.approx([11.25, 33.75, 101.25], abs=1.1)
    assert due_times[0] < due_times[1] < due_times[2]
    assert [r.answered for r in receiver.received] == [500, 503, 502, 200]
    assert {r.headers["X-Shardvault-Event-Id"] for r in receiver.received} == {event.id}
    assert {r.body for r in receiver.received} == {event.body.encode()}
    assert [r.headers["X-Shardvault-Attempt"] for r in receiver.received] == ["1", "2", "3", "4"]
    assert len(receiver.successes()) == 1
    with platform.unit_of_work() as uow:
        log = svc.list_attempts(uow, owner_of(tenant), event_id=event.id).items
    assert [a.outcome for a in log] == [AttemptOutcome.FAILED] * 3 + [AttemptOutcome.DELIVERED]
    assert [a.status_code for a in log] == [500, 503, 502, 200]
    assert [a.error for a in log] == ["HTTP 500", "HTTP 503", "HTTP 502", None]
    assert all(a.latency_ms is not None and a.finished_at is not None for a in log)
    assert [a.attempt for a in log] == [1, 2, 3, 4]


def test_after_max_attempts_the_delivery_fails_and_resend_delivers_the_same_event(
    platform: Platform,
    tenant: Tenant,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    clock: Clock,
) -> None:
    endpoint = add_endpoint(platform, tenant, receiver.url)
    receiver.default = 500
    event = emit(platform, tenant)
    drain(dispatcher, clock)
    assert len(receiver.received) == SETTINGS.max_attempts
    with platform.unit_of_work() as uow:
        (delivery,) = svc.list_deliveries(uow, owner_of(tenant), event_id=event.id).items
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.attempts == SETTINGS.max_attempts
    assert delivery.last_status_code == 500
    receiver.default = 200
    with platform.unit_of_work() as uow:
        (again,) = svc.resend_event(uow, owner_of(tenant), event.id)
    assert again.id != delivery.id
    assert again.endpoint_id == endpoint.id
    drain(dispatcher, clock)
    (success,) = receiver.successes()
    assert success.headers["X-Shardvault-Event-Id"] == event.id
    assert success.body == event.body.encode()
    with platform.unit_of_work() as uow:
        statuses = {d.id: d.status for d in svc.list_deliveries(uow, owner_of(tenant)).items}
        audit = uow.session.scalars(
            select(AuditEvent.action).where(AuditEvent.resource_id == event.id)
        ).all()
    assert statuses == {delivery.id: DeliveryStatus.FAILED, again.id: DeliveryStatus.DELIVERED}
    assert audit == ["webhook_event.resend"]


def test_resend_to_a_named_endpoint_and_refusals(
    platform: Platform, tenant: Tenant, receiver: Receiver, dispatcher: WebhookDispatcher
) -> None:
    first = add_endpoint(platform, tenant, receiver.url)
    event = emit(platform, tenant)
    dispatcher.run_once()
    second = add_endpoint(platform, tenant, receiver.url + "?second")
    with platform.unit_of_work() as uow:
        (to_second,) = svc.resend_event(uow, owner_of(tenant), event.id, endpoint_id=second.id)
    with platform.unit_of_work() as uow:
        # A pending delivery is not duplicated by a second resend.
        (same,) = svc.resend_event(uow, owner_of(tenant), event.id, endpoint_id=second.id)
    assert same.id == to_second.id
    dispatcher.run_once()
    assert [r.path for r in receiver.received] == ["/hook", "/hook?second"]
    with pytest.raises(NotFound), platform.unit_of_work() as uow:
        svc.resend_event(uow, owner_of(tenant), "no-such-event")
    with pytest.raises(NotFound), platform.unit_of_work() as uow:
        svc.resend_event(uow, owner_of(tenant), event.id, endpoint_id="nope")
    with platform.unit_of_work() as uow:
        svc.update_endpoint(uow, owner_of(tenant), first.id, enabled=False, policy=LOOPBACK)
    with pytest.raises(Conflict), platform.unit_of_work() as uow:
        svc.resend_event(uow, owner_of(tenant), event.id, endpoint_id=first.id)


def test_deliveries_of_one_resource_keep_their_order(
    platform: Platform,
    tenant: Tenant,
    receiver: Receiver,
    signer: WebhookSigner,
    clock: Clock,
    database: Database,
) -> None:
    # One request at a time, so the scripted failure hits the oldest delivery.
    serial = DeliverySettings(timeout_s=5.0, concurrency=1)
    dispatcher = WebhookDispatcher(database, signer, LOOPBACK, serial, clock=clock)
    add_endpoint(platform, tenant, receiver.url)
    receiver.script = [500]  # The first event of tx-x fails once.
    xs = [emit(platform, tenant, "tx-x", step=i) for i in range(3)]
    other = emit(platform, tenant, "tx-y")
    first = dispatcher.run_once()
    # tx-x #1 failed; #2 and #3 wait behind it; tx-y is not held back by tx-x.
    assert first.claimed == 2
    assert first.retrying == 1
    assert first.delivered == 1
    drain(dispatcher, clock)
    dispatcher.close()
    ids = [r.headers["X-Shardvault-Event-Id"] for r in receiver.successes()]
    assert ids == [other.id, xs[0].id, xs[1].id, xs[2].id]
    sequences = [json.loads(r.body)["sequence"] for r in receiver.successes()[1:]]
    assert sequences == [1, 2, 3]


def test_a_dispatcher_that_dies_mid_delivery_leads_to_redelivery(
    platform: Platform,
    tenant: Tenant,
    receiver: Receiver,
    signer: WebhookSigner,
    clock: Clock,
    database: Database,
) -> None:
    """Claimed and POSTed, but the result never recorded: after the lease the delivery is
    claimed again and sent again with the same event id (at least once)."""
    add_endpoint(platform, tenant, receiver.url)
    event = emit(platform, tenant)
    crashed = WebhookDispatcher(database, signer, LOOPBACK, SETTINGS, clock=clock)
    (claim,) = crashed.claim()
    assert crashed.post(claim).delivered  # ... and the process dies here.
    crashed.close()
    survivor = WebhookDispatcher(database, signer, LOOPBACK, SETTINGS, clock=clock)
    try:
        assert survivor.run_once().claimed == 0  # The lease still runs.
        clock.advance(SETTINGS.lease_s + 1)
        assert survivor.run_once().delivered == 1
    finally:
        survivor.close()
    assert [r.headers["X-Shardvault-Event-Id"] for r in receiver.received] == [event.id] * 2
    with platform.unit_of_work() as uow:
        log = svc.list_attempts(uow, owner_of(tenant)).items
    assert [a.outcome for a in log] == [AttemptOutcome.ABANDONED, AttemptOutcome.DELIVERED]
    assert log[0].error is not None
    assert "abandoned" in log[0].error


def test_a_stale_claim_cannot_overwrite_a_newer_result(
    platform: Platform,
    tenant: Tenant,
    receiver: Receiver,
    signer: WebhookSigner,
    clock: Clock,
    database: Database,
) -> None:
    add_endpoint(platform, tenant, receiver.url)
    emit(platform, tenant)
    slow = WebhookDispatcher(database, signer, LOOPBACK, SETTINGS, clock=clock)
    fast = WebhookDispatcher(database, signer, LOOPBACK, SETTINGS, clock=clock)
    try:
        (old_claim,) = slow.claim()
        clock.advance(SETTINGS.lease_s + 1)
        assert fast.run_once().delivered == 1
        late = slow.post(old_claim)
        assert slow.record(old_claim, late) is None
    finally:
        slow.close()
        fast.close()
    with platform.unit_of_work() as uow:
        (delivery,) = svc.list_deliveries(uow, owner_of(tenant)).items
    assert delivery.status is DeliveryStatus.DELIVERED


@pytest.mark.slow
def test_a_killed_dispatcher_process_leads_to_redelivery(
    platform: Platform,
    tenant: Tenant,
    receiver: Receiver,
    signer: WebhookSigner,
    clock: Clock,
    database: Database,
    tmp_path: Path,
) -> None:
    """A real ``shardvault webhook dispatch`` process is SIGKILLed while the receiver holds
    its request; a new dispatcher delivers the event again after the lease."""
    add_endpoint(platform, tenant, receiver.url)
    event = emit(platform, tenant)
    key_path = tmp_path / "webhook.key"
    signer.save(key_path)
    receiver.hold_next = True
    url = database.url.render_as_string(hide_password=False)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shardvault.cli.main",
            "webhook",
            "dispatch",
            "--db",
            url,
            "--webhook-key",
            str(key_path),
            "--allow-network",
            "127.0.0.0/8",
            "--poll-interval",
            "0.05",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH="src"),
    )
    try:
        assert receiver.holding.wait(30), "the dispatcher never reached the receiver"
        process.kill()
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        receiver.release.set()
    survivor = WebhookDispatcher(database, signer, LOOPBACK, SETTINGS, clock=clock)
    try:
        clock.jump_to(datetime.now(UTC).timestamp() + SETTINGS.lease_s + 1)
        assert survivor.run_once().delivered == 1
    finally:
        survivor.close()
    ids = [r.headers["X-Shardvault-Event-Id"] for r in receiver.received]
    assert ids.count(event.id) >= 1
    assert set(ids) == {event.id}
    with platform.unit_of_work() as uow:
        log = svc.list_attempts(uow, owner_of(tenant)).items
    assert [a.outcome for a in log] == [AttemptOutcome.ABANDONED, AttemptOutcome.DELIVERED]


# Configuration, RBAC, isolation, audit.


def test_endpoint_lifecycle_is_audited(platform: Platform, tenant: Tenant) -> None:
    owner = owner_of(tenant)
    with platform.unit_of_work() as uow:
        endpoint = svc.create_endpoint(
            uow, owner, url="https://hooks.example.com/x?token=s3cret", policy=LOOPBACK
        )
    with platform.unit_of_work() as uow:
        svc.update_endpoint(
            uow, owner, endpoint.id, event_types=["transaction.*"], enabled=False, policy=LOOPBACK
        )
    with platform.unit_of_work() as uow:
        # No change, no audit event.
        svc.update_endpoint(uow, owner, endpoint.id, enabled=False, policy=LOOPBACK)
    with platform.unit_of_work() as uow:
        svc.delete_endpoint(uow, owner, endpoint.id)
    with platform.unit_of_work() as uow:
        rows = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.resource_id == endpoint.id).order_by(AuditEvent.seq)
        ).all()
        assert svc.list_endpoints(uow, owner).items == ()
        with pytest.raises(NotFound):
            svc.get_endpoint(uow, owner, endpoint.id)
    assert [r.action for r in rows] == [
        "webhook_endpoint.create",
        "webhook_endpoint.update",
        "webhook_endpoint.delete",
    ]
    assert all(r.actor_id == owner.api_key_id for r in rows)
    assert "s3cret" not in rows[0].details
    assert json.loads(rows[1].details)["changes"] == {
        "event_types": ["transaction.*"],
        "enabled": False,
    }


def test_deleting_an_endpoint_cancels_its_pending_deliveries(
    platform: Platform, tenant: Tenant, receiver: Receiver, dispatcher: WebhookDispatcher
) -> None:
    endpoint = add_endpoint(platform, tenant, receiver.url)
    emit(platform, tenant)
    with platform.unit_of_work() as uow:
        svc.delete_endpoint(uow, owner_of(tenant), endpoint.id)
    assert dispatcher.run_once().claimed == 0
    assert receiver.received == []
    with platform.unit_of_work() as uow:
        (delivery,) = svc.list_deliveries(uow, owner_of(tenant)).items
    assert delivery.status is DeliveryStatus.CANCELLED


def test_a_disabled_endpoint_receives_nothing(
    platform: Platform, tenant: Tenant, receiver: Receiver, dispatcher: WebhookDispatcher
) -> None:
    endpoint = add_endpoint(platform, tenant, receiver.url)
    emit(platform, tenant, "tx-1")
    with platform.unit_of_work() as uow:
        svc.update_endpoint(uow, owner_of(tenant), endpoint.id, enabled=False, policy=LOOPBACK)
    emit(platform, tenant, "tx-2")
    assert dispatcher.run_once().claimed == 0
    with platform.unit_of_work() as uow:
        svc.update_endpoint(uow, owner_of(tenant), endpoint.id, enabled=True, policy=LOOPBACK)
    # The delivery queued before it was disabled goes out now; the event emitted while it
    # was disabled never had one.
    assert dispatcher.run_once().delivered == 1
    assert len(receiver.received) == 1


@pytest.mark.parametrize("role", [Role.VIEWER, Role.SIGNER, Role.APPROVER, Role.AUDITOR])
def test_only_owners_and_admins_touch_webhooks(
    platform: Platform, tenant: Tenant, role: Role
) -> None:
    endpoint = add_endpoint(platform, tenant, "https://hooks.example.com/")
    event = emit(platform, tenant)
    who = as_role(tenant, role)
    with platform.unit_of_work() as uow:
        with pytest.raises(Forbidden):
            svc.create_endpoint(uow, who, url="https://x.example.com/", policy=LOOPBACK)
        with pytest.raises(Forbidden):
            svc.update_endpoint(uow, who, endpoint.id, enabled=False, policy=LOOPBACK)
        with pytest.raises(Forbidden):
            svc.delete_endpoint(uow, who, endpoint.id)
        with pytest.raises(Forbidden):
            svc.resend_event(uow, who, event.id)
        if role is Role.AUDITOR:
            # Auditors read the delivery log, and only read it.
            assert [e.id for e in svc.list_endpoints(uow, who).items] == [endpoint.id]
            svc.list_attempts(uow, who)
        else:
            with pytest.raises(Forbidden):
                svc.list_endpoints(uow, who)
            with pytest.raises(Forbidden):
                svc.list_attempts(uow, who)
    with platform.unit_of_work() as uow:
        admin = as_role(tenant, Role.ADMIN)
        assert svc.get_endpoint(uow, admin, endpoint.id).id == endpoint.id


def test_workspaces_are_isolated(
    platform: Platform, tenant: Tenant, receiver: Receiver, dispatcher: WebhookDispatcher
) -> None:
    other = bootstrap(platform, "globex")
    mine = add_endpoint(platform, tenant, receiver.url)
    theirs = add_endpoint(platform, other, receiver.url + "?globex")
    event = emit(platform, tenant)
    dispatcher.run_once()
    assert [r.path for r in receiver.received] == ["/hook"]
    stranger = owner_of(other)
    with platform.unit_of_work() as uow:
        with pytest.raises(NotFound):
            svc.get_endpoint(uow, stranger, mine.id)
        with pytest.raises(NotFound):
            svc.get_event(uow, stranger, event.id)
        with pytest.raises(NotFound):
            svc.resend_event(uow, stranger, event.id)
        with pytest.raises(NotFound):
            svc.update_endpoint(uow, stranger, mine.id, enabled=False, policy=LOOPBACK)
        with pytest.raises(NotFound):
            svc.resend_event(uow, owner_of(tenant), event.id, endpoint_id=theirs.id)
        assert [e.id for e in svc.list_endpoints(uow, stranger).items] == [theirs.id]
        assert svc.list_events(uow, stranger).items == ()
        assert svc.list_deliveries(uow, stranger).items == ()
        assert svc.list_attempts(uow, stranger).items == ()


def test_cursor_pagination_walks_every_event_once(platform: Platform, tenant: Tenant) -> None:
    emitted = [emit(platform, tenant, f"tx-{i}").id for i in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        with platform.unit_of_work() as uow:
            page = svc.list_events(uow, owner_of(tenant), limit=3, cursor=cursor)
        seen += [e.id for e in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == emitted
    with pytest.raises(ValidationError), platform.unit_of_work() as uow:
        svc.list_events(uow, owner_of(tenant), cursor="bm90IGEgY3Vyc29y")
    with pytest.raises(ValidationError), platform.unit_of_work() as uow:
        svc.list_events(uow, owner_of(tenant), limit=0)


def test_test_event_goes_to_one_endpoint(
    platform: Platform, tenant: Tenant, receiver: Receiver, dispatcher: WebhookDispatcher
) -> None:
    endpoint = add_endpoint(platform, tenant, receiver.url, ("vault.created",))
    add_endpoint(platform, tenant, receiver.url + "?other")
    with platform.unit_of_work() as uow:
        event, delivery = svc.send_test_event(uow, owner_of(tenant), endpoint.id)
    assert event.event_type == "webhook.test"
    assert delivery.endpoint_id == endpoint.id
    dispatcher.run_once()
    assert [r.path for r in receiver.received] == ["/hook"]


# The SSRF guard.


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://10.0.0.5/hook",
        "http://192.168.1.10/hook",
        "http://172.16.0.1/hook",
        "http://[fe80::1]/hook",
        "http://127.0.0.1:8080/hook",
        "http://2130706433/hook",
        "http://0x7f.1/hook",
        "http://localhost/hook",
        "http://0.0.0.0/hook",
        "ftp://hooks.example.com/",
        "file:///etc/passwd",
        "gopher://hooks.example.com/",
        "https://user:pass@hooks.example.com/",
        "https://hooks.example.com/#frag",
        "https:///no-host",
        "https://hooks.example.com/a b",
        "not a url",
    ],
)
def test_the_default_policy_refuses_internal_and_odd_urls(
    platform: Platform, tenant: Tenant, url: str
) -> None:
    with pytest.raises(ValidationError) as caught, platform.unit_of_work() as uow:
        svc.create_endpoint(uow, owner_of(tenant), url=url, policy=DestinationPolicy())
    assert caught.value.field == "url"
    with platform.unit_of_work() as uow:
        assert svc.list_endpoints(uow, owner_of(tenant)).items == ()


def test_allowing_loopback_does_not_allow_metadata() -> None:
    assert LOOPBACK.check_url("http://127.0.0.1:9/x") == "http://127.0.0.1:9/x"
    for url in ("http://169.254.169.254/", "http://10.1.2.3/"):
        with pytest.raises(ValidationError):
            LOOPBACK.check_url(url)
    wide = DestinationPolicy((*LOOPBACK.allowed_networks, ipaddress.ip_network("169.0.0.0/8")))
    with pytest.raises(ValidationError):
        wide.check_url("http://169.254.169.254/")
    assert DestinationPolicy().check_url("https://hooks.example.com/x") == (
        "https://hooks.example.com/x"
    )


def test_the_guard_also_checks_the_resolved_address_at_delivery(
    platform: Platform,
    tenant: Tenant,
    receiver: Receiver,
    signer: WebhookSigner,
    clock: Clock,
    database: Database,
) -> None:
    """An endpoint accepted earlier (under a laxer policy) is not contacted by a dispatcher
    whose policy refuses its resolved address: the attempt fails with the reason."""
    add_endpoint(platform, tenant, receiver.url.replace("127.0.0.1", "localhost"))
    emit(platform, tenant)
    strict = WebhookDispatcher(database, signer, DestinationPolicy(), SETTINGS, clock=clock)
    try:
        assert strict.run_once().retrying == 1
    finally:
        strict.close()
    assert receiver.received == []
    with platform.unit_of_work() as uow:
        (attempt,) = svc.list_attempts(uow, owner_of(tenant)).items
    assert attempt.outcome is AttemptOutcome.FAILED
    assert attempt.error is not None
    assert attempt.error.startswith("refused:")
    assert attempt.status_code is None


# The signing key.


def test_the_webhook_key_file(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "webhook.key"
    signer = WebhookSigner.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = WebhookSigner.load_or_create(path)
    assert again.key_id == signer.key_id
    assert bytes(again.verify_key) == bytes(signer.verify_key)
    assert "seed" not in repr(signer)
    assert path.read_text().strip() not in repr(signer)
    with pytest.raises(WebhookKeyError, match="cannot create"):
        signer.save(path)
    path.chmod(0o640)
    with pytest.raises(WebhookKeyError, match="group or others"):
        WebhookSigner.load(path)
    bad = tmp_path / "bad.key"
    bad.write_text("zz\n")
    bad.chmod(0o600)
    with pytest.raises(WebhookKeyError, match="hex"):
        WebhookSigner.load(bad)
    bad.write_text("00" * 31)
    with pytest.raises(WebhookKeyError, match="32-byte"):
        WebhookSigner.load(bad)
    with pytest.raises(WebhookKeyError, match="cannot read"):
        WebhookSigner.load(tmp_path / "missing.key")
    (jwk,) = signer.jwks()["keys"]
    assert jwk["kid"] == signer.key_id
    assert jwk["alg"] == "EdDSA"
    assert jwk["use"] == "sig"


# Concurrency.


def test_concurrent_emitters_get_gap_free_sequence_numbers(
    platform: Platform, tenant: Tenant
) -> None:
    add_endpoint(platform, tenant, "https://hooks.example.com/")

    def emit_five() -> list[int]:
        return [emit(platform, tenant, "tx-hot").sequence for _ in range(5)]

    with ThreadPoolExecutor(8) as pool:
        sequences = [n for batch in pool.map(lambda _: emit_five(), range(8)) for n in batch]
    assert sorted(sequences) == list(range(1, 41))


def test_concurrent_dispatchers_deliver_each_event_once(
    platform: Platform,
    tenant: Tenant,
    receiver: Receiver,
    signer: WebhookSigner,
    clock: Clock,
    database: Database,
) -> None:
    """Three dispatchers race for one backlog (SKIP LOCKED on PostgreSQL): every event is
    delivered exactly once when nothing fails, and each resource's events in order."""
    add_endpoint(platform, tenant, receiver.url)
    events = [emit(platform, tenant, f"tx-{i % 6}", i=i) for i in range(36)]
    dispatchers = [
        WebhookDispatcher(database, signer, LOOPBACK, SETTINGS, clock=clock) for _ in range(3)
    ]

    def work(d: WebhookDispatcher) -> int:
        idle = 0
        delivered = 0
        while idle < 3:
            report = d.run_once()
            delivered += report.delivered
            idle = idle + 1 if report.claimed == 0 else 0
        return delivered

    try:
        with ThreadPoolExecutor(3) as pool:
            counts = list(pool.map(work, dispatchers))
    finally:
        for d in dispatchers:
            d.close()
    assert sum(counts) == 36
    ids = [r.headers["X-Shardvault-Event-Id"] for r in receiver.received]
    assert sorted(ids) == sorted(e.id for e in events)
    for resource in {f"tx-{i}" for i in range(6)}:
        seen = [
            json.loads(r.body)["sequence"]
            for r in receiver.received
            if json.loads(r.body)["resource"]["id"] == resource
        ]
        assert seen == [1, 2, 3, 4, 5, 6]


# Properties.

_INTERNAL = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
             "100.64.0.0/10", "0.0.0.0/8"]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    address=st.one_of(
        *[st.ip_addresses(v=4, network=n) for n in _INTERNAL],
        st.ip_addresses(v=6, network="fc00::/7"),
        st.ip_addresses(v=6, network="fe80::/10"),
    ),
    mapped=st.booleans(),
)
def test_no_internal_address_passes_the_default_policy(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, mapped: bool
) -> None:
    host = str(address)
    if mapped and address.version == 4:
        host = f"::ffff:{address}"
    if ":" in host:
        host = f"[{host}]"
    with pytest.raises(ValidationError):
        DestinationPolicy().check_url(f"https://{host}:8443/hook")


@settings(max_examples=100, deadline=None)
@given(
    data=st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=20), max_size=5),
    flip=st.integers(min_value=0),
)
def test_any_changed_byte_breaks_the_signature(data: dict[str, object], flip: int) -> None:
    signer = _PROPERTY_SIGNER
    body = json.dumps({"id": "e", "data": data}).encode()
    headers = {
        "X-Shardvault-Signature": signer.sign(1_800_000_000, body),
        "X-Shardvault-Key-Id": signer.key_id,
    }
    assert verify_webhook(body, headers, signer.jwks(), now=1_800_000_000)["data"] == data
    index = flip % len(body)
    changed = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
    with pytest.raises(WebhookVerificationError):
        verify_webhook(changed, headers, signer.jwks(), now=1_800_000_000)


_PROPERTY_SIGNER = WebhookSigner.generate()


@settings(max_examples=200, deadline=None)
@given(
    signature=st.one_of(
        st.text(max_size=120),
        st.builds(
            "t={},v1={}".format,
            st.integers(1_799_999_000, 1_800_001_000),
            st.binary(min_size=64, max_size=64).map(lambda b: base64.b64encode(b).decode()),
        ),
    ),
    key_id=st.one_of(st.text(max_size=40), st.just(_PROPERTY_SIGNER.key_id), st.just("k")),
    body=st.binary(max_size=200),
    jwks=st.one_of(
        st.just(_PROPERTY_SIGNER.jwks()),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
        st.just({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "!!", "kid": "k"}]}),
    ),
)
def test_verify_webhook_only_ever_raises_its_own_error(
    signature: str, key_id: str, body: bytes, jwks: dict[str, object]
) -> None:
    """Untrusted headers, bodies and key sets: a typed refusal, never another exception."""
    headers = {"X-Shardvault-Signature": signature, "X-Shardvault-Key-Id": key_id}
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, headers, jwks, now=1_800_000_000)


def test_timeouts_and_refused_connections_are_logged_and_retried(
    platform: Platform,
    tenant: Tenant,
    receiver: Receiver,
    signer: WebhookSigner,
    clock: Clock,
    database: Database,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    add_endpoint(platform, tenant, f"http://127.0.0.1:{closed_port}/nobody-home")
    slow = add_endpoint(platform, tenant, receiver.url, ("transaction.created",))
    emit(platform, tenant, "tx-1")
    emit(platform, tenant, "tx-2", event_type="transaction.created")
    receiver.hold_next = True
    quick = DeliverySettings(timeout_s=0.5, lease_s=5.0)
    dispatcher = WebhookDispatcher(database, signer, LOOPBACK, quick, clock=clock)
    try:
        report = dispatcher.run_once()
    finally:
        receiver.release.set()
        dispatcher.close()
    assert (report.claimed, report.retrying) == (3, 3)
    with platform.unit_of_work() as uow:
        log = svc.list_attempts(uow, owner_of(tenant)).items
    errors = sorted(a.error or "" for a in log)
    # The closed port gets both events (its filter is '*'); the held receiver one.
    assert errors[0].startswith("connection error")
    assert errors[1].startswith("connection error")
    assert errors[2] == "timed out"
    assert all(a.status_code is None for a in log)
    assert {a.endpoint_id for a in log if a.error == "timed out"} == {slow.id}


def test_a_slow_endpoint_does_not_hold_up_the_others(
    platform: Platform, tenant: Tenant, signer: WebhookSigner, clock: Clock, database: Database
) -> None:
    """The worker loop refills free slots while a request hangs on a slow endpoint."""
    with running_receiver() as slow, running_receiver() as fast:
        add_endpoint(platform, tenant, slow.url, ("vault.*",))
        add_endpoint(platform, tenant, fast.url, ("transaction.*",))
        slow.hold_next = True
        emit(platform, tenant, "vault-1", event_type="vault.created")
        settings = DeliverySettings(timeout_s=20.0, lease_s=60.0, poll_interval_s=0.01)
        dispatcher = WebhookDispatcher(database, signer, LOOPBACK, settings, clock=clock)
        dispatcher.start()
        try:
            assert slow.holding.wait(10)
            for i in range(5):
                emit(platform, tenant, f"tx-{i}")
            deadline = time.monotonic() + 10
            while len(fast.received) < 5 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(fast.received) == 5
            assert slow.received == []  # Still held.
        finally:
            slow.release.set()
            dispatcher.close()
        assert len(slow.successes()) == 1


def test_resend_failed_sends_each_undelivered_event_again_in_order(
    platform: Platform,
    tenant: Tenant,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    clock: Clock,
) -> None:
    endpoint = add_endpoint(platform, tenant, receiver.url)
    paused = add_endpoint(platform, tenant, receiver.url + "?paused")
    receiver.default = 500
    a = [emit(platform, tenant, "tx-a", i=i) for i in range(3)]
    b = emit(platform, tenant, "tx-b")
    drain(dispatcher, clock)
    with platform.unit_of_work() as uow:
        assert {d.status for d in svc.list_deliveries(uow, owner_of(tenant)).items} == {
            DeliveryStatus.FAILED
        }
        svc.update_endpoint(uow, owner_of(tenant), paused.id, enabled=False, policy=LOOPBACK)
    receiver.default = 200
    receiver.received.clear()
    with platform.unit_of_work() as uow:
        again = svc.resend_failed(uow, owner_of(tenant), resource_id="tx-a")
    # The disabled endpoint gets nothing; tx-b was not asked for.
    assert [(d.event_id, d.endpoint_id) for d in again] == [(e.id, endpoint.id) for e in a]
    drain(dispatcher, clock)
    assert [json.loads(r.body)["sequence"] for r in receiver.successes()] == [1, 2, 3]
    with platform.unit_of_work() as uow:
        rest = svc.resend_failed(uow, owner_of(tenant), endpoint_id=endpoint.id)
    assert [d.event_id for d in rest] == [b.id]
    drain(dispatcher, clock)
    with platform.unit_of_work() as uow:
        assert svc.resend_failed(uow, owner_of(tenant), endpoint_id=endpoint.id) == ()
        with pytest.raises(NotFound):
            svc.resend_failed(uow, owner_of(tenant), endpoint_id="nope")
        with pytest.raises(Forbidden):
            svc.resend_failed(uow, as_role(tenant, Role.VIEWER))
        audit = uow.session.scalars(
            select(AuditEvent.action).where(AuditEvent.action == "webhook_event.resend_failed")
        ).all()
    assert len(audit) == 3
    assert len(receiver.successes()) == 4


def test_purge_removes_old_finished_history_only(
    platform: Platform,
    tenant: Tenant,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    database: Database,
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    add_endpoint(platform, tenant, receiver.url, ("transaction.*",))
    add_endpoint(platform, tenant, f"http://127.0.0.1:{closed_port}/", ("vault.*",))
    done = emit(platform, tenant, "tx-1")
    waiting = emit(platform, tenant, "vault-1", event_type="vault.created")
    unheard = emit(platform, tenant, "wallet-1", event_type="wallet.created")
    dispatcher.run_once()
    later = datetime.now(UTC).timestamp() + 3600
    with platform.unit_of_work() as uow:
        report = svc.purge_history(
            uow, before=datetime.fromtimestamp(later, UTC), actor=Actor.cli()
        )
    assert report == svc.PurgeReport(events=2, deliveries=1, attempts=1)
    with platform.unit_of_work() as uow:
        left = [e.id for e in svc.list_events(uow, owner_of(tenant)).items]
        assert left == [waiting.id]
        assert svc.list_attempts(uow, owner_of(tenant), event_id=done.id).items == ()
        with pytest.raises(NotFound):
            svc.get_event(uow, owner_of(tenant), unheard.id)
        (audit,) = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "webhook.purge")
        ).all()
    assert audit.workspace_id is None
    assert json.loads(audit.details)["events"] == 2
    # Sequence numbers keep counting after a purge.
    assert emit(platform, tenant, "tx-1").sequence == 2
    # The command line purges too (nothing older than a day here).
    url = database.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        cli,
        ["webhook", "purge", "--older-than-days", "1", "--db", url,
         "--data-dir", str(tmp_path / "data"), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"events": 0, "deliveries": 0, "attempts": 0}
    with platform.unit_of_work() as uow:
        assert len(svc.list_events(uow, owner_of(tenant)).items) == 2
