"""The relay: the coordinator's side of the co-signer link (message routing, in memory).

Co-signers have no inbound port (DESIGN.md "Scale"): each one connects out and long-polls
the relay for its work. The relay holds, per co-signer, a queue of items:

* ``{"type": "request", "body": {...}}``: a request from the coordinator (key
  generation, signing, a policy bundle, an abort), queued by :meth:`RelayCore.submit`;
* ``{"type": "envelope", "data": base64}``: a sealed protocol message from a peer.

A co-signer posts back its envelopes, its results (one per request) and events (an
envelope it refused, say). The relay reads only an envelope's header (unverified) to
route it: a direct message to its recipient, a broadcast to every other party of the
session. It never decrypts; it cannot, since direct payloads are encrypted to the
recipient. It is *untrusted*: co-signers verify everything it delivers.

Every HTTP call of a co-signer is signed with its identity key over
``REQUEST_DOMAIN || method || path || timestamp || nonce || SHA-256(body)``; the relay
accepts it only within ``max_skew`` seconds and only once per nonce, so a captured poll
cannot be replayed to steal another co-signer's queue.

This module is I/O-free apart from the clock and thread synchronisation; ``relay_app``
puts it behind HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from shardvault.cosigner.errors import RelayAuthError
from shardvault.crypto.channel import Directory, PartyIdentity, peek_header
from shardvault.crypto.errors import CryptoError

REQUEST_DOMAIN = b"shardvault/relay/request/v1\x00"
"""Prefix of the bytes a co-signer signs for each relay request."""

HEADER_PARTY = "x-shardvault-cosigner"
HEADER_TIMESTAMP = "x-shardvault-timestamp"
HEADER_NONCE = "x-shardvault-nonce"
HEADER_SIGNATURE = "x-shardvault-signature"

MAX_WAIT = 30.0
"""The longest a poll may wait for work (seconds)."""

MAX_ITEMS = 256
"""The most items one poll returns."""

MAX_EVENTS = 10_000
"""The most relay events (dropped or refused envelopes) kept; older ones are dropped."""

MAX_STATUS_BYTES = 2048
"""The largest status document a co-signer may report with a poll."""

STATUS_FIELDS = (
    "version",
    "unlock",
    "attestation",
    "policy_version",
    "profile",
    "prime_pool",
    "aux_pool",
)
"""What a co-signer reports about itself with each poll (informational: a co-signer's
word, shown to operators, never a reason to trust it)."""


SESSION_KINDS = ("dkg", "sign", "presign", "aux_prepare")
"""Request kinds that start sessions (their ``session_id``/``aux_session_id`` routed)."""


def _request_id(item: Mapping[str, object]) -> object:
    """The request id of a queued request item (``None`` for an envelope)."""
    body = item.get("body")
    return body.get("request_id") if isinstance(body, Mapping) else None


def _session_of(item: Mapping[str, object]) -> bytes | None:
    """The session id of a queued envelope item (``None`` for a request or junk)."""
    data = item.get("data")
    if item.get("type") != "envelope" or not isinstance(data, str):
        return None
    try:
        return bytes(peek_header(base64.b64decode(data)).session_id)
    except (CryptoError, ValueError):
        return None


def request_signing_bytes(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The bytes a co-signer signs for one relay request."""
    return b"\n".join(
        [
            REQUEST_DOMAIN,
            method.upper().encode("ascii"),
            path.encode("utf-8"),
            timestamp.encode("ascii"),
            nonce.encode("ascii"),
            hashlib.sha256(body).hexdigest().encode("ascii"),
        ]
    )


def sign_request(
    identity: PartyIdentity, method: str, path: str, body: bytes, timestamp: int, nonce: str
) -> dict[str, str]:
    """The authentication headers of one relay request."""
    signature = identity.sign(request_signing_bytes(method, path, str(timestamp), nonce, body))
    return {
        HEADER_PARTY: str(identity.party),
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: signature.hex(),
    }


class RelayCore:
    """Queues and routing for a set of co-signers known by their public identities.

    Thread-safe: the HTTP layer calls it from worker threads; :meth:`poll` blocks until
    an item arrives or the wait ends. ``transcript`` keeps every envelope routed (for
    audits and for the tests that search it for secrets).
    """

    def __init__(
        self,
        directory: Directory,
        *,
        max_skew: float = 60.0,
        clock: Callable[[], float] = time.time,
        keep_transcript: bool = True,
    ) -> None:
        self._directory = directory
        self._max_skew = max_skew
        self._clock = clock
        self._keep = keep_transcript
        self._cond = threading.Condition()
        self._queues: dict[int, deque[dict[str, object]]] = {
            int(p): deque() for p in directory.entries
        }
        self._sessions: dict[bytes, tuple[int, ...]] = {}
        # The sessions of each request, so that forgetting a request forgets them (a
        # long-running coordinator would otherwise keep every session it ever routed),
        # and per session the highest round each sender has had routed (progress).
        self._request_sessions: dict[str, tuple[bytes, ...]] = {}
        self._rounds: dict[bytes, dict[int, int]] = {}
        self._results: dict[str, dict[int, dict[str, object]]] = {}
        self._nonces: dict[tuple[int, str], float] = {}
        # The same nonces in the order they expire (the clock only moves forward in
        # practice; an entry behind a later one is just kept longer), so pruning is
        # amortized O(1) per request instead of a pass over every remembered nonce.
        self._nonce_expiry: deque[tuple[float, tuple[int, str]]] = deque()
        self._seen: set[int] = set()
        # Liveness: when each co-signer last made an authenticated request (wall clock),
        # how many of its polls are waiting now, and what it last reported.
        self._last_contact: dict[int, float] = {}
        self._waiting: dict[int, int] = {}
        self._reported: dict[int, dict[str, object]] = {}
        self._closed = False
        self.transcript: list[bytes] = []
        self.events: list[dict[str, object]] = []

    def close(self) -> None:
        """Wake every waiting poll and answer all further polls at once (shutdown)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def request_ids(self) -> list[str]:
        """Every request id some co-signer reported on."""
        with self._cond:
            return list(self._results)

    def wait_seen(self, parties: Sequence[int], timeout: float) -> list[int]:
        """Wait until every party in ``parties`` has polled at least once; answers the
        parties that still have not when ``timeout`` ends (empty: all are connected)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                missing = [p for p in parties if p not in self._seen]
                remaining = deadline - time.monotonic()
                if not missing or remaining <= 0 or self._closed:
                    return missing
                self._cond.wait(remaining)

    @property
    def parties(self) -> tuple[int, ...]:
        """The co-signers this relay serves."""
        return tuple(sorted(self._queues))

    @property
    def directory(self) -> Directory:
        """The identities of the co-signers this relay serves (whose requests it
        authenticates)."""
        with self._cond:
            return self._directory

    def set_directory(self, directory: Directory) -> None:
        """Serve the co-signers of ``directory`` from now on (pairing changed): new ones
        get a queue, the polls and queue of one no longer listed end."""
        with self._cond:
            self._directory = directory
            wanted = {int(p) for p in directory.entries}
            for party in wanted - set(self._queues):
                self._queues[party] = deque()
            for party in set(self._queues) - wanted:
                del self._queues[party]
            self._cond.notify_all()

    def liveness(self) -> dict[int, dict[str, object]]:
        """Per co-signer: ``connected`` (a poll is waiting now), ``last_contact`` (epoch
        seconds of its last authenticated request, ``None`` if never) and what it last
        reported (:data:`STATUS_FIELDS`)."""
        with self._cond:
            return {
                party: {
                    **self._reported.get(party, {}),
                    "connected": self._waiting.get(party, 0) > 0,
                    "last_contact": self._last_contact.get(party),
                }
                for party in sorted(self._queues)
            }

    def last_contact(self, party: int) -> float | None:
        """When ``party`` last made an authenticated request (epoch seconds)."""
        with self._cond:
            return self._last_contact.get(party)

    def stalled(self, parties: Sequence[int], after: float) -> list[int]:
        """Of ``parties``, those that have not been in touch for ``after`` seconds and
        have no poll waiting: a co-signer that is paused, cut off or gone."""
        now = self._clock()
        with self._cond:
            return [
                party
                for party in parties
                if self._waiting.get(party, 0) == 0
                and now - self._last_contact.get(party, float("-inf")) > after
            ]

    def purge(self, request_id: str) -> None:
        """Take the request ``request_id``, and every envelope of its sessions, out of
        the queues that still hold them (it was aborted: a co-signer that comes back later
        must neither start it nor finish it from a peer's messages)."""
        with self._cond:
            sessions = set(self._request_sessions.get(request_id, ()))
            for queue in self._queues.values():
                kept = [
                    item
                    for item in queue
                    if _request_id(item) != request_id and _session_of(item) not in sessions
                ]
                if len(kept) != len(queue):
                    queue.clear()
                    queue.extend(kept)

    # --- Coordinator side -----------------------------------------------------------

    def submit(self, body: Mapping[str, object], parties: Sequence[int]) -> None:
        """Queue a request for ``parties``; a request with a ``session_id`` (and an
        ``aux_session_id``) registers the session's parties so broadcasts can be routed.

        Raises:
            ValueError: an unknown party, or a session id that is not 32 bytes of hex.
        """
        self.submit_many([(body, parties)])

    def submit_many(self, requests: Sequence[tuple[Mapping[str, object], Sequence[int]]]) -> None:
        """Queue several requests (as :meth:`submit`, in order) and wake waiting polls
        once, when all are queued: a co-signer's poll then takes a batch of signing
        requests together (one poll and one send of its answers) instead of waking for
        the first and polling again for the rest.

        Raises:
            ValueError: an unknown party, or a session id that is not 32 bytes of hex,
                in any request; then none is queued.
        """
        sessions: list[tuple[bytes, tuple[int, ...]]] = []
        by_request: dict[str, tuple[bytes, ...]] = {}
        for body, parties in requests:
            registered = len(sessions)
            unknown = [p for p in parties if p not in self._queues]
            if unknown:
                raise ValueError(f"unknown co-signers {unknown}")
            for name in ("session_id", "aux_session_id"):
                session = body.get(name)
                if isinstance(session, str) and body.get("kind") in SESSION_KINDS:
                    try:
                        raw = bytes.fromhex(session)
                    except ValueError:
                        raw = b""
                    if len(raw) != 32:
                        raise ValueError(f"{name} must be 32 bytes of hex")
                    sessions.append((raw, tuple(sorted(parties))))
            request_id = body.get("request_id")
            if isinstance(request_id, str) and len(sessions) > registered:
                by_request[request_id] = tuple(raw for raw, _ in sessions[registered:])
        with self._cond:
            self._sessions.update(sessions)
            self._request_sessions.update(by_request)
            for body, parties in requests:
                for party in parties:
                    self._queues[party].append({"type": "request", "body": dict(body)})
            self._cond.notify_all()

    def inject(self, party: int, envelope: bytes) -> None:
        """Deliver an envelope to ``party`` as if routed (a relay, honest or not, can)."""
        with self._cond:
            self._queues[party].append(
                {"type": "envelope", "data": base64.b64encode(envelope).decode()}
            )
            self._cond.notify_all()

    def results(self, request_id: str) -> dict[int, dict[str, object]]:
        """The results received so far for ``request_id``, by party."""
        with self._cond:
            return dict(self._results.get(request_id, {}))

    def forget(self, request_id: str) -> None:
        """Drop the results of ``request_id`` (the coordinator has read them) and its
        sessions: an envelope of one of them arriving later is dropped (and recorded as
        an event). A late result for it is kept again until forgotten."""
        with self._cond:
            self._results.pop(request_id, None)
            for session in self._request_sessions.pop(request_id, ()):
                self._sessions.pop(session, None)
                self._rounds.pop(session, None)

    def rounds_routed(self, request_id: str) -> int:
        """How far the sessions of ``request_id`` have come: over its sessions and their
        senders, the sum of the highest round number routed from each (a sender that
        has sent rounds 1 and 2 counts 2). Zero for an unknown or forgotten request."""
        with self._cond:
            return sum(
                sum(self._rounds.get(session, {}).values())
                for session in self._request_sessions.get(request_id, ())
            )

    def wait_results(
        self,
        request_id: str,
        parties: Sequence[int],
        timeout: float,
        *,
        first_failure: bool = False,
    ) -> dict[int, dict[str, object]]:
        """Wait until every party in ``parties`` reported on ``request_id`` (or the
        timeout ends, or the relay closes, or, with ``first_failure``, one party reported
        anything but ``ok``: the session cannot succeed then); answers what arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = self._results.get(request_id, {})
                if all(p in got for p in parties):
                    return dict(got)
                if first_failure and any(r.get("status") != "ok" for r in got.values()):
                    return dict(got)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return dict(got)
                self._cond.wait(remaining)

    # --- Co-signer side -------------------------------------------------------------

    def authenticate(
        self, party: int, method: str, path: str, body: bytes, headers: Mapping[str, str]
    ) -> None:
        """Check a co-signer's signed request.

        Raises:
            RelayAuthError: unknown party, a missing header, a stale timestamp, a reused
                nonce, or a signature that does not verify.
        """
        if party not in self._queues:
            raise RelayAuthError(f"co-signer {party} is not known to this relay")
        try:
            claimed = int(headers[HEADER_PARTY])
            timestamp_text = headers[HEADER_TIMESTAMP]
            nonce = headers[HEADER_NONCE]
            signature = bytes.fromhex(headers[HEADER_SIGNATURE])
            timestamp = int(timestamp_text)
        except (KeyError, ValueError):
            raise RelayAuthError("missing or malformed authentication headers") from None
        if claimed != party:
            raise RelayAuthError("the signed party is not the party of the path")
        if not 8 <= len(nonce) <= 64 or not nonce.isalnum():
            raise RelayAuthError("malformed nonce")
        now = self._clock()
        if abs(now - timestamp) > self._max_skew:
            raise RelayAuthError("request timestamp is outside the allowed skew")
        key = self._directory.get(party).signing_key
        try:
            VerifyKey(key).verify(
                request_signing_bytes(method, path, timestamp_text, nonce, body), signature
            )
        except (BadSignatureError, ValueError):
            raise RelayAuthError(
                f"request signature of co-signer {party} does not verify"
            ) from None
        with self._cond:
            expiry = self._nonce_expiry
            while expiry and expiry[0][0] <= now:
                _, old = expiry.popleft()
                if self._nonces.get(old, now + 1) <= now:
                    del self._nonces[old]
            if (party, nonce) in self._nonces:
                raise RelayAuthError("request nonce was already used (replay)")
            until = now + 2 * self._max_skew
            self._nonces[(party, nonce)] = until
            expiry.append((until, (party, nonce)))
            self._last_contact[party] = now

    def poll(
        self, party: int, wait: float, status: Mapping[str, object] | None = None
    ) -> list[dict[str, object]]:
        """Take up to :data:`MAX_ITEMS` items for ``party``, waiting up to ``wait`` s.
        ``status`` is what the co-signer reports about itself (:data:`STATUS_FIELDS`)."""
        wait = max(0.0, min(wait, MAX_WAIT))
        deadline = time.monotonic() + wait
        with self._cond:
            self._seen.add(party)
            if status is not None:
                self._reported[party] = {k: status[k] for k in STATUS_FIELDS if k in status}
            self._waiting[party] = self._waiting.get(party, 0) + 1
            self._cond.notify_all()
            try:
                while not self._queues.get(party) and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or party not in self._queues:
                        return []
                    self._cond.wait(remaining)
                queue = self._queues.get(party)
                out: list[dict[str, object]] = []
                while queue and len(out) < MAX_ITEMS:
                    out.append(queue.popleft())
                return out
            finally:
                self._waiting[party] -= 1
                self._last_contact[party] = max(self._last_contact.get(party, 0.0), self._clock())

    def send(
        self,
        party: int,
        envelopes: Sequence[bytes],
        results: Sequence[Mapping[str, object]] = (),
        events: Sequence[Mapping[str, object]] = (),
    ) -> int:
        """Route ``party``'s envelopes and record its results and events.

        An envelope that does not parse, claims another sender, or belongs to no known
        session is dropped and recorded as an event (the relay is not the judge of
        protocol messages; the recipients are).

        Returns the number of envelopes routed.
        """
        routed = 0
        with self._cond:
            for envelope in envelopes:
                try:
                    header = peek_header(envelope)
                except CryptoError as exc:
                    self._event({"party": party, "event": "relay_dropped", "reason": str(exc)})
                    continue
                session = bytes(header.session_id)
                members = self._sessions.get(session)
                if header.sender != party or members is None or party not in members:
                    self._event(
                        {"party": party, "event": "relay_dropped", "reason": "not routable"}
                    )
                    continue
                rounds = self._rounds.setdefault(session, {})
                rounds[party] = max(rounds.get(party, 0), int(header.round))
                if header.recipient is not None:
                    targets: Sequence[int] = (
                        [header.recipient] if header.recipient in members else []
                    )
                else:
                    targets = [p for p in members if p != party]
                item: dict[str, object] = {
                    "type": "envelope",
                    "data": base64.b64encode(envelope).decode(),
                }
                for target in targets:
                    queue = self._queues.get(target)
                    if queue is not None:
                        queue.append(item)
                if self._keep:
                    self.transcript.append(envelope)
                routed += 1
            for result in results:
                request_id = result.get("request_id")
                if isinstance(request_id, str):
                    self._results.setdefault(request_id, {})[party] = {**result, "party": party}
            for event in events:
                self._event({**event, "party": party})
            self._cond.notify_all()
        return routed

    def _event(self, event: dict[str, object]) -> None:
        # Under the lock. Bounded: a co-signer (or a forger with its key) sending junk
        # must not grow the coordinator's memory without end.
        self.events.append(event)
        if len(self.events) > MAX_EVENTS:
            del self.events[: len(self.events) - MAX_EVENTS]
