"""The server's side of prepared auxiliary-info sets (``docs/cosigner.md``, "Prepared
aux info"): a small target of sets per (workspace, party set), each a label every
co-signer of the set holds sealed, made by ``aux_prepare`` requests in the background
and named by an ECDSA key generation's ``aux_label``.

Low priority: a set is started only when no signature and no key generation is under
way and none was asked for ``idle_s`` seconds (an aux-info session holds each
co-signer's loop for a few seconds of CPU; it cannot be interrupted once started).
The labels are kept in memory; after a restart the first fill asks the co-signers which
labels they hold (``aux_held``) and keeps those all of them hold.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

_log = logging.getLogger("shardvault.service.aux_sets")

Run = Callable[[str, dict[str, object], Sequence[int]], Mapping[int, Mapping[str, object]]]
"""Submit a request to a workspace's parties and wait for every result."""

RETRY_AFTER_S = 30.0
"""How long a (workspace, party set) rests after a failed ``aux_prepare``."""


@dataclass(frozen=True, slots=True)
class _SetKey:
    workspace_id: str
    parties: tuple[int, ...]


class AuxSets:
    """Prepared-set labels per (workspace, party set) and their background filler."""

    def __init__(self, target: int, run: Run, *, idle_s: float = 1.0) -> None:
        if not 0 <= target <= 64:
            raise ValueError("the aux-set target must be between 0 and 64")
        self.target = target
        self._run = run
        self._idle = idle_s
        self._lock = threading.Condition()
        self._labels: dict[_SetKey, list[str]] = {}
        self._synced: set[_SetKey] = set()
        self._making: dict[_SetKey, int] = {}
        self._resting: dict[_SetKey, float] = {}
        self._errors: dict[_SetKey, str] = {}
        self._busy = 0
        self._last_busy = 0.0
        self._closing = False
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"AuxSets(target={self.target})"

    # --- Use --------------------------------------------------------------------------

    def take(self, workspace_id: str, parties: Sequence[int]) -> str | None:
        """A label every co-signer of ``parties`` holds, forgotten here (``None`` when
        none is ready); the key generation that names it takes it from each of them."""
        key = _SetKey(workspace_id, tuple(sorted(parties)))
        with self._lock:
            labels = self._labels.get(key)
            return labels.pop(0) if labels else None

    def busy(self, count: int) -> None:
        """``count`` signatures or key generations start (or end, negative)."""
        with self._lock:
            self._busy += count
            self._last_busy = time.monotonic()
            self._lock.notify_all()

    def want(self, workspace_id: str, parties: Sequence[int]) -> None:
        """Top up the sets of (workspace, party set) in the background."""
        if self.target == 0:
            return
        key = _SetKey(workspace_id, tuple(sorted(parties)))
        with self._lock:
            if self._closing:
                return
            self._labels.setdefault(key, [])
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._fill_forever, name="cosigner-aux-sets", daemon=True
                )
                self._thread.start()
            self._lock.notify_all()

    def ready(self, workspace_id: str, parties: Sequence[int]) -> int:
        with self._lock:
            return len(self._labels.get(_SetKey(workspace_id, tuple(sorted(parties))), []))

    def status(self, workspace_id: str) -> dict[str, object]:
        """The workspace's sets: ready and being made per party set, and the target."""
        with self._lock:
            sets = {
                ".".join(map(str, key.parties)): {
                    "ready": len(labels),
                    "making": self._making.get(key, 0),
                    **({"error": self._errors[key]} if key in self._errors else {}),
                }
                for key, labels in self._labels.items()
                if key.workspace_id == workspace_id
            }
        return {"target": self.target, "sets": sets}

    def close(self) -> None:
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=30)

    # --- The filler -------------------------------------------------------------------

    def _next(self) -> _SetKey | None:
        with self._lock:
            while not self._closing:
                now = time.monotonic()
                short = [
                    k
                    for k, labels in self._labels.items()
                    if len(labels) + self._making.get(k, 0) < self.target
                    and self._resting.get(k, 0.0) <= now
                ]
                quiet = self._busy == 0 and now - self._last_busy >= self._idle
                if short and quiet:
                    chosen = short[0]
                    self._making[chosen] = self._making.get(chosen, 0) + 1
                    return chosen
                self._lock.wait(self._idle if short else 1.0)
            return None

    def _fill_forever(self) -> None:
        while True:
            key = self._next()
            if key is None:
                return
            try:
                if key not in self._synced:
                    self._sync(key)
                if len(self._labels.get(key, [])) < self.target:
                    self._prepare(key)
            except Exception as exc:  # the filler must outlive any one failure
                _log.warning("aux-info set not prepared: %s", type(exc).__name__)
                self._failed(key, type(exc).__name__)
            finally:
                with self._lock:
                    self._making[key] -= 1
                    self._lock.notify_all()

    def _failed(self, key: _SetKey, reason: str) -> None:
        with self._lock:
            self._errors[key] = reason
            self._resting[key] = time.monotonic() + RETRY_AFTER_S

    def _sync(self, key: _SetKey) -> None:
        """Keep the labels every co-signer of the set already holds (after a restart)."""
        body: dict[str, object] = {
            "kind": "aux_held",
            "request_id": f"aux-held-{secrets.token_hex(8)}",
            "parties": list(key.parties),
        }
        results = self._run(key.workspace_id, body, key.parties)
        held: set[str] | None = None
        for party in key.parties:
            result = results.get(party, {})
            labels = result.get("held") if result.get("status") == "ok" else None
            if not isinstance(labels, list):
                return
            mine = {x for x in labels if isinstance(x, str)}
            held = mine if held is None else held & mine
        with self._lock:
            known = self._labels.setdefault(key, [])
            known.extend(sorted((held or set()) - set(known)))
            self._synced.add(key)

    def _prepare(self, key: _SetKey) -> None:
        label = secrets.token_hex(16)
        body: dict[str, object] = {
            "kind": "aux_prepare",
            "request_id": f"aux-{label}",
            "aux_session_id": secrets.token_hex(32),
            "aux_label": label,
            "parties": list(key.parties),
        }
        results = self._run(key.workspace_id, body, key.parties)
        if all(results.get(p, {}).get("status") == "ok" for p in key.parties):
            with self._lock:
                self._labels.setdefault(key, []).append(label)
                self._errors.pop(key, None)
            return
        reasons = sorted(
            {str(r.get("check") or r.get("reason") or r.get("status")) for r in results.values()}
        )
        self._failed(key, "refused: " + ", ".join(reasons))
        # A bound reached by sets this server forgot: learn them on the next turn.
        self._synced.discard(key)
