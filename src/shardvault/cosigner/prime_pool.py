"""A co-signer's pool of safe primes, searched ahead of time and sealed in its custody.

Every ECDSA (CGGMP21) key a co-signer generates gets a Paillier-Blum modulus of its own
(docs/security.md, "Auxiliary info per key"), made from two fresh 1024-bit safe primes.
Searching them takes about a second on a quiet core and tens of seconds on a busy one,
which used to happen inside the vault request. The pool searches them beforehand:

* **Where the search runs.** In a separate worker process (a ``forkserver`` process
  pool), not a thread: the search is pure CPU in GMP and Python, and a thread would hold
  the node's GIL away from its protocol rounds. The worker lowers itself to Linux's
  ``SCHED_IDLE`` class (``nice 19`` where that is refused), so it only takes CPU time no
  signing session wants. At most ``workers`` searches run at once, and a new one starts
  no sooner than ``60 / rate_per_min`` seconds after the last one started.
* **At rest.** The worker hands each prime back to the node process, which seals it
  through the node's custody like a key share (AES-256-GCM under a data key its
  backend wraps: passphrase keyring, KMS or attested release) under the address
  ``prime-pool/safe-primes/<id>/<party>``. No prime is ever written in plaintext.
* **Used once.** Taking a prime opens revision 1 of its address, writes revision 2 (a
  sealed "taken" marker, with optimistic concurrency: two takers cannot both win),
  deletes revision 1 and only then returns the prime. A crash after the marker but
  before the delete leaves a taken prime that :class:`PrimePool` deletes when it next
  opens the store; a prime is never handed out twice.
* **Test-only primes.** A node started with ``--unsafe-test-only-primes`` fills its
  pool from that fixture of PUBLISHED primes instead of searching, and marks every such
  entry test-only (in its address and in its sealed content); only a test-only node
  takes them, and every key made from them says ``test_only``. A node without the flag
  ignores test-only entries.

The pool's size, rate and workers are the ``cosigner run`` flags
``--prime-pool-size``, ``--prime-pool-rate`` and ``--prime-pool-workers``;
:meth:`PrimePool.status` is what the node reports with each poll (``shardvault
cosigners list`` shows it).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import forkserver
from pathlib import Path

from shardvault.cosigner.single_use import SingleUseStore
from shardvault.cosigner.state import NodeCustody
from shardvault.crypto.paillier import MIN_MODULUS_BITS
from shardvault.crypto.primes import MIN_PRIME_BITS, generate_safe_prime, is_safe_prime
from shardvault.crypto.rng import system_random
from shardvault.custody.errors import CustodyError, StoreError
from shardvault.custody.secret import SecretBytes

log = logging.getLogger("shardvault.cosigner.prime_pool")

POOL_WORKSPACE = "prime-pool"
"""The custody namespace of pooled primes (never a workspace id: those are UUIDs, so a
backup of a workspace's shares leaves the pool out)."""

POOL_VAULT = "safe-primes"

PRIME_BITS = MIN_MODULUS_BITS // 2
"""Two of these make a 2048-bit Paillier-Blum modulus."""

POOL_PRIME = b"shardvault/cosigner/pool/safe-prime/v1\x00"
"""Prefix of a sealed pooled prime."""

POOL_TAKEN = b"shardvault/cosigner/pool/taken/v1\x00"
"""The sealed content of a taken prime's second revision."""

_SAFE, _TEST_ONLY = "safe", "test-only"


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """How many primes a co-signer keeps ready and how fast it makes them.

    ``size`` primes are kept sealed (each ECDSA key takes two; 0 turns the pool off);
    at most ``workers`` searches run at once, started no more often than
    ``rate_per_min`` a minute; ``bits`` is the prime length (1024 outside unit tests).
    """

    size: int = 8
    rate_per_min: float = 12.0
    workers: int = 1
    bits: int = PRIME_BITS

    def __post_init__(self) -> None:
        if not 0 <= self.size <= 10_000:
            raise ValueError("the prime pool size must be between 0 and 10000")
        if not 0 < self.rate_per_min <= 6000:
            raise ValueError("the prime pool rate must be above 0 and at most 6000 a minute")
        if not 1 <= self.workers <= 64:
            raise ValueError("the prime pool needs 1 to 64 workers")
        if self.bits < MIN_PRIME_BITS:
            raise ValueError(f"pooled primes have at least {MIN_PRIME_BITS} bits")


@dataclass(frozen=True, slots=True)
class PooledPair:
    """Two distinct safe primes taken from the pool (each removed from it)."""

    p: int
    q: int
    test_only: bool

    def __repr__(self) -> str:
        return f"PooledPair(test_only={self.test_only}, <redacted>)"


def _idle_priority() -> None:
    """Run this worker process only when the CPU is otherwise idle."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return
    except (AttributeError, OSError):
        pass
    try:
        os.nice(19)
    except OSError:
        pass


def _search(bits: int) -> int:
    """One safe prime of ``bits`` bits (in a worker process)."""
    return generate_safe_prime(bits, system_random)


def _fixture_primes(path: Path, bits: int) -> list[int]:
    """The TEST-ONLY fixture's primes of ``bits`` bits, in file order (p, q, p, q...).

    Raises:
        ValueError: not a test-only fixture, or unreadable.
    """
    try:
        document = json.loads(Path(path).read_text("utf-8"))
        if "TEST ONLY" not in str(document.get("warning", "")):
            raise ValueError(f"{path} is not a test-only prime fixture")
        pairs = document["moduli"][str(2 * bits)]
        return [int(pair[name], 16) for pair in pairs for name in ("p", "q")]
    except (OSError, KeyError, TypeError) as exc:
        raise ValueError("the test-only prime fixture is unreadable") from exc


class PrimePool:
    """The pool of one co-signer (module docstring).

    Every custody operation (sealing, taking) runs on the calling thread, which is the
    node's loop: :meth:`seal_found` there moves what the workers found into custody.
    The background thread only schedules searches and collects their results.

    Security: a found prime waits in memory until :meth:`seal_found`; a taken one is the
    caller's. Nothing here logs a prime.
    """

    def __init__(
        self,
        custody: NodeCustody,
        party: int,
        settings: PoolSettings,
        *,
        test_only_primes: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = SingleUseStore(custody, POOL_WORKSPACE, POOL_VAULT, str(party), POOL_TAKEN)
        self._party = str(party)
        self.settings = settings
        self._test_only = test_only_primes is not None
        self._kind = _TEST_ONLY if self._test_only else _SAFE
        self._fixture = _fixture_primes(test_only_primes, settings.bits) if test_only_primes else []
        # Each party starts at its own place in the fixture, so that parties (and
        # successive keys of one party) get different published moduli.
        self._fixture_next = (4 * (party - 1) * 2) % len(self._fixture) if self._fixture else 0
        self._clock = clock
        self._lock = threading.Condition()
        self._found: list[int] = []
        self._pending = 0
        self._sealing = 0
        self._next_start = 0.0
        self._made = 0
        self._taken = 0
        self._error: str | None = None
        self._closing = False
        self._thread: threading.Thread | None = None
        self._executor: ProcessPoolExecutor | None = None
        self._ready: list[str] = self._open_store()

    def __repr__(self) -> str:
        return f"PrimePool(party={self._party}, size={self.settings.size}, <redacted>)"

    # --- The store ------------------------------------------------------------------

    def _open_store(self) -> list[str]:
        """The ready entries of this node's kind, oldest first (a take a crash
        interrupted is finished: :meth:`.SingleUseStore.ready`)."""
        return sorted(k for k in self._store.ready() if k.startswith(self._kind + "-"))

    def _new_key_id(self) -> str:
        # Time first, so that sorted ids are oldest first (the order primes are taken).
        return f"{self._kind}-{self.settings.bits}-{time.time_ns():016x}-{secrets.token_hex(4)}"

    def _seal(self, prime: int) -> None:
        key_id = self._new_key_id()
        document = json.dumps(
            {"bits": self.settings.bits, "prime": format(prime, "x"), "test_only": self._test_only}
        ).encode()
        with SecretBytes(POOL_PRIME + document) as plaintext:
            self._store.seal(key_id, plaintext)
        self._ready.append(key_id)

    def seal_found(self) -> int:
        """Seal every prime the workers found (and, for a test-only node, copy fixture
        primes up to the pool's size). Returns how many were sealed."""
        with self._lock:
            found, self._found = self._found, []
            # Still counted as on their way while sealed, so the filler does not search
            # for their places again.
            self._sealing += len(found)
        sealed = 0
        try:
            for prime in found:
                self._seal(prime)
                sealed += 1
            while self._fixture and len(self._ready) < self.settings.size:
                self._seal(self._fixture[self._fixture_next])
                self._fixture_next = (self._fixture_next + 1) % len(self._fixture)
                sealed += 1
        except CustodyError as exc:
            log.warning("prime pool: cannot seal a prime: %s", type(exc).__name__)
            with self._lock:
                self._error = f"sealing failed: {type(exc).__name__}"
        with self._lock:
            self._sealing -= len(found)
            self._made += sealed
            self._lock.notify_all()
        return sealed

    def _take_one(self) -> int | None:
        while self._ready:
            key_id = self._ready.pop(0)
            try:
                # Marked taken, then the prime deleted, and only then used.
                plaintext = self._store.take(key_id)
            except StoreError:
                continue  # taken meanwhile, or gone: never use it
            if not plaintext.startswith(POOL_PRIME):
                continue
            try:
                document = json.loads(plaintext[len(POOL_PRIME) :])
                prime = int(document["prime"], 16)
                if bool(document["test_only"]) != self._test_only:
                    continue
            except (ValueError, KeyError, TypeError):
                continue
            with self._lock:
                self._taken += 1
                self._lock.notify_all()
            return prime
        return None

    def take_pair(self) -> PooledPair | None:
        """Two primes for one Paillier key, each removed from the store before it is
        returned; ``None`` when fewer than two are ready (the caller then searches)."""
        self.seal_found()
        if len(self._ready) < 2:
            return None
        p = self._take_one()
        q = self._take_one()
        while p is not None and q is not None and p == q:
            q = self._take_one()
        if p is None or q is None:
            return None
        return PooledPair(p, q, self._test_only)

    @property
    def ready(self) -> int:
        """Primes sealed and ready (of this node's kind)."""
        return len(self._ready)

    @property
    def test_only(self) -> bool:
        return self._test_only

    def status(self) -> dict[str, object]:
        """What the node reports about its pool (small: it goes with every poll)."""
        with self._lock:
            status: dict[str, object] = {
                "ready": len(self._ready),
                "size": self.settings.size,
                "searching": self._pending,
                "rate_per_min": self.settings.rate_per_min,
                "workers": self.settings.workers,
                "made": self._made,
                "taken": self._taken,
                "test_only": self._test_only,
            }
            if self._error is not None:
                status["error"] = self._error
        return status

    # --- The background search ------------------------------------------------------

    def start(self) -> None:
        """Start filling in the background (a test-only pool fills in :meth:`seal_found`,
        with no search)."""
        if self._test_only or self.settings.size == 0 or self._thread is not None:
            return
        try:
            # The fork server (and its resource tracker) start here, on the caller's
            # thread, before any search: a key generation that must search itself uses
            # the same fork server, and two threads starting it at once is a race.
            forkserver.ensure_running()
            self._executor = ProcessPoolExecutor(
                max_workers=self.settings.workers,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=_idle_priority,
            )
        except OSError as exc:
            with self._lock:
                self._error = f"no worker process: {exc.strerror}"
            return
        self._thread = threading.Thread(target=self._fill, name="prime-pool", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop filling; a search under way is abandoned."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _wanted(self) -> int:
        """How many more searches to start now (under the lock)."""
        on_the_way = len(self._found) + self._sealing + self._pending
        missing = self.settings.size - len(self._ready) - on_the_way
        return max(0, min(missing, self.settings.workers - self._pending))

    def _fill(self) -> None:
        executor = self._executor
        assert executor is not None
        interval = 60.0 / self.settings.rate_per_min
        while True:
            with self._lock:
                if self._closing:
                    return
                now = self._clock()
                if self._wanted() > 0 and now >= self._next_start:
                    self._pending += 1
                    self._next_start = now + interval
                    submit = True
                else:
                    submit = False
                    wait = 1.0 if self._wanted() == 0 else max(self._next_start - now, 0.01)
                    self._lock.wait(min(wait, 1.0))
            if submit:
                try:
                    future = executor.submit(_search, self.settings.bits)
                except (RuntimeError, OSError) as exc:
                    with self._lock:
                        self._pending -= 1
                        self._error = f"search failed to start: {type(exc).__name__}"
                    return
                future.add_done_callback(self._collect)

    def _collect(self, future: Future[int]) -> None:
        prime = None
        if not future.cancelled() and future.exception() is None:
            candidate = future.result()
            # Checked here too: a worker's answer is sealed only as a safe prime.
            if candidate.bit_length() == self.settings.bits and is_safe_prime(candidate):
                prime = candidate
        with self._lock:
            self._pending -= 1
            if prime is not None:
                self._found.append(prime)
            self._lock.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait (sealing as primes come) until ``predicate()`` holds; for tools and tests."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._lock:
                if not self._found:
                    self._lock.wait(min(remaining, 0.2))
            self.seal_found()
        return True
