"""Webhook delivery: the signing key, the destination guard and the dispatcher.

Signing (docs/webhooks.md, "Verifying a delivery"). Every POST carries
``X-Shardvault-Signature: t=<unix seconds>,v1=<base64 Ed25519 signature>`` over the bytes
``<t> || "." || <raw body>`` and ``X-Shardvault-Key-Id: <kid>``; the public key is served
as an RFC 8037 OKP JWK (RFC 7517 key set) at ``GET /v1/webhooks/jwks``. The key is the
server's own webhook key, separate from the audit key, kept in a 0600 file. Asymmetric
keys, a key id header and a key-set endpoint are what Fireblocks (JWKS, detached JWS) and
Circle (``X-Circle-Signature`` / ``X-Circle-Key-Id``) offer their users; the timestamp in
the signed bytes lets a receiver refuse stale replays.

Delivery is at least once. :class:`WebhookDispatcher` claims due deliveries in a short
transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the ``BEGIN IMMEDIATE`` write lock
on SQLite), moving each one's ``next_attempt_at`` forward by a lease and recording an
``in_progress`` attempt; it then POSTs outside any transaction and records the result in a
second transaction. A dispatcher that dies between the two leaves the delivery pending,
so it is claimed again when the lease runs out (its unfinished attempt is then marked
``abandoned``). A 2xx answer delivers; anything else (another status, a timeout, a refused
connection, a destination the guard refuses) is retried after an exponentially growing
delay with jitter, until ``max_attempts``, then the delivery is ``failed``. Redirects are
not followed. Deliveries of one resource to one endpoint go out in sequence order: a
delivery waits while an earlier one of the same resource to the same endpoint is pending.

SSRF guard (:mod:`shardvault.service.destinations`, shared with the networks' RPC nodes):
the dispatcher resolves the endpoint's host itself and connects only to an address that is
global (not loopback, private, link-local, cloud metadata, multicast, reserved...) or
inside a network the operator allowed explicitly (``--webhook-allow-network``); TLS still
verifies against the host name. Because the connection goes to the address that was
checked, DNS rebinding cannot slip past the check.
"""

import base64
import hashlib
import logging
import os
import secrets
import stat
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from nacl.signing import SigningKey, VerifyKey

from shardvault import __version__
from shardvault.service.destinations import DestinationPolicy as DestinationPolicy
from shardvault.service.destinations import DestinationRefused, GuardedTransport
from shardvault.service.errors import ServiceError
from shardvault.store import Database
from shardvault.store.models_webhooks import (
    AttemptOutcome,
    DeliveryStatus,
    WebhookAttempt,
)
from shardvault.store.repositories_webhooks import DeliveryQueue

_log = logging.getLogger("shardvault.webhooks")

SIGNATURE_HEADER = "X-Shardvault-Signature"
KEY_ID_HEADER = "X-Shardvault-Key-Id"
EVENT_ID_HEADER = "X-Shardvault-Event-Id"
EVENT_TYPE_HEADER = "X-Shardvault-Event-Type"
DELIVERY_ID_HEADER = "X-Shardvault-Delivery-Id"
ATTEMPT_HEADER = "X-Shardvault-Attempt"
USER_AGENT = f"shardvault-webhooks/{__version__}"


class WebhookError(ServiceError):
    """Root of the webhook subsystem's own errors."""

    problem = "webhook-error"


class WebhookKeyError(WebhookError):
    """The webhook signing key file is missing, malformed or readable by others."""

    problem = "webhook-key-error"


# Signing.


def signed_message(timestamp: int, body: bytes) -> bytes:
    """The bytes a delivery's signature covers: ``<timestamp>.<raw body>``."""
    return str(timestamp).encode("ascii") + b"." + body


def key_id_of(verify_key: VerifyKey) -> str:
    """The ``kid`` of a webhook public key: 16 hex digits of SHA-256 over its raw bytes."""
    return hashlib.sha256(b"shardvault/webhook-key/v1\x00" + bytes(verify_key)).hexdigest()[:16]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


class WebhookSigner:
    """Signs webhook deliveries with the server's Ed25519 webhook key.

    Security: holds the webhook private key. Whoever has it can forge events that
    receivers will act on (a "transaction completed" they did not see), so it lives in a
    0600 file, apart from the audit key, never in the database; it is kept out of ``repr``
    and never logged. ``previous`` public keys stay in the key set after a rotation so
    receivers can still check deliveries signed just before it.
    """

    __slots__ = ("_signing_key", "key_id", "previous", "verify_key")

    def __init__(self, signing_key: SigningKey, previous: Sequence[VerifyKey] = ()) -> None:
        self._signing_key = signing_key
        self.verify_key = signing_key.verify_key
        self.key_id = key_id_of(self.verify_key)
        self.previous = tuple(previous)

    @classmethod
    def generate(cls) -> "WebhookSigner":
        """A fresh key from the operating system's CSPRNG (libsodium)."""
        return cls(SigningKey.generate())

    def sign(self, timestamp: int, body: bytes) -> str:
        """The ``X-Shardvault-Signature`` header value for ``body`` sent at ``timestamp``."""
        signature = self._signing_key.sign(signed_message(timestamp, body)).signature
        return f"t={timestamp},v1={base64.b64encode(signature).decode('ascii')}"

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public key set (RFC 7517) with each key as an OKP/Ed25519 JWK (RFC 8037)."""
        keys = [self.verify_key, *self.previous]
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": _b64url(bytes(k)),
                    "kid": key_id_of(k),
                    "use": "sig",
                    "alg": "EdDSA",
                }
                for k in keys
            ]
        }

    def save(self, path: Path) -> None:
        """Write the seed (hex) to a new file with mode 0600; refuse to overwrite.

        Raises:
            WebhookKeyError: the file exists or cannot be created.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise WebhookKeyError(f"cannot create webhook key file {path}: {exc.strerror}") from exc
        with os.fdopen(fd, "w") as handle:
            handle.write(bytes(self._signing_key).hex() + "\n")

    @classmethod
    def load(cls, path: Path, previous: Sequence[VerifyKey] = ()) -> "WebhookSigner":
        """Read a key file written by :meth:`save`.

        Raises:
            WebhookKeyError: missing, accessible by group or others, or not a 32-byte seed.
        """
        try:
            mode = path.stat().st_mode
            text = path.read_text().strip()
        except OSError as exc:
            raise WebhookKeyError(f"cannot read webhook key file {path}: {exc.strerror}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise WebhookKeyError(f"webhook key file {path} is accessible by group or others")
        try:
            seed = bytes.fromhex(text)
        except ValueError:
            raise WebhookKeyError(f"webhook key file {path} does not hold hex") from None
        if len(seed) != 32:
            raise WebhookKeyError(f"webhook key file {path} does not hold a 32-byte seed")
        return cls(SigningKey(seed), previous)

    @classmethod
    def load_or_create(cls, path: Path) -> "WebhookSigner":
        """Load the key at ``path``, creating it (0600) first if the file does not exist."""
        if not path.exists():
            cls.generate().save(path)
        return cls.load(path)

    def __repr__(self) -> str:
        return f"WebhookSigner(key_id={self.key_id!r})"


# The dispatcher.


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """Tunables of the dispatcher.

    The default schedule waits 10 s, 30 s, 90 s, 270 s ... (times 1 to 1.25 for jitter),
    at most 4 h between attempts, 10 attempts in all: about 12 hours before ``failed``,
    close to the schedule Fireblocks documents (10 s ... 4 h, 10 attempts).
    """

    timeout_s: float = 10.0
    max_attempts: int = 10
    backoff_base_s: float = 10.0
    backoff_factor: float = 3.0
    backoff_max_s: float = 4 * 3600.0
    jitter: float = 0.25
    lease_s: float = 60.0
    batch_size: int = 20
    concurrency: int = 8
    poll_interval_s: float = 1.0
    max_response_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.concurrency < 1:
            raise ValueError("max_attempts and concurrency must be at least 1")
        if self.lease_s <= self.timeout_s:
            raise ValueError("lease_s must be longer than timeout_s")
        if self.backoff_factor < 1 or self.backoff_base_s <= 0 or not 0 <= self.jitter <= 1:
            raise ValueError("backoff_base_s > 0, backoff_factor >= 1, 0 <= jitter <= 1")

    def backoff_s(self, attempts: int, unit_random: float) -> float:
        """The delay after the ``attempts``-th failed attempt; ``unit_random`` is in [0, 1)."""
        exponent = min(attempts - 1, 64)
        delay = min(self.backoff_base_s * self.backoff_factor**exponent, self.backoff_max_s)
        return delay * (1 + self.jitter * unit_random)


def _system_unit_random() -> float:
    return secrets.randbelow(1 << 30) / (1 << 30)


def _as_datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery this dispatcher holds until ``lease_until``."""

    delivery_id: str
    workspace_id: str
    event_id: str
    event_type: str
    endpoint_id: str
    url: str
    body: bytes = field(repr=False)
    attempt: int
    attempt_id: str
    claim_token: str


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one POST came to."""

    delivered: bool
    status_code: int | None
    latency_ms: int
    error: str | None


@dataclass(slots=True)
class DispatchReport:
    """Counts of one :meth:`WebhookDispatcher.run_once`."""

    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    stale: int = 0


class WebhookDispatcher:
    """Delivers pending webhook deliveries, at least once (see the module docstring).

    ``clock`` (seconds since the epoch) schedules retries and leases and stamps
    signatures; ``unit_random`` supplies the jitter. Both are injectable so tests can run
    a retry schedule of hours in milliseconds. Several dispatchers (threads, processes,
    hosts) may run against one database.
    """

    def __init__(
        self,
        database: Database,
        signer: WebhookSigner,
        policy: DestinationPolicy,
        settings: DeliverySettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        unit_random: Callable[[], float] = _system_unit_random,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._database = database
        self._signer = signer
        self.settings = settings or DeliverySettings()
        self._clock = clock
        self._unit_random = unit_random
        self._http = httpx.Client(
            transport=transport or GuardedTransport(policy),
            timeout=self.settings.timeout_s,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )
        self._pool = ThreadPoolExecutor(
            max_workers=self.settings.concurrency, thread_name_prefix="webhook-post"
        )
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # One round.

    def claim(self, limit: int | None = None) -> list[Claim]:
        """Claim up to ``limit`` due deliveries (committed before returning)."""
        now_s = self._clock()
        now = _as_datetime(now_s)
        lease_until = _as_datetime(now_s + self.settings.lease_s)
        claims: list[Claim] = []
        with self._database.transaction() as session:
            queue = DeliveryQueue(session)
            for delivery, endpoint, event in queue.claim_due(
                now, limit or self.settings.batch_size
            ):
                for stale in queue.unfinished_attempts(delivery.id):
                    stale.outcome = AttemptOutcome.ABANDONED
                    stale.finished_at = now
                    stale.error = "abandoned: the dispatcher stopped before recording a result"
                token = str(uuid.uuid4())
                delivery.attempts += 1
                delivery.claim_token = token
                delivery.next_attempt_at = lease_until
                delivery.updated_at = now
                attempt = queue.add_attempt(
                    WebhookAttempt(
                        id=str(uuid.uuid4()),
                        workspace_id=delivery.workspace_id,
                        delivery_id=delivery.id,
                        event_id=delivery.event_id,
                        endpoint_id=delivery.endpoint_id,
                        attempt=delivery.attempts,
                        claim_token=token,
                        outcome=AttemptOutcome.IN_PROGRESS,
                        started_at=now,
                    )
                )
                claims.append(
                    Claim(
                        delivery_id=delivery.id,
                        workspace_id=delivery.workspace_id,
                        event_id=event.id,
                        event_type=event.event_type,
                        endpoint_id=endpoint.id,
                        url=endpoint.url,
                        body=event.body.encode("utf-8"),
                        attempt=delivery.attempts,
                        attempt_id=attempt.id,
                        claim_token=token,
                    )
                )
        return claims

    def post(self, claim: Claim) -> AttemptResult:
        """Send one claimed delivery (no database access)."""
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: self._signer.sign(timestamp, claim.body),
            KEY_ID_HEADER: self._signer.key_id,
            EVENT_ID_HEADER: claim.event_id,
            EVENT_TYPE_HEADER: claim.event_type,
            DELIVERY_ID_HEADER: claim.delivery_id,
            ATTEMPT_HEADER: str(claim.attempt),
        }
        started = time.monotonic()
        try:
            with self._http.stream("POST", claim.url, content=claim.body, headers=headers) as r:
                received = 0
                for chunk in r.iter_raw():
                    received += len(chunk)
                    if received >= self.settings.max_response_bytes:
                        break
                status = r.status_code
        except DestinationRefused as exc:
            return AttemptResult(False, None, _ms_since(started), f"refused: {exc}")
        except httpx.TimeoutException:
            return AttemptResult(False, None, _ms_since(started), "timed out")
        except httpx.HTTPError as exc:
            return AttemptResult(False, None, _ms_since(started), f"connection error: {exc}")
        latency = _ms_since(started)
        if 200 <= status < 300:
            return AttemptResult(True, status, latency, None)
        return AttemptResult(False, status, latency, f"HTTP {status}")

    def record(self, claim: Claim, result: AttemptResult) -> DeliveryStatus | None:
        """Store the result of ``claim``'s attempt; return the delivery's new status, or
        ``None`` when the claim had gone stale (another dispatcher claimed it again)."""
        return self.record_many([(claim, result)])[0]

    def record_many(
        self, outcomes: Sequence[tuple[Claim, AttemptResult]]
    ) -> list[DeliveryStatus | None]:
        """Store several attempts' results in one transaction (see :meth:`record`)."""
        now_s = self._clock()
        now = _as_datetime(now_s)
        statuses: dict[str, DeliveryStatus | None] = {}
        with self._database.transaction() as session:
            queue = DeliveryQueue(session)
            # Lock in id order so two recorders can never wait on each other in a cycle.
            for claim, result in sorted(outcomes, key=lambda o: o[0].delivery_id):
                statuses[claim.attempt_id] = self._apply(queue, claim, result, now_s, now)
        return [statuses[claim.attempt_id] for claim, _ in outcomes]

    def _apply(
        self,
        queue: DeliveryQueue,
        claim: Claim,
        result: AttemptResult,
        now_s: float,
        now: datetime,
    ) -> DeliveryStatus | None:
        delivery = queue.lock_delivery(claim.delivery_id)
        attempt = queue.get_attempt(claim.attempt_id)
        error = None if result.error is None else result.error[:500]
        if attempt is not None and attempt.outcome is AttemptOutcome.IN_PROGRESS:
            attempt.outcome = (
                AttemptOutcome.DELIVERED if result.delivered else AttemptOutcome.FAILED
            )
            attempt.finished_at = now
            attempt.status_code = result.status_code
            attempt.latency_ms = result.latency_ms
            attempt.error = error
        if delivery is None or delivery.claim_token != claim.claim_token:
            return None
        delivery.claim_token = None
        delivery.updated_at = now
        delivery.last_status_code = result.status_code
        delivery.last_error = error
        if result.delivered:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = now
        elif delivery.attempts >= self.settings.max_attempts:
            delivery.status = DeliveryStatus.FAILED
        else:
            delay = self.settings.backoff_s(delivery.attempts, self._unit_random())
            delivery.next_attempt_at = _as_datetime(now_s + delay)
        return delivery.status

    def run_once(self) -> DispatchReport:
        """Claim a batch, send each (in parallel), record the results in one transaction;
        return what happened."""
        report = DispatchReport()
        claims = self.claim()
        report.claimed = len(claims)
        if not claims:
            return report
        # A batch never holds two deliveries of one resource to one endpoint (the later one
        # is held back while the earlier is pending), so sending in parallel keeps order.
        if len(claims) > 1 and self.settings.concurrency > 1:
            results = list(self._pool.map(self.post, claims))
        else:
            results = [self.post(c) for c in claims]
        for status in self.record_many(list(zip(claims, results, strict=True))):
            if status is None:
                report.stale += 1
            elif status is DeliveryStatus.DELIVERED:
                report.delivered += 1
            elif status is DeliveryStatus.FAILED:
                report.failed += 1
            else:
                report.retrying += 1
        return report

    # The worker loop.

    def serve(self, stop: threading.Event | None = None) -> None:
        """Deliver until ``stop`` is set, sleeping ``poll_interval_s`` when idle.

        Up to ``concurrency`` deliveries are in flight at once, each recorded as soon as
        its POST ends, and free slots are refilled without waiting for the others: a slow
        or dead endpoint holds one slot for at most ``timeout_s``, not the whole worker.
        """
        stop = stop or self._stop
        idle = threading.Condition()
        in_flight = 0

        def finished(_: object) -> None:
            nonlocal in_flight
            with idle:
                in_flight -= 1
                idle.notify_all()

        while not stop.is_set():
            with idle:
                while in_flight >= self.settings.concurrency and not stop.is_set():
                    idle.wait(self.settings.poll_interval_s)
                free = self.settings.concurrency - in_flight
            if stop.is_set():
                break
            try:
                claims = self.claim(min(free, self.settings.batch_size))
            except Exception:
                # A database outage must not kill the worker; it retries after a pause.
                _log.exception("claiming webhook deliveries failed")
                claims = []
            if not claims:
                stop.wait(self.settings.poll_interval_s)
                continue
            for claim in claims:
                with idle:
                    in_flight += 1
                self._pool.submit(self._send_and_record, claim).add_done_callback(finished)
        with idle:
            while in_flight > 0:
                idle.wait(self.settings.poll_interval_s)

    def _send_and_record(self, claim: Claim) -> None:
        try:
            self.record(claim, self.post(claim))
        except Exception:
            # The claim's lease runs out and another round retries it.
            _log.exception("recording webhook delivery %s failed", claim.delivery_id)

    def start(self) -> None:
        """Run :meth:`serve` in a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("the dispatcher is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self.serve, name="webhook-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the thread started by :meth:`start` (after its current round)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self._pool.shutdown(wait=True)
        self._http.close()


def _ms_since(started: float) -> int:
    return max(0, round((time.monotonic() - started) * 1000))


@dataclass(frozen=True, slots=True)
class WebhookRuntime:
    """What the API needs from the webhook subsystem: the key whose public half the JWKS
    endpoint serves, and the destination policy endpoint URLs are checked against."""

    signer: WebhookSigner | None = None
    policy: DestinationPolicy = field(default_factory=DestinationPolicy)

    def jwks(self) -> Mapping[str, object]:
        return self.signer.jwks() if self.signer is not None else {"keys": []}
