"""How far the vault key generations running in this server have come (in memory).

A vault request's job (:mod:`.vault_creations`, persisted) runs one distributed key
generation per scheme. The board holds the steps of the attempt this server runs, keyed
by workspace and the request's Idempotency-Key: ``GET /v1/vault-creations/{key}`` merges
them with the job's persisted state. A step is one round a co-signer has sent, or one
co-signer's result (:data:`shardvault.service.signing.KEYGEN_ROUNDS`), so the total is
known when the attempt starts. Nothing here is persisted: after a restart the steps
count from the new attempt.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from shardvault.service.signing import Scheme, keygen_steps

CreationState = Literal["generating", "finished", "failed"]

KEEP_S = 300.0
"""How long a finished or failed creation stays readable."""

MAX_ENTRIES = 1000
"""The most creations remembered; the oldest are dropped first."""


@dataclass(frozen=True, slots=True)
class SchemeProgress:
    scheme: Scheme
    steps_done: int
    steps_total: int


@dataclass(frozen=True, slots=True)
class VaultCreationView:
    idempotency_key: str
    vault_id: str
    state: CreationState
    schemes: tuple[SchemeProgress, ...]
    steps_done: int
    steps_total: int
    elapsed_s: float


@dataclass(slots=True)
class _Entry:
    vault_id: str
    schemes: list[Scheme]
    done: dict[Scheme, int]
    total: dict[Scheme, int]
    started: float
    ended: float | None = None
    state: CreationState = "generating"


class KeygenBoard:
    """The creations of this server process; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    def start(
        self,
        workspace_id: str,
        idempotency_key: str,
        *,
        vault_id: str,
        schemes: Sequence[Scheme],
        parties: int,
    ) -> None:
        """Record a creation whose key generations are about to run."""
        now = self._clock()
        entry = _Entry(
            vault_id=vault_id,
            schemes=list(schemes),
            done=dict.fromkeys(schemes, 0),
            total={s: keygen_steps(s, parties) for s in schemes},
            started=now,
        )
        with self._lock:
            self._prune(now)
            key = (workspace_id, idempotency_key)
            self._entries.pop(key, None)
            self._entries[key] = entry
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)

    def report(self, workspace_id: str, idempotency_key: str, scheme: Scheme, done: int) -> None:
        """A scheme's key generation has come ``done`` steps (of its total, known from
        the start)."""
        with self._lock:
            entry = self._entries.get((workspace_id, idempotency_key))
            if entry is None or scheme not in entry.done:
                return
            entry.done[scheme] = max(entry.done[scheme], done)

    def end(self, workspace_id: str, idempotency_key: str, *, ok: bool) -> None:
        """The request's key generations ended (``ok``: all of them succeeded)."""
        with self._lock:
            entry = self._entries.get((workspace_id, idempotency_key))
            if entry is None:
                return
            entry.ended = self._clock()
            entry.state = "finished" if ok else "failed"
            if ok:
                entry.done = dict(entry.total)

    def get(self, workspace_id: str, idempotency_key: str) -> VaultCreationView | None:
        """The creation of ``idempotency_key`` in this workspace, if this server runs or
        recently ran it."""
        now = self._clock()
        with self._lock:
            self._prune(now)
            entry = self._entries.get((workspace_id, idempotency_key))
            if entry is None:
                return None
            schemes = tuple(
                SchemeProgress(s, min(entry.done[s], entry.total[s]), entry.total[s])
                for s in entry.schemes
            )
            return VaultCreationView(
                idempotency_key=idempotency_key,
                vault_id=entry.vault_id,
                state=entry.state,
                schemes=schemes,
                steps_done=sum(p.steps_done for p in schemes),
                steps_total=sum(p.steps_total for p in schemes),
                elapsed_s=round((entry.ended or now) - entry.started, 3),
            )

    def _prune(self, now: float) -> None:
        stale = [
            key
            for key, entry in self._entries.items()
            if entry.ended is not None and now - entry.ended > KEEP_S
        ]
        for key in stale:
            del self._entries[key]
