"""Vault creation as a background job that survives a restart of the server.

``POST /v1/vaults`` validates the request, then :func:`submit` records a job (one per
workspace and Idempotency-Key, :class:`~shardvault.store.models_vault_creations.VaultCreationJob`)
and :class:`VaultCreationRunner` runs it in a thread of the server: one distributed key
generation per scheme through the signing backend, then, in one transaction, the vault,
its keys, its audit event and the job's ``finished`` state. The request either waits for
the job (the default: ``201`` with the vault, as before) or, with ``Prefer:
respond-async``, answers ``202`` at once; ``GET /v1/vault-creations/{key}`` tells how far
it has come either way.

A server that stops mid-job leaves the row ``generating``. At start-up
:meth:`VaultCreationRunner.resume` runs each such job again: a key generation cannot
resume mid-round, so the attempt starts over with new session ids and new key ids
(the co-signers drop the sessions of the lost attempt when they time out; a key
generation stores nothing until every party confirmed it). A job interrupted
:data:`MAX_ATTEMPTS` times is marked ``failed``; sending the request again with the same
Idempotency-Key runs it again. Each attempt carries its number: only the attempt the row
names may finish it, so a vault is recorded once, whatever attempt comes back late.

Known gap: when a server dies after the co-signers stored a key but before it recorded
the vault, the next attempt makes a new key, and the co-signers keep the first one
under a key id that no vault refers to (complete shares, never a partial one).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select

from shardvault.service import vaults as vault_service
from shardvault.service.context import Principal
from shardvault.service.errors import (
    Conflict,
    IdempotencyKeyReused,
    NotFound,
    ServiceError,
)
from shardvault.service.keygen_progress import KeygenBoard, SchemeProgress
from shardvault.service.platform import Platform
from shardvault.service.signing import (
    GeneratedKey,
    Scheme,
    SigningBackend,
    SigningError,
    keygen_steps,
)
from shardvault.service.uow import UnitOfWork
from shardvault.store.models import Role
from shardvault.store.models_vault_creations import VaultCreationJob
from shardvault.store.repositories_vaults import VaultRepository
from shardvault.store.types import utcnow

_log = logging.getLogger("shardvault.vault_creations")

MAX_ATTEMPTS = 3
"""Attempts a job gets across restarts before it is marked failed."""

GENERATING, FINISHED, FAILED = "generating", "finished", "failed"


@dataclass(frozen=True, slots=True)
class CreationView:
    """A job as the API shows it (``VaultCreationOut``)."""

    idempotency_key: str
    vault_id: str
    state: str
    schemes: tuple[SchemeProgress, ...]
    steps_done: int
    steps_total: int
    elapsed_s: float
    attempts: int
    error: str | None


@dataclass(frozen=True, slots=True)
class Submitted:
    """The job of a request, and whether this request must start it."""

    job_id: str
    vault_id: str
    state: str
    start: bool


def _job(uow: UnitOfWork, workspace_id: str, key: str) -> VaultCreationJob | None:
    return uow.session.scalar(
        select(VaultCreationJob).where(
            VaultCreationJob.workspace_id == workspace_id,
            VaultCreationJob.idempotency_key == key,
        )
    )


def submit(
    uow: UnitOfWork,
    principal: Principal,
    *,
    key: str,
    fingerprint: str,
    vault_id: str,
    name: str,
    schemes: list[Scheme],
    min_signers: int,
    max_signers: int,
    initiator: str,
) -> Submitted:
    """The job of the request with Idempotency-Key ``key``: a new one, the one a
    previous request with this key made, or (when that one failed) the same job
    started again.

    Raises:
        IdempotencyKeyReused: the key was used for another request.
        Conflict: the workspace has a vault of this name (checked before any key
            generation; the job checks again when it records the vault).
    """
    existing = _job(uow, principal.workspace_id, key)
    if existing is not None:
        if existing.request_hash != fingerprint:
            raise IdempotencyKeyReused(key)
        restart = existing.state == FAILED
        if restart:
            existing.state, existing.attempts, existing.error = GENERATING, 0, None
            existing.updated_at = utcnow()
        return Submitted(existing.id, existing.vault_id, existing.state, restart)
    if VaultRepository(uow.session, principal.workspace_id).by_name(name) is not None:
        raise Conflict(f"a vault named {name!r} exists")
    row = VaultCreationJob(
        workspace_id=principal.workspace_id,
        idempotency_key=key,
        request_hash=fingerprint,
        vault_id=vault_id,
        name=name,
        schemes=json.dumps(list(schemes)),
        min_signers=min_signers,
        max_signers=max_signers,
        initiator=initiator,
        api_key_id=principal.api_key_id,
        user_id=principal.user_id,
        role=principal.role.value,
        state=GENERATING,
        attempts=0,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    uow.session.add(row)
    uow.session.flush()
    return Submitted(row.id, row.vault_id, row.state, True)


def state_of(uow: UnitOfWork, job_id: str) -> tuple[str, str | None]:
    """A job's state and the error of its failure.

    Raises:
        NotFound: no such job.
    """
    row = uow.session.get(VaultCreationJob, job_id)
    if row is None:
        raise NotFound("vault creation", job_id)
    return row.state, row.error


def view(uow: UnitOfWork, workspace_id: str, key: str, board: KeygenBoard) -> CreationView:
    """The job of ``key`` with its progress (the board's steps while this server runs
    it).

    Raises:
        NotFound: no vault request of this workspace has that key.
    """
    row = _job(uow, workspace_id, key)
    if row is None:
        raise NotFound("vault creation", key)
    schemes: list[Scheme] = json.loads(row.schemes)
    live = board.get(workspace_id, key)
    progress: tuple[SchemeProgress, ...]
    if live is not None and row.state == GENERATING:
        progress = live.schemes
    else:
        progress = tuple(
            SchemeProgress(
                s,
                keygen_steps(s, row.max_signers) if row.state == FINISHED else _done(live, s),
                keygen_steps(s, row.max_signers),
            )
            for s in schemes
        )
    end = row.updated_at if row.state != GENERATING else utcnow()
    return CreationView(
        idempotency_key=key,
        vault_id=row.vault_id,
        state=row.state,
        schemes=progress,
        steps_done=sum(p.steps_done for p in progress),
        steps_total=sum(p.steps_total for p in progress),
        elapsed_s=round(max((end - row.created_at).total_seconds(), 0.0), 3),
        attempts=row.attempts,
        error=row.error,
    )


def _done(live: object, scheme: Scheme) -> int:
    """Steps a failed job had reached (0 when this server did not run it)."""
    schemes = getattr(live, "schemes", ())
    return next((p.steps_done for p in schemes if p.scheme == scheme), 0)


class VaultCreationRunner:
    """Runs this server's vault creation jobs, each in a thread of its own (module
    docstring). Thread-safe."""

    def __init__(
        self,
        platform: Platform,
        backend: SigningBackend,
        board: KeygenBoard,
        *,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self._platform = platform
        self._backend = backend
        self._board = board
        self._max_attempts = max_attempts
        self._lock = threading.Condition()
        self._running: set[str] = set()
        self._errors: dict[str, ServiceError] = {}

    def __repr__(self) -> str:
        return f"VaultCreationRunner(running={len(self._running)})"

    def run(self, job_id: str) -> None:
        """Run the job in a thread, unless this server already runs it."""
        with self._lock:
            if job_id in self._running:
                return
            self._running.add(job_id)
        threading.Thread(
            target=self._attempt, args=(job_id,), name=f"vault-creation-{job_id[:8]}", daemon=True
        ).start()

    def running(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._running

    def error_of(self, job_id: str) -> ServiceError | None:
        """Why the job's last attempt in this server failed (``None`` if unknown)."""
        with self._lock:
            return self._errors.get(job_id)

    def wait(self, job_id: str, timeout: float) -> bool:
        """Wait until this server no longer runs the job; ``False`` on time-out."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while job_id in self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    def resume(self) -> list[str]:
        """Run again every job a previous server process left ``generating`` (those
        interrupted :data:`MAX_ATTEMPTS` times are marked failed). Returns the ids of
        the jobs started."""
        with self._platform.unit_of_work() as uow:
            rows = uow.session.scalars(
                select(VaultCreationJob).where(VaultCreationJob.state == GENERATING)
            ).all()
            started = []
            for row in rows:
                if self.running(row.id):
                    continue
                if row.attempts >= self._max_attempts:
                    row.state = FAILED
                    row.error = (
                        f"interrupted {row.attempts} times by a restart of the server; "
                        "send the request again with the same Idempotency-Key to retry"
                    )
                    row.updated_at = utcnow()
                    _log.warning("vault creation %s failed: interrupted too often", row.id)
                else:
                    started.append(row.id)
        for job_id in started:
            _log.info("resuming vault creation %s after a restart", job_id)
            self.run(job_id)
        return started

    # --- One attempt ----------------------------------------------------------------

    def _begin(self, job_id: str) -> tuple[VaultCreationJob, int] | None:
        """Take the next attempt number of a ``generating`` job (``None``: nothing to
        do)."""
        with self._platform.unit_of_work() as uow:
            row = uow.session.get(VaultCreationJob, job_id, with_for_update=True)
            if row is None or row.state != GENERATING:
                return None
            row.attempts += 1
            row.updated_at = utcnow()
            uow.session.flush()
            uow.session.expunge(row)
            return row, row.attempts

    def _attempt(self, job_id: str) -> None:
        ok = False
        began = None
        try:
            began = self._begin(job_id)
            if began is None:
                ok = True
                return
            job, attempt = began
            schemes: list[Scheme] = json.loads(job.schemes)
            key = job.idempotency_key
            self._board.start(
                job.workspace_id,
                key,
                vault_id=job.vault_id,
                schemes=schemes,
                parties=job.max_signers,
            )
            keys = vault_service.generate_vault_keys(
                self._backend,
                workspace_id=job.workspace_id,
                vault_id=job.vault_id,
                schemes=schemes,
                min_signers=job.min_signers,
                max_signers=job.max_signers,
                initiator=job.initiator,
                progress=lambda scheme, done, _total: self._board.report(
                    job.workspace_id, key, scheme, done
                ),
            )
            ok = self._finish(job, attempt, keys)
            if ok:
                with self._lock:
                    self._errors.pop(job_id, None)
        except ServiceError as exc:
            self._fail(job_id, began, exc)
        except Exception:
            _log.exception("vault creation %s failed unexpectedly", job_id)
            self._fail(job_id, began, SigningError("the key generation failed unexpectedly"))
        finally:
            if began is not None:
                self._board.end(began[0].workspace_id, began[0].idempotency_key, ok=ok)
            with self._lock:
                self._running.discard(job_id)
                self._lock.notify_all()

    def _principal(self, job: VaultCreationJob) -> Principal:
        return Principal(job.workspace_id, job.api_key_id, job.user_id, Role(job.role))

    def _finish(self, job: VaultCreationJob, attempt: int, keys: list[GeneratedKey]) -> bool:
        """Record the vault and finish the job, if this attempt still owns it."""
        with self._platform.unit_of_work() as uow:
            row = uow.session.get(VaultCreationJob, job.id, with_for_update=True)
            if row is None or row.state != GENERATING or row.attempts != attempt:
                _log.warning("vault creation %s: attempt %d superseded", job.id, attempt)
                return False
            vault_service.record_vault(
                uow,
                self._principal(job),
                vault_id=job.vault_id,
                name=job.name,
                keys=keys,
                backend_name=self._backend.name,
            )
            row.state, row.error, row.updated_at = FINISHED, None, utcnow()
        return True

    def _fail(
        self, job_id: str, began: tuple[VaultCreationJob, int] | None, exc: ServiceError
    ) -> None:
        with self._lock:
            self._errors[job_id] = exc
        if began is None:
            return
        attempt = began[1]
        try:
            with self._platform.unit_of_work() as uow:
                row = uow.session.get(VaultCreationJob, job_id, with_for_update=True)
                if row is None or row.state != GENERATING or row.attempts != attempt:
                    return
                row.state, row.error, row.updated_at = FAILED, str(exc)[:2000], utcnow()
        except Exception:
            _log.exception("could not record the failure of vault creation %s", job_id)
