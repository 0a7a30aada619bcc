"""Vault creation as a persisted job: the 202 answer, a restart of the server in the
middle of a key generation (the job runs again and one vault results), a job interrupted
too often (failed, then retried with the same key), and the refusals that cost no key
generation."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shardvault.api import create_app
from shardvault.sdk import ShardvaultClient
from shardvault.sdk.errors import ApiError
from shardvault.service.keygen_progress import KeygenBoard
from shardvault.service.pipeline import PipelineRuntime
from shardvault.service.platform import Platform
from shardvault.service.signing import SigningError
from shardvault.service.vault_creations import MAX_ATTEMPTS, VaultCreationRunner
from shardvault.store.models_vault_creations import VaultCreationJob
from shardvault.store.models_vaults import Vault
from tests.api.support import Tenant
from tests.service.pipeline_support import ReusedKeygenBackend, open_custody
from tests.waiting import eventually


class _Held(ReusedKeygenBackend):
    """Key generation that waits until the test lets it go (a server mid-DKG)."""

    def __init__(self, custody: object) -> None:
        super().__init__(custody)  # type: ignore[arg-type]
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        self.fail = False

    def keygen(self, **kwargs: object) -> object:  # type: ignore[override]
        self.calls += 1
        self.started.set()
        assert self.release.wait(30)
        if self.fail:
            raise SigningError("co-signer 2 went away")
        return super().keygen(**kwargs)  # type: ignore[arg-type]


def _serve(
    request: pytest.FixtureRequest, platform: Platform, backend: object
) -> tuple[str, object]:
    switch, base = request.getfixturevalue("_loopback")
    app = create_app(platform, pipeline_runtime=PipelineRuntime(backend))  # type: ignore[arg-type]
    switch.target = app
    request.addfinalizer(lambda: setattr(switch, "target", None))
    return str(base), app


def _vaults(platform: Platform) -> int:
    with platform.unit_of_work(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Vault)) or 0)


def test_prefer_respond_async_answers_202_and_the_job_finishes(
    tenant: Tenant, platform: Platform, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    backend = _Held(open_custody(tmp_path / "held"))
    base, _ = _serve(request, platform, backend)
    try:
        with ShardvaultClient(base, tenant.owner) as owner:
            started = owner.start_vault_creation(name="ops", idempotency_key="async-1")
            assert started.state == "generating"
            assert backend.started.wait(30)
            response = owner.request(
                "POST",
                "/v1/vaults",
                json_body={
                    "name": "ops",
                    "schemes": ["ecdsa-secp256k1"],
                    "min_signers": 2,
                    "max_signers": 3,
                },
                idempotency_key="async-1",
                headers={"Prefer": "respond-async"},
            )
            assert response.status_code == 202
            assert response.headers["Location"] == "/v1/vault-creations/async-1"
            backend.release.set()
            assert eventually(
                lambda: owner.get_vault_creation("async-1").state == "finished", timeout=30
            )
            done = owner.get_vault_creation("async-1")
            assert done.steps_done == done.steps_total
            # The same request again answers with the vault, without a key generation.
            vault = owner.create_vault(name="ops", idempotency_key="async-1")
            assert vault.id == started.vault_id == done.vault_id
            again = owner.start_vault_creation(name="ops", idempotency_key="async-1")
            assert again.state == "finished"
    finally:
        backend.release.set()
    assert backend.calls == 1
    assert _vaults(platform) == 1


def test_a_restart_mid_key_generation_runs_the_job_again_and_records_one_vault(
    tenant: Tenant, platform: Platform, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    held = _Held(open_custody(tmp_path / "held"))
    base, first_app = _serve(request, platform, held)
    try:
        with ShardvaultClient(base, tenant.owner) as owner:
            started = owner.start_vault_creation(name="ops", idempotency_key="restart-1")
            assert held.started.wait(30)
            # The server stops here; the next one starts on the same database.
            after = VaultCreationRunner(
                platform, ReusedKeygenBackend(open_custody(tmp_path / "after")), KeygenBoard()
            )
            assert after.resume() == [_job_id(platform, "restart-1")]
            assert after.wait(_job_id(platform, "restart-1"), 60)
            done = owner.get_vault_creation("restart-1")
            assert (done.state, done.attempts, done.vault_id) == ("finished", 2, started.vault_id)
            # The first attempt comes back late: it may not record a second vault.
            held.release.set()
            runner = first_app.state.vault_creations  # type: ignore[attr-defined]
            assert runner.wait(_job_id(platform, "restart-1"), 60)
            assert owner.get_vault_creation("restart-1").attempts == 2
            vault = owner.create_vault(name="ops", idempotency_key="restart-1")
            assert vault.id == started.vault_id
            assert [v.id for v in owner.list_vaults().data] == [vault.id]
    finally:
        held.release.set()
    assert _vaults(platform) == 1


def _job_id(platform: Platform, key: str) -> str:
    with platform.unit_of_work(read_only=True) as uow:
        job = uow.session.scalar(
            select(VaultCreationJob).where(VaultCreationJob.idempotency_key == key)
        )
        assert job is not None
        return job.id


def test_a_job_interrupted_too_often_fails_cleanly_and_the_same_key_retries_it(
    tenant: Tenant, platform: Platform, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    held = _Held(open_custody(tmp_path / "held"))
    base, app = _serve(request, platform, held)
    try:
        with ShardvaultClient(base, tenant.owner) as owner:
            owner.start_vault_creation(name="ops", idempotency_key="often-1")
            assert held.started.wait(30)
            job_id = _job_id(platform, "often-1")
            with platform.unit_of_work() as uow:
                row = uow.session.get(VaultCreationJob, job_id)
                assert row is not None
                row.attempts = MAX_ATTEMPTS
            restarted = VaultCreationRunner(
                platform, ReusedKeygenBackend(open_custody(tmp_path / "after")), KeygenBoard()
            )
            assert restarted.resume() == []
            failed = owner.get_vault_creation("often-1")
            assert failed.state == "failed"
            assert failed.error is not None
            assert "interrupted" in failed.error
            assert _vaults(platform) == 0
            # The stale attempt ends (failing): it changes nothing.
            held.fail = True
            held.release.set()
            runner = app.state.vault_creations  # type: ignore[attr-defined]
            assert runner.wait(job_id, 30)
            assert owner.get_vault_creation("often-1").error == failed.error
            held.fail = False
            vault = owner.create_vault(name="ops", idempotency_key="often-1")
            assert owner.get_vault_creation("often-1").state == "finished"
            assert vault.id == failed.vault_id
    finally:
        held.release.set()
    assert _vaults(platform) == 1


def test_bad_vault_requests_are_refused_before_any_key_generation(
    tenant: Tenant, platform: Platform, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    held = _Held(open_custody(tmp_path / "held"))
    base, _ = _serve(request, platform, held)
    bad_bodies = [
        {"name": "ops", "schemes": ["ecdsa-secp256k1"], "min_signers": 1},
        {"name": "ops", "schemes": ["rsa"]},
        {"name": "Not A Name!", "schemes": ["ecdsa-secp256k1"]},
        {"name": "ops", "schemes": []},
        {"name": "ops", "max_signers": "three"},
    ]
    try:
        with ShardvaultClient(base, tenant.owner, max_attempts=1) as owner:
            for n, body in enumerate(bad_bodies):
                with pytest.raises(ApiError) as refused:
                    owner.request("POST", "/v1/vaults", json_body=body, idempotency_key=f"b{n}")
                assert refused.value.status == 400, body
            with pytest.raises(ApiError) as unknown:
                owner.get_vault_creation("never-sent")
            assert unknown.value.status == 404
            # The same key with another body: refused, while the first one runs.
            owner.start_vault_creation(name="ops", idempotency_key="k1")
            assert held.started.wait(30)
            with pytest.raises(ApiError) as reused:
                owner.start_vault_creation(name="other", idempotency_key="k1")
            assert reused.value.status == 409
            held.release.set()
            assert eventually(lambda: owner.get_vault_creation("k1").state == "finished")
            # A name taken: refused before a key generation, not after one.
            with pytest.raises(ApiError) as taken:
                owner.start_vault_creation(name="ops", idempotency_key="k2")
            assert taken.value.status == 409
    finally:
        held.release.set()
    assert held.calls == 1
    assert _vaults(platform) == 1
