"""Structured logging with secret redaction, and the readiness check behind /v1/health
(which also says when the signer is a one-host development mode)."""

import json
import logging
from pathlib import Path

import httpx
import pytest

from shardvault.api import create_app
from shardvault.audit import AuditSigner
from shardvault.observability import JsonFormatter, RedactSecretsFilter, check_readiness
from shardvault.observability.logging import REDACTED, configure_logging
from shardvault.service.platform import Platform
from shardvault.service.signer_mode import EMBEDDED_COSIGNERS, LOCAL_CEREMONY, SignerMode
from shardvault.store import Database
from tests.api.support import live_server


def _format(record: logging.LogRecord) -> dict[str, object]:
    assert RedactSecretsFilter().filter(record)
    return json.loads(JsonFormatter().format(record))  # type: ignore[no-any-return]


def _record(message: str, args: object = None, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("shardvault.test", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def test_secret_named_fields_are_redacted_at_any_depth() -> None:
    line = _format(
        _record(
            "request from %s",
            ("1.2.3.4",),
            authorization="Bearer eyJ.secret",
            api_key_id="k-1",
            request={"headers": {"Authorization": "Bearer x", "X-Trace": "t"}, "private_key": "p"},
            shares=[{"seed": "00ff"}],
            password="hunter2",
        )
    )
    assert line["message"] == "request from 1.2.3.4"
    assert line["authorization"] == REDACTED
    assert line["password"] == REDACTED
    assert line["api_key_id"] == "k-1"
    assert line["request"] == {
        "headers": {"Authorization": REDACTED, "X-Trace": "t"},
        "private_key": REDACTED,
    }
    assert line["shares"] == REDACTED
    assert "hunter2" not in json.dumps(line)


def test_mapping_arguments_are_redacted() -> None:
    record = _record("login %(user)s %(token)s", {"user": "ann", "token": "abc"})
    assert _format(record)["message"] == f"login ann {REDACTED}"


def test_configure_logging_emits_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    try:
        logging.getLogger("shardvault.x").info("hello", extra={"client_secret": "s3"})
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert (line["message"], line["client_secret"], line["level"]) == (
            "hello",
            REDACTED,
            "INFO",
        )
    finally:
        logging.getLogger().handlers.clear()


def test_health_is_503_until_the_schema_is_migrated(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/fresh.db")
    try:
        readiness = check_readiness(database.engine)
        assert (readiness.ready, readiness.database, readiness.schema_revision) == (
            False,
            "ok",
            None,
        )
        app = create_app(Platform(database, AuditSigner.generate()))
        with live_server(app) as url:
            response = httpx.get(f"{url}/v1/health")
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
    finally:
        database.dispose()


def test_health_reports_an_unreachable_database() -> None:
    database = Database("postgresql://postgres@127.0.0.1:1/none?connect_timeout=1")
    try:
        readiness = check_readiness(database.engine)
        assert (readiness.ready, readiness.database) == (False, "unreachable")
    finally:
        database.dispose()


@pytest.mark.parametrize("mode", [EMBEDDED_COSIGNERS, LOCAL_CEREMONY])
def test_health_says_a_one_host_signer_is_for_development_only(
    platform: Platform, mode: SignerMode
) -> None:
    with live_server(create_app(platform, signer_mode=mode)) as url:
        body = httpx.get(f"{url}/v1/health").json()
    assert body["status"] == "ok"
    assert body["signer"] == {
        "mode": mode.mode,
        "single_host": True,
        "development_only": True,
        "warning": mode.warning,
    }
    assert body["signer"]["warning"].startswith(
        "development only: one host holds every key share of every workspace;"
    )


def test_health_reports_no_signer_when_none_runs(platform: Platform) -> None:
    with live_server(create_app(platform)) as url:
        body = httpx.get(f"{url}/v1/health").json()
    assert body["status"] == "ok"
    assert body["signer"] is None
