"""``shardvault webhook ...``: endpoints, events, resend and the delivery log through the
API; ``webhook dispatch`` runs a delivery worker on the database directly; ``webhook
verify`` checks a captured delivery offline.

``shardvault server`` also runs a dispatcher in-process (see :func:`server_options`); extra
``webhook dispatch`` processes may run beside it (they share the work through the
database). The webhook signing key is a 0600 file (``--webhook-key``, default
``DATA_DIR/webhook-signing.key``), separate from the audit key.
"""

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from shardvault.cli._output import emit_json, fail, fail_on
from shardvault.cli._webhook_options import key_option, networks_option, open_runtime
from shardvault.cli.server import local_config, local_options
from shardvault.cli.workspace import api_options, sdk_client
from shardvault.errors import ShardvaultError


@click.group(name="webhook")
def group() -> None:
    """Webhook endpoints, events, resends and the delivery log."""


def _print(obj: dict[str, object], as_json: bool, line: str) -> None:
    if as_json:
        emit_json(obj)
    else:
        click.echo(line)


def _run_sdk(
    url: str, api_key: str | None, key_file: Path | None, call: Callable[[Any], object]
) -> Any:
    client = sdk_client(url, api_key, key_file)
    try:
        with client:
            return call(client)
    except ShardvaultError as exc:
        fail_on(exc)


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


@group.command(name="create")
@click.option("--endpoint-url", "endpoint_url", required=True, help="Where to POST events.")
@click.option(
    "--event-type",
    "event_types",
    multiple=True,
    help="An event type, 'prefix.*' or '*' (repeatable; default '*').",
)
@click.option("--description", default="")
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@json_option
@api_options
def create(
    endpoint_url: str,
    event_types: tuple[str, ...],
    description: str,
    disabled: bool,
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """Add a webhook endpoint (owners and admins)."""
    endpoint = _run_sdk(
        url,
        api_key,
        key_file,
        lambda c: c.create_webhook_endpoint(
            url=endpoint_url,
            event_types=list(event_types) or None,
            description=description,
            enabled=not disabled,
        ),
    )
    _print(endpoint.model_dump(mode="json"), as_json, f"endpoint {endpoint.id} -> {endpoint.url}")


@group.command(name="list")
@click.option("--limit", default=50, type=click.IntRange(1, 200))
@click.option("--cursor")
@json_option
@api_options
def list_endpoints(
    limit: int,
    cursor: str | None,
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """List the workspace's endpoints."""
    page = _run_sdk(
        url, api_key, key_file, lambda c: c.list_webhook_endpoints(limit=limit, cursor=cursor)
    )
    lines = [
        f"{e.id} {'enabled ' if e.enabled else 'disabled'} {e.url} {','.join(e.event_types)}"
        for e in page.data
    ]
    _print(page.model_dump(mode="json"), as_json, "\n".join(lines) or "no endpoints")


@group.command(name="show")
@click.argument("endpoint_id")
@json_option
@api_options
def show(
    endpoint_id: str, as_json: bool, url: str, api_key: str | None, key_file: Path | None
) -> None:
    """Show one endpoint."""
    endpoint = _run_sdk(url, api_key, key_file, lambda c: c.get_webhook_endpoint(endpoint_id))
    _print(endpoint.model_dump(mode="json"), as_json, json.dumps(endpoint.model_dump(mode="json")))


@group.command(name="update")
@click.argument("endpoint_id")
@click.option("--endpoint-url", "endpoint_url")
@click.option("--event-type", "event_types", multiple=True)
@click.option("--description")
@click.option("--enable/--disable", "enabled", default=None)
@json_option
@api_options
def update(
    endpoint_id: str,
    endpoint_url: str | None,
    event_types: tuple[str, ...],
    description: str | None,
    enabled: bool | None,
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """Change an endpoint's URL, event types, description or enabled flag."""
    endpoint = _run_sdk(
        url,
        api_key,
        key_file,
        lambda c: c.update_webhook_endpoint(
            endpoint_id,
            url=endpoint_url,
            event_types=list(event_types) or None,
            description=description,
            enabled=enabled,
        ),
    )
    _print(endpoint.model_dump(mode="json"), as_json, f"endpoint {endpoint.id} updated")


@group.command(name="delete")
@click.argument("endpoint_id")
@json_option
@api_options
def delete(
    endpoint_id: str, as_json: bool, url: str, api_key: str | None, key_file: Path | None
) -> None:
    """Delete an endpoint (its pending deliveries are cancelled)."""
    endpoint = _run_sdk(url, api_key, key_file, lambda c: c.delete_webhook_endpoint(endpoint_id))
    _print(endpoint.model_dump(mode="json"), as_json, f"endpoint {endpoint.id} deleted")


@group.command(name="test")
@click.argument("endpoint_id")
@json_option
@api_options
def test(
    endpoint_id: str, as_json: bool, url: str, api_key: str | None, key_file: Path | None
) -> None:
    """Queue a webhook.test event for one endpoint."""
    result = _run_sdk(url, api_key, key_file, lambda c: c.send_webhook_test(endpoint_id))
    _print(result.model_dump(mode="json"), as_json, f"test event {result.event.id} queued")


@group.command(name="events")
@click.option("--resource-type")
@click.option("--resource-id")
@click.option("--limit", default=50, type=click.IntRange(1, 200))
@click.option("--cursor")
@json_option
@api_options
def events(
    resource_type: str | None,
    resource_id: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """List events, oldest first."""
    page = _run_sdk(
        url,
        api_key,
        key_file,
        lambda c: c.list_webhook_events(
            limit=limit, cursor=cursor, resource_type=resource_type, resource_id=resource_id
        ),
    )
    lines = [
        f"{e.id} {e.type} {e.resource_type}/{e.resource_id}#{e.sequence}"
        f" {e.created_at:%Y-%m-%dT%H:%M:%S}"
        for e in page.data
    ]
    _print(page.model_dump(mode="json"), as_json, "\n".join(lines) or "no events")


@group.command(name="resend")
@click.argument("event_id")
@click.option("--endpoint", "endpoint_id", help="Only to this endpoint.")
@json_option
@api_options
def resend(
    event_id: str,
    endpoint_id: str | None,
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """Deliver an event again (same id and body)."""
    deliveries = _run_sdk(
        url, api_key, key_file, lambda c: c.resend_webhook_event(event_id, endpoint_id=endpoint_id)
    )
    _print(
        {"data": [d.model_dump(mode="json") for d in deliveries]},
        as_json,
        "\n".join(f"delivery {d.id} to {d.endpoint_id}: {d.status}" for d in deliveries),
    )


@group.command(name="resend-failed")
@click.option("--endpoint", "endpoint_id", help="Only this endpoint's failed deliveries.")
@click.option("--resource-type")
@click.option("--resource-id")
@json_option
@api_options
def resend_failed(
    endpoint_id: str | None,
    resource_type: str | None,
    resource_id: str | None,
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """Resend every failed delivery not delivered since (at most 1000 per call)."""
    deliveries = _run_sdk(
        url,
        api_key,
        key_file,
        lambda c: c.resend_failed_webhooks(
            endpoint_id=endpoint_id, resource_type=resource_type, resource_id=resource_id
        ),
    )
    _print(
        {"data": [d.model_dump(mode="json") for d in deliveries]},
        as_json,
        f"{len(deliveries)} deliveries queued again",
    )


@group.command(name="log")
@click.option("--endpoint", "endpoint_id")
@click.option("--event", "event_id")
@click.option("--delivery", "delivery_id")
@click.option("--limit", default=50, type=click.IntRange(1, 200))
@click.option("--cursor")
@json_option
@api_options
def log(
    endpoint_id: str | None,
    event_id: str | None,
    delivery_id: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
    url: str,
    api_key: str | None,
    key_file: Path | None,
) -> None:
    """The delivery log: every attempt with its status code, latency and error."""
    page = _run_sdk(
        url,
        api_key,
        key_file,
        lambda c: c.list_webhook_attempts(
            limit=limit,
            cursor=cursor,
            endpoint_id=endpoint_id,
            event_id=event_id,
            delivery_id=delivery_id,
        ),
    )
    lines = [
        f"{a.started_at:%Y-%m-%dT%H:%M:%S} event {a.event_id} attempt {a.attempt}: {a.outcome}"
        f" status={a.status_code} {a.latency_ms} ms {a.error or ''}".rstrip()
        for a in page.data
    ]
    _print(page.model_dump(mode="json"), as_json, "\n".join(lines) or "no attempts")


@group.command(name="jwks")
@click.option("--url", envvar="SHARDVAULT_URL", default="http://127.0.0.1:8080", show_default=True)
def jwks(url: str) -> None:
    """Print the server's webhook key set (no credentials needed)."""
    from shardvault.sdk import ShardvaultClient

    try:
        with ShardvaultClient(url) as client:
            key_set = client.get_webhook_jwks()
    except ShardvaultError as exc:
        fail_on(exc)
    emit_json(key_set.model_dump(mode="json", exclude_none=True))


@group.command(name="verify")
@click.option(
    "--body-file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The raw request body as received.",
)
@click.option("--signature", required=True, help="The X-Shardvault-Signature header value.")
@click.option("--key-id", required=True, help="The X-Shardvault-Key-Id header value.")
@click.option(
    "--jwks-file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The key set from GET /v1/webhooks/jwks.",
)
@click.option("--tolerance", default=300, show_default=True, type=click.IntRange(0))
@json_option
def verify(
    body_file: Path,
    signature: str,
    key_id: str,
    jwks_file: Path,
    tolerance: int,
    as_json: bool,
) -> None:
    """Check a captured delivery's signature; exit 1 if it does not verify."""
    from shardvault.sdk.webhooks import KEY_ID_HEADER, SIGNATURE_HEADER, verify_webhook

    try:
        key_set = json.loads(jwks_file.read_text())
    except ValueError:
        fail(f"{jwks_file} is not JSON")
    try:
        event = verify_webhook(
            body_file.read_bytes(),
            {SIGNATURE_HEADER: signature, KEY_ID_HEADER: key_id},
            key_set,
            tolerance_s=tolerance,
        )
    except ShardvaultError as exc:
        fail_on(exc)
    _print(
        {"valid": True, "event_id": event.get("id"), "type": event.get("type")},
        as_json,
        f"valid: event {event.get('id')} ({event.get('type')})",
    )


@group.command(name="purge")
@click.option(
    "--older-than-days",
    required=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Delete finished events (and their deliveries and log) older than this.",
)
@json_option
@local_options
def purge(
    older_than_days: float,
    as_json: bool,
    data_dir: Path,
    db_url: str | None,
    audit_key: Path | None,
) -> None:
    """Delete old webhook history on the database directly (operators; audited)."""
    from datetime import timedelta

    from shardvault.audit import Actor
    from shardvault.service.platform import open_platform
    from shardvault.service.webhooks import purge_history
    from shardvault.store import ensure_current
    from shardvault.store.types import utcnow

    config = local_config(data_dir, db_url, audit_key)
    before = utcnow() - timedelta(days=older_than_days)
    totals = {"events": 0, "deliveries": 0, "attempts": 0}
    batch = 5000
    try:
        platform = open_platform(config.db_url, config.audit_key_path, migrate=False)
    except ShardvaultError as exc:
        fail_on(exc)
    try:
        ensure_current(platform.database.engine)
        while True:
            with platform.unit_of_work() as uow:
                report = purge_history(uow, before=before, actor=Actor.cli(), limit=batch)
            totals["events"] += report.events
            totals["deliveries"] += report.deliveries
            totals["attempts"] += report.attempts
            if report.events < batch:
                break
    except ShardvaultError as exc:
        fail_on(exc)
    finally:
        platform.database.dispose()
    _print(
        dict(totals),
        as_json,
        f"purged {totals['events']} events, {totals['deliveries']} deliveries, "
        f"{totals['attempts']} attempts",
    )


@group.command(name="dispatch")
@key_option
@networks_option("--allow-network")
@click.option("--poll-interval", default=1.0, show_default=True, type=click.FloatRange(0.01))
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@json_option
@local_options
def dispatch(
    webhook_key: Path | None,
    allow_networks: tuple[str, ...],
    poll_interval: float,
    once: bool,
    as_json: bool,
    data_dir: Path,
    db_url: str | None,
    audit_key: Path | None,
) -> None:
    """Run a webhook delivery worker on the database (until SIGTERM or Ctrl-C)."""
    import signal
    from dataclasses import asdict

    from shardvault.service.webhook_delivery import DeliverySettings, WebhookDispatcher
    from shardvault.store import Database, ensure_current

    config = local_config(data_dir, db_url, audit_key)
    runtime = open_runtime(data_dir, webhook_key, allow_networks)
    assert runtime.signer is not None
    try:
        database = Database(config.db_url)
        ensure_current(database.engine)
    except ShardvaultError as exc:
        fail_on(exc)
    dispatcher = WebhookDispatcher(
        database,
        runtime.signer,
        runtime.policy,
        DeliverySettings(poll_interval_s=poll_interval),
    )
    try:
        if once:
            report = dispatcher.run_once()
            _print(
                asdict(report), as_json, f"claimed {report.claimed}, delivered {report.delivered}"
            )
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        if not as_json:
            click.echo(
                f"delivering webhooks from {config.display_url} (key {runtime.signer.key_id})"
            )
        try:
            dispatcher.serve(stop)
        except KeyboardInterrupt:
            pass
    finally:
        dispatcher.close()
        database.dispose()
