"""Choosing a signing quorum among the co-signers that answer, and noticing one that
stops answering in the middle of a session (docs/cosigner.md, "Quorums and failover").

A co-signer is *stalled* when it has no poll waiting at the relay and has not been in
touch for ``stall_after`` seconds (paused, cut off, gone). While it waits for a session's
results, :meth:`Quorums.results` looks for a stalled member of the quorum whose result is
missing; it then takes the request and every envelope of its sessions out of the relay's
queues (a co-signer that comes back finds nothing to start or finish), has the session
aborted at every party, remembers the silent co-signer as a suspect and raises
:class:`CosignerStalled`, so the caller signs again with another quorum: a fresh session
and, for ECDSA, a fresh presignature, never a retried signature share.
:meth:`Quorums.choose` leaves stalled co-signers and suspects (until they are in touch
again) out of a quorum.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from shardvault.cosigner.relay_core import RelayCore
from shardvault.service.signing import KeygenProgress, SigningError

_log = logging.getLogger("shardvault.cosigner_backend")

STALL_CHECK_S = 0.5
"""How often a waiting session looks for a co-signer that stopped answering."""


class CosignerRefused(SigningError):
    """A co-signer refused a request (its own check failed) or a session aborted."""

    problem = "cosigner-refused"


class CosignerStalled(CosignerRefused):
    """A co-signer of the quorum stopped answering mid-session (paused, cut off, gone):
    the session was aborted everywhere, and another quorum may sign."""

    problem = "cosigner-stalled"

    def __init__(self, parties: Sequence[int], what: str) -> None:
        super().__init__(f"{what}: co-signers {list(parties)} stopped answering")
        self.parties = tuple(parties)


class QuorumUnavailable(SigningError):
    """Fewer co-signers answer than a key's quorum needs."""

    problem = "cosigners-unavailable"


def summary(results: Mapping[int, Mapping[str, object]], parties: Sequence[int]) -> str:
    """Which party said what, for an error message (never a payload or a share)."""
    parts = []
    for party in parties:
        result = results.get(party)
        if result is None:
            parts.append(f"co-signer {party}: no answer")
            continue
        status = result.get("status")
        if status == "ok":
            continue
        text = f"co-signer {party} {status}"
        for name in ("check", "rule", "reason", "culprits"):
            value = result.get(name)
            if value not in (None, "", []):
                text += f" {name}={value}"
        parts.append(text[:400])
    return "; ".join(parts) or "inconsistent results"


Abort = Callable[[RelayCore, Sequence[str], Sequence[int]], None]
"""Tells ``parties`` to drop the sessions ``session_ids`` (the backend's ``_abort``)."""


class Quorums:
    """Who signs, and who stopped answering (module docstring). Thread-safe."""

    def __init__(self, stall_after: float, clock: Callable[[], float] = time.time) -> None:
        self.stall_after = stall_after
        self._clock = clock
        self._lock = threading.Lock()
        # Co-signers that stalled a session, by (relay, party): left out of quorums until
        # they are in touch again after that moment.
        self._suspects: dict[tuple[int, int], float] = {}

    def choose(
        self, relay: RelayCore, min_signers: int, candidates: Sequence[int] = ()
    ) -> tuple[int, ...]:
        """The first ``min_signers`` of ``candidates`` (the key's co-signers; else every
        co-signer of the relay) that answer, leaving out the stalled and the suspects.

        Raises:
            QuorumUnavailable: fewer than ``min_signers`` answer.
        """
        parties = [p for p in (candidates or relay.parties) if p in relay.parties]
        stalled = set(relay.stalled(parties, self.stall_after))
        with self._lock:
            marked = {p: self._suspects.get((id(relay), p)) for p in parties}
        suspects = {
            p
            for p, since in marked.items()
            if since is not None and (relay.last_contact(p) or 0.0) <= since
        }
        healthy = [p for p in parties if p not in stalled and p not in suspects]
        if len(healthy) < min_signers:
            down = sorted(set(parties) - set(healthy))
            raise QuorumUnavailable(
                f"co-signers {down} are not answering: {len(healthy)} of the "
                f"{min_signers} a signature needs are"
            )
        return tuple(healthy[:min_signers])

    def results(
        self,
        relay: RelayCore,
        body: Mapping[str, object],
        parties: Sequence[int],
        timeout: float,
        *,
        stall: bool,
        abort: Abort,
    ) -> dict[int, dict[str, object]]:
        """The parties' results of a queued request, forgotten by the relay once read.
        The wait ends at the first refusal or failure, at ``timeout``, or, with
        ``stall``, when a party whose result is missing stalls.

        Raises:
            CosignerStalled: that party stalled (the session was aborted everywhere).
        """
        request_id = str(body["request_id"])
        deadline = time.monotonic() + timeout
        try:
            while True:
                remaining = max(deadline - time.monotonic(), 0.0)
                got = relay.wait_results(
                    request_id,
                    parties,
                    min(remaining, STALL_CHECK_S) if stall else remaining,
                    first_failure=True,
                )
                done = all(p in got for p in parties) or any(
                    r.get("status") != "ok" for r in got.values()
                )
                if done or relay.closed or time.monotonic() >= deadline:
                    return got
                if stall:
                    missing = [p for p in parties if p not in got]
                    stalled = relay.stalled(missing, self.stall_after)
                    if stalled:
                        self._stalled(relay, body, parties, stalled, abort)
                        raise CosignerStalled(stalled, str(body.get("kind", "request")))
        finally:
            relay.forget(request_id)

    def _stalled(
        self,
        relay: RelayCore,
        body: Mapping[str, object],
        parties: Sequence[int],
        stalled: Sequence[int],
        abort: Abort,
    ) -> None:
        """Abort a session a party stalled, everywhere, and remember the suspects."""
        relay.purge(str(body["request_id"]))
        sessions = [str(body[k]) for k in ("session_id", "aux_session_id") if k in body]
        abort(relay, sessions, parties)
        now = self._clock()
        with self._lock:
            for party in stalled:
                self._suspects[(id(relay), party)] = now
        _log.warning(
            "co-signers %s stopped answering a %s session; it was aborted",
            list(stalled),
            body.get("kind"),
        )


PROGRESS_INTERVAL_S = 0.2
"""How often a watched key generation's progress is looked at."""

AUX_ROUNDS = 4
"""Rounds of CGGMP21's auxiliary-info session (of ``KEYGEN_ROUNDS``' 8): what a key
generation from a prepared set does not run."""


def watch_keygen(
    relay: RelayCore,
    request_id: str,
    parties: Sequence[int],
    total: int,
    skipped: int,
    timeout: float,
    progress: KeygenProgress,
) -> dict[int, dict[str, object]]:
    """Wait for a key generation's results (the first failure ends the wait), telling
    ``progress`` how far it has come whenever that changes: one step per round a
    co-signer has sent (as the relay routed it), one per co-signer's result, and
    ``skipped`` steps that ran before the request."""
    deadline = time.monotonic() + timeout
    reported = -1
    while True:
        slice_s = min(PROGRESS_INTERVAL_S, max(deadline - time.monotonic(), 0.0))
        got = relay.wait_results(request_id, parties, slice_s, first_failure=True)
        done = min(skipped + relay.rounds_routed(request_id) + len(got), total)
        if done != reported:
            reported = done
            progress(done, total)
        finished = all(p in got for p in parties) or any(
            r.get("status") != "ok" for r in got.values()
        )
        if finished or relay.closed or time.monotonic() >= deadline:
            return got
