"""Webhooks through the REST API and the SDK over a real loopback server, on SQLite and
PostgreSQL: endpoints CRUD with idempotency, the unauthenticated JWKS whose key verifies
real deliveries (PyNaCl), resend, the delivery log with cursor pagination, RBAC (a viewer
cannot create endpoints), tenant isolation and the SSRF guard."""

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI
from nacl.signing import VerifyKey
from sqlalchemy import select

from shardvault.api import create_app
from shardvault.cli.main import cli
from shardvault.sdk import (
    ApiError,
    ApiKeyCredentials,
    ShardvaultClient,
    generate_key_pair,
    verify_webhook,
    write_private_key,
)
from shardvault.service import webhooks as svc
from shardvault.service.platform import Platform
from shardvault.service.webhook_delivery import (
    DeliverySettings,
    DestinationPolicy,
    WebhookDispatcher,
    WebhookRuntime,
    WebhookSigner,
)
from shardvault.store.models import AuditEvent
from shardvault.store.models_webhooks import WebhookEndpoint
from tests.api.support import Tenant
from tests.service.webhook_support import Clock, Receiver, running_receiver

LOOPBACK = DestinationPolicy.loopback_allowed()


@pytest.fixture
def signer() -> WebhookSigner:
    return WebhookSigner.generate()


@pytest.fixture
def app(platform: Platform, signer: WebhookSigner) -> FastAPI:
    """The API with a webhook key and loopback receivers allowed (the test/dev setting)."""
    return create_app(platform, webhook_runtime=WebhookRuntime(signer, LOOPBACK))


@pytest.fixture
def owner(server_url: str, tenant: Tenant) -> Iterator[ShardvaultClient]:
    with ShardvaultClient(server_url, tenant.owner, max_attempts=1) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def dispatcher(
    platform: Platform, signer: WebhookSigner, clock: Clock
) -> Iterator[WebhookDispatcher]:
    settings = DeliverySettings(timeout_s=5.0, max_attempts=5)
    d = WebhookDispatcher(
        platform.database, signer, LOOPBACK, settings, clock=clock, unit_random=lambda: 0.0
    )
    try:
        yield d
    finally:
        d.close()


def client_with_role(server_url: str, owner: ShardvaultClient, role: str) -> ShardvaultClient:
    user = owner.create_user(name=f"{role} user", email=f"{role}@acme.example", role=role)  # type: ignore[arg-type]
    private_pem, public_pem = generate_key_pair()
    key = owner.create_api_key(user_id=user.id, name=f"{role} key", public_key_pem=public_pem)
    return ShardvaultClient(
        server_url, ApiKeyCredentials.from_pem(key.id, private_pem), max_attempts=1
    )


def emit(platform: Platform, tenant: Tenant, resource_id: str = "tx-1", **data: object) -> str:
    """What the transaction service does when a transaction changes state."""
    with platform.unit_of_work() as uow:
        event = svc.emit_event(
            uow,
            tenant.workspace_id,
            "transaction",
            resource_id,
            svc.TRANSACTION_STATUS_CHANGED,
            dict(data),
        )
    return event.id


def run_until_idle(dispatcher: WebhookDispatcher, clock: Clock) -> None:
    for _ in range(20):
        if dispatcher.run_once().claimed == 0:
            clock.advance(3600)
            if dispatcher.run_once().claimed == 0:
                return


def test_delivery_verifies_with_the_key_served_at_the_jwks_endpoint(
    server_url: str,
    owner: ShardvaultClient,
    platform: Platform,
    tenant: Tenant,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    clock: Clock,
) -> None:
    endpoint = owner.create_webhook_endpoint(url=receiver.url, event_types=["transaction.*"])
    assert (endpoint.enabled, endpoint.event_types) == (True, ["transaction.*"])
    event_id = emit(platform, tenant, status="completed", tx_hash="0xabc")
    assert dispatcher.run_once().delivered == 1
    (got,) = receiver.received

    # The key set is public: fetched with no credentials at all.
    response = httpx.get(f"{server_url}/v1/webhooks/jwks")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jwk-set+json")
    jwks = response.json()
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == got.headers["X-Shardvault-Key-Id"]]
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "EdDSA")
    public = VerifyKey(base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4)))
    fields = dict(p.split("=", 1) for p in got.headers["X-Shardvault-Signature"].split(","))
    public.verify(fields["t"].encode() + b"." + got.body, base64.b64decode(fields["v1"]))
    assert owner.get_webhook_jwks().keys[0].kid == jwk["kid"]

    event = verify_webhook(got.body, got.headers, jwks, now=clock.now)
    assert event["id"] == event_id
    assert event["data"] == {"status": "completed", "tx_hash": "0xabc"}
    listed = owner.list_webhook_events().data
    assert [(e.id, e.sequence, e.type) for e in listed] == [
        (event_id, 1, "transaction.status_changed")
    ]
    assert owner.get_webhook_event(event_id).data == {"status": "completed", "tx_hash": "0xabc"}
    (delivery,) = owner.list_webhook_deliveries(event_id=event_id).data
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.endpoint_id == endpoint.id


def test_resend_and_the_delivery_log(
    owner: ShardvaultClient,
    platform: Platform,
    tenant: Tenant,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    clock: Clock,
) -> None:
    endpoint = owner.create_webhook_endpoint(url=receiver.url)
    receiver.script = [500, 404]
    event_id = emit(platform, tenant)
    run_until_idle(dispatcher, clock)
    (resent,) = owner.resend_webhook_event(event_id)
    assert (resent.status, resent.endpoint_id, resent.attempts) == ("pending", endpoint.id, 0)
    run_until_idle(dispatcher, clock)
    assert [r.answered for r in receiver.received] == [500, 404, 200, 200]
    assert {r.headers["X-Shardvault-Event-Id"] for r in receiver.received} == {event_id}

    # The whole log, one attempt per page.
    attempts = []
    cursor = None
    while True:
        page = owner.list_webhook_attempts(limit=1, cursor=cursor, event_id=event_id)
        attempts += page.data
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [(a.outcome, a.status_code) for a in attempts] == [
        ("failed", 500),
        ("failed", 404),
        ("delivered", 200),
        ("delivered", 200),
    ]
    assert [a.error for a in attempts] == ["HTTP 500", "HTTP 404", None, None]
    assert all(a.latency_ms is not None and a.latency_ms >= 0 for a in attempts)
    assert attempts[3].delivery_id == resent.id
    assert len({a.id for a in attempts}) == 4
    assert list(owner.iter_webhook_attempts(page_size=3)) == attempts
    with pytest.raises(ApiError) as caught:
        owner.list_webhook_attempts(cursor="garbage!")
    assert (caught.value.status, caught.value.slug) == (400, "invalid-request")


def test_endpoint_update_delete_and_idempotency(
    owner: ShardvaultClient, platform: Platform, receiver: Receiver
) -> None:
    first = owner.create_webhook_endpoint(url=receiver.url, idempotency_key="create-hook-1")
    again = owner.create_webhook_endpoint(url=receiver.url, idempotency_key="create-hook-1")
    assert again == first
    with pytest.raises(ApiError) as caught:
        owner.create_webhook_endpoint(url=receiver.url + "?x", idempotency_key="create-hook-1")
    assert (caught.value.status, caught.value.slug) == (409, "idempotency-key-reused")
    assert [e.id for e in owner.list_webhook_endpoints().data] == [first.id]

    updated = owner.update_webhook_endpoint(
        first.id, enabled=False, event_types=["vault.*", "transaction.created"]
    )
    assert (updated.enabled, updated.event_types) == (False, ["vault.*", "transaction.created"])
    assert owner.get_webhook_endpoint(first.id) == updated
    with pytest.raises(ApiError) as caught:
        owner.update_webhook_endpoint(first.id, event_types=["NOT A TYPE"])
    assert caught.value.status == 400
    deleted = owner.delete_webhook_endpoint(first.id)
    assert deleted.id == first.id
    with pytest.raises(ApiError) as caught:
        owner.get_webhook_endpoint(first.id)
    assert caught.value.status == 404
    with platform.unit_of_work() as uow:
        actions = uow.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.resource_id == first.id)
            .order_by(AuditEvent.seq)
        ).all()
    assert actions == [
        "webhook_endpoint.create",
        "webhook_endpoint.update",
        "webhook_endpoint.delete",
    ]
    assert owner.verify_audit().valid


def test_a_viewer_cannot_create_endpoints(
    server_url: str, owner: ShardvaultClient, platform: Platform, tenant: Tenant
) -> None:
    with client_with_role(server_url, owner, "viewer") as viewer:
        with pytest.raises(ApiError) as caught:
            viewer.create_webhook_endpoint(url="https://hooks.example.com/")
        assert (caught.value.status, caught.value.slug) == (403, "forbidden")
        with pytest.raises(ApiError) as caught:
            viewer.list_webhook_endpoints()
        assert caught.value.status == 403
    with platform.unit_of_work() as uow:
        assert uow.session.scalars(select(WebhookEndpoint)).all() == []
        refusals = uow.session.scalars(
            select(AuditEvent).where(
                AuditEvent.workspace_id == tenant.workspace_id,
                AuditEvent.action == "request.refused",
            )
        ).all()
    assert any('"path":"/v1/webhooks/endpoints"' in r.details for r in refusals)


def test_another_workspace_sees_nothing(
    server_url: str,
    owner: ShardvaultClient,
    other_tenant: Tenant,
    platform: Platform,
    tenant: Tenant,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
) -> None:
    endpoint = owner.create_webhook_endpoint(url=receiver.url)
    event_id = emit(platform, tenant)
    dispatcher.run_once()
    with ShardvaultClient(server_url, other_tenant.owner, max_attempts=1) as stranger:
        for call in (
            lambda: stranger.get_webhook_endpoint(endpoint.id),
            lambda: stranger.get_webhook_event(event_id),
            lambda: stranger.resend_webhook_event(event_id),
            lambda: stranger.update_webhook_endpoint(endpoint.id, enabled=False),
            lambda: stranger.delete_webhook_endpoint(endpoint.id),
        ):
            with pytest.raises(ApiError) as caught:
                call()
            assert caught.value.status == 404
        assert stranger.list_webhook_endpoints().data == []
        assert stranger.list_webhook_events().data == []
        assert stranger.list_webhook_deliveries().data == []
        assert stranger.list_webhook_attempts().data == []
    assert owner.get_webhook_endpoint(endpoint.id).enabled


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://10.0.0.1/hook",
        "gopher://127.0.0.1/",
    ],
)
def test_the_api_refuses_internal_destinations(owner: ShardvaultClient, url: str) -> None:
    with pytest.raises(ApiError) as caught:
        owner.create_webhook_endpoint(url=url)
    assert (caught.value.status, caught.value.slug) == (400, "invalid-request")
    assert "url" in caught.value.detail
    assert owner.list_webhook_endpoints().data == []


def test_test_event_through_the_api(
    owner: ShardvaultClient, receiver: Receiver, dispatcher: WebhookDispatcher
) -> None:
    endpoint = owner.create_webhook_endpoint(url=receiver.url, event_types=["vault.created"])
    result = owner.send_webhook_test(endpoint.id)
    assert (result.event.type, result.delivery.endpoint_id) == ("webhook.test", endpoint.id)
    assert dispatcher.run_once().delivered == 1
    assert receiver.received[0].headers["X-Shardvault-Event-Type"] == "webhook.test"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/webhooks/endpoints"),
        ("POST", "/v1/webhooks/endpoints"),
        ("GET", "/v1/webhooks/endpoints/x"),
        ("PATCH", "/v1/webhooks/endpoints/x"),
        ("DELETE", "/v1/webhooks/endpoints/x"),
        ("POST", "/v1/webhooks/endpoints/x/test"),
        ("GET", "/v1/webhooks/events"),
        ("GET", "/v1/webhooks/events/x"),
        ("POST", "/v1/webhooks/events/x/resend"),
        ("GET", "/v1/webhooks/deliveries"),
        ("GET", "/v1/webhooks/attempts"),
        ("POST", "/v1/webhooks/resend-failed"),
    ],
)
def test_every_webhook_route_but_the_jwks_needs_credentials(
    http: httpx.Client, method: str, path: str
) -> None:
    response = http.request(method, path, json={} if method != "GET" else None)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_the_webhook_commands(
    server_url: str,
    owner: ShardvaultClient,
    platform: Platform,
    tenant: Tenant,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    tmp_path: Path,
) -> None:
    """``shardvault webhook ...`` against the live server, through the SDK."""
    private_pem, public_pem = generate_key_pair()
    key = owner.create_api_key(
        user_id=tenant.owner_user_id, name="cli key", public_key_pem=public_pem
    )
    write_private_key(tmp_path / "cli.pem", private_pem)
    env = {
        "SHARDVAULT_URL": server_url,
        "SHARDVAULT_API_KEY": key.id,
        "SHARDVAULT_KEY_FILE": str(tmp_path / "cli.pem"),
    }
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(cli, ["webhook", *args], env=env)

    created = run("create", "--endpoint-url", receiver.url, "--event-type", "transaction.*",
                  "--json")  # fmt: skip
    assert created.exit_code == 0, created.output
    endpoint_id = json.loads(created.stdout)["id"]
    listed = json.loads(run("list", "--json").stdout)
    assert [e["id"] for e in listed["data"]] == [endpoint_id]
    event_id = emit(platform, tenant, status="completed")
    assert dispatcher.run_once().delivered == 1
    events = json.loads(run("events", "--json").stdout)
    assert [e["id"] for e in events["data"]] == [event_id]
    log = json.loads(run("log", "--event", event_id, "--json").stdout)
    assert [(a["outcome"], a["status_code"]) for a in log["data"]] == [("delivered", 200)]
    resent = json.loads(run("resend", event_id, "--json").stdout)
    assert [d["endpoint_id"] for d in resent["data"]] == [endpoint_id]

    jwks = run("jwks")
    assert jwks.exit_code == 0, jwks.output
    (tmp_path / "jwks.json").write_text(jwks.stdout)
    (got,) = receiver.received
    (tmp_path / "body.json").write_bytes(got.body)
    verify_args = [
        "verify",
        "--body-file", str(tmp_path / "body.json"),
        "--signature", got.headers["X-Shardvault-Signature"],
        "--key-id", got.headers["X-Shardvault-Key-Id"],
        "--jwks-file", str(tmp_path / "jwks.json"),
        "--tolerance", "3600",
        "--json",
    ]  # fmt: skip
    verified = run(*verify_args)
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout) == {
        "valid": True,
        "event_id": event_id,
        "type": "transaction.status_changed",
    }
    (tmp_path / "body.json").write_bytes(got.body.replace(b"completed", b"cancelled"))
    forged = run(*verify_args)
    assert forged.exit_code == 1
    assert "no signature verifies" in forged.stderr

    disabled = json.loads(run("update", endpoint_id, "--disable", "--json").stdout)
    assert disabled["enabled"] is False
    assert run("delete", endpoint_id, "--json").exit_code == 0
    refused = run("create", "--endpoint-url", "http://169.254.169.254/", "--json")
    assert refused.exit_code == 1
    assert "not an allowed destination" in refused.stderr


def test_resend_failed_through_the_api(
    owner: ShardvaultClient,
    platform: Platform,
    tenant: Tenant,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    clock: Clock,
) -> None:
    endpoint = owner.create_webhook_endpoint(url=receiver.url)
    receiver.default = 503
    event_id = emit(platform, tenant)
    run_until_idle(dispatcher, clock)
    assert [d.status for d in owner.list_webhook_deliveries().data] == ["failed"]
    receiver.default = 200
    (again,) = owner.resend_failed_webhooks(endpoint_id=endpoint.id)
    assert (again.event_id, again.status) == (event_id, "pending")
    assert dispatcher.run_once().delivered == 1
    assert owner.resend_failed_webhooks() == []
