"""Idempotent execution at the service layer, on SQLite and PostgreSQL: one execution per
key, 409 for a reused key, failures not remembered, concurrent duplicates run once."""

import threading

import pytest
from sqlalchemy import func, select

from shardvault.audit import Actor
from shardvault.service.errors import IdempotencyKeyReused, ValidationError
from shardvault.service.idempotency import (
    request_fingerprint,
    run_idempotently,
    validate_key,
)
from shardvault.service.platform import Platform
from shardvault.service.uow import UnitOfWork
from shardvault.store import Database
from shardvault.store.models import AuditEvent, IdempotencyRecord
from tests.api.support import bootstrap, make_platform


@pytest.fixture
def platform(database: Database) -> Platform:
    return make_platform(database)


class Counter:
    """An operation that records an audit event (a real state change) and counts runs."""

    def __init__(self) -> None:
        self.runs = 0
        self.lock = threading.Lock()

    def __call__(self, uow: UnitOfWork, workspace_id: str) -> tuple[int, dict[str, object]]:
        with self.lock:
            self.runs += 1
            run = self.runs
        uow.audit.append(
            workspace_id=workspace_id,
            actor=Actor.system(),
            action="test.operation",
            details={"run": run},
        )
        return 201, {"run": run}


def _run(
    platform: Platform, workspace_id: str, key: str, body: bytes, op: Counter
) -> tuple[int, str, bool]:
    fingerprint = request_fingerprint("POST", "/v1/things", body)
    with platform.unit_of_work() as uow:
        stored = run_idempotently(
            uow,
            workspace_id=workspace_id,
            key=key,
            method="POST",
            path="/v1/things",
            fingerprint=fingerprint,
            operation=lambda u: op(u, workspace_id),
        )
    return stored.status, stored.body, stored.replayed


def test_same_key_and_body_return_the_first_result(platform: Platform) -> None:
    tenant = bootstrap(platform)
    op = Counter()
    first = _run(platform, tenant.workspace_id, "k", b'{"a":1}', op)
    second = _run(platform, tenant.workspace_id, "k", b'{"a":1}', op)
    assert first == (201, '{"run":1}', False)
    assert second == (201, '{"run":1}', True)
    assert op.runs == 1


def test_same_key_with_another_body_is_refused(platform: Platform) -> None:
    tenant = bootstrap(platform)
    op = Counter()
    _run(platform, tenant.workspace_id, "k", b'{"a":1}', op)
    with pytest.raises(IdempotencyKeyReused) as caught:
        _run(platform, tenant.workspace_id, "k", b'{"a":2}', op)
    assert caught.value.key == "k"
    assert op.runs == 1


def test_keys_are_scoped_to_the_workspace(platform: Platform) -> None:
    first, second = bootstrap(platform, "one"), bootstrap(platform, "two")
    op = Counter()
    _run(platform, first.workspace_id, "k", b"{}", op)
    assert _run(platform, second.workspace_id, "k", b"{}", op)[2] is False
    assert op.runs == 2


def test_a_failed_operation_is_not_remembered(platform: Platform) -> None:
    tenant = bootstrap(platform)

    def failing(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        raise ValidationError("amount", "must be positive")

    def attempt() -> None:
        with platform.unit_of_work() as uow:
            run_idempotently(
                uow,
                workspace_id=tenant.workspace_id,
                key="k",
                method="POST",
                path="/v1/things",
                fingerprint="f" * 64,
                operation=failing,
            )

    with pytest.raises(ValidationError):
        attempt()
    with platform.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0
    op = Counter()
    assert _run(platform, tenant.workspace_id, "k", b"{}", op)[2] is False


@pytest.mark.parametrize("key", [None, "", "x" * 256, "has space", "tab\there", "ünïcode"])
def test_malformed_keys_are_refused(key: str | None) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_key(key)
    assert caught.value.field == "Idempotency-Key"


def test_fingerprint_separates_method_path_and_body() -> None:
    base = request_fingerprint("POST", "/v1/users", b"{}")
    assert base == request_fingerprint("post", "/v1/users", b"{}")
    assert base != request_fingerprint("POST", "/v1/api-keys", b"{}")
    assert base != request_fingerprint("POST", "/v1/users", b"{ }")
    assert request_fingerprint("POST", "/v1/a", b"b") != request_fingerprint("POST", "/v1/ab", b"")


def test_concurrent_duplicates_execute_once(platform: Platform) -> None:
    tenant = bootstrap(platform)
    op = Counter()
    results: list[tuple[int, str, bool]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(20)

    def worker() -> None:
        try:
            barrier.wait()
            results.append(_run(platform, tenant.workspace_id, "same", b'{"x":1}', op))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert op.runs == 1
    assert {r[:2] for r in results} == {(201, '{"run":1}')}
    assert sum(1 for r in results if not r[2]) == 1
    with platform.unit_of_work() as uow:
        ran = uow.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "test.operation")
        )
    assert ran == 1
