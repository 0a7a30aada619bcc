"""Per-(chain, address) nonce allocation without gaps or reuse (DESIGN.md invariant 6).

An account nonce must be used exactly once and in order: a reused nonce makes two
transactions compete (one is dropped, or worse, replaces the other), and a skipped nonce
stalls every later transaction of the account. The allocator hands out nonces under
these rules:

- :meth:`NonceAllocator.allocate` returns the lowest nonce that is neither in flight nor
  spent: first any released nonce, else the next fresh one.
- :meth:`NonceAllocator.confirm` records that the transaction using the nonce was
  broadcast (or otherwise committed to); it is spent and never handed out again.
- :meth:`NonceAllocator.release` returns a nonce whose transaction will never be
  broadcast (policy refused it, signing failed); the next allocation reuses it, so no
  gap is left behind.
- :meth:`NonceAllocator.observe_chain_nonce` feeds in the node's pending nonce, so nonces
  the account used elsewhere (or before a restart) are never handed out.

A nonce that was allocated but neither confirmed nor released stays reserved: handing it
out again could sign two transactions with one nonce. Recovering such a nonce is a
decision (did the broadcast happen?) that belongs to the caller, which then confirms or
releases it. Likewise a confirmed nonce whose transaction the network later drops is
never handed out again: the caller re-broadcasts the same signed bytes, or replaces them
with a transaction of the same nonce and a higher fee.

The in-memory implementation here serves tests and single-process tools; the store-backed
implementation that survives restarts follows the same protocol.
"""

from __future__ import annotations

import heapq
import threading
from dataclasses import dataclass, field
from typing import Protocol

from shardvault.chains.ethereum import parse_address
from shardvault.chains.ethereum.models import MAX_NONCE, check_chain_id
from shardvault.errors import ShardvaultError


class NonceError(ShardvaultError):
    """A misuse of the nonce allocator: confirming or releasing a nonce it did not hand
    out, or exhausting an account's nonces."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class NonceAllocator(Protocol):
    """Hands out account nonces so that none is reused or skipped."""

    def allocate(self, chain_id: int, address: str) -> int:
        """Reserve and return the lowest nonce available for ``address`` on ``chain_id``."""
        ...

    def confirm(self, chain_id: int, address: str, nonce: int) -> None:
        """Mark an allocated nonce as spent (its transaction was broadcast)."""
        ...

    def release(self, chain_id: int, address: str, nonce: int) -> None:
        """Give back an allocated nonce whose transaction will never be broadcast."""
        ...

    def observe_chain_nonce(self, chain_id: int, address: str, pending_nonce: int) -> None:
        """Tell the allocator the node's pending nonce (``eth_getTransactionCount``)."""
        ...


@dataclass(slots=True)
class _AccountState:
    """Bookkeeping for one (chain id, address)."""

    next_fresh: int = 0
    released: list[int] = field(default_factory=list)
    in_flight: set[int] = field(default_factory=set)


def _key(chain_id: int, address: str) -> tuple[int, bytes]:
    """Normalise the account key so that checksummed and lowercase spellings coincide.

    Raises:
        InvalidFieldError, InvalidAddressError: a bad chain id or address.
    """
    check_chain_id(chain_id)
    return chain_id, parse_address(address).raw


def _check_nonce(nonce: int) -> None:
    if not isinstance(nonce, int) or isinstance(nonce, bool) or not 0 <= nonce <= MAX_NONCE:
        raise NonceError(f"must be an integer between 0 and {MAX_NONCE}", field="nonce")


class InMemoryNonceAllocator:
    """A thread-safe :class:`NonceAllocator` kept in process memory (lost on restart).

    One lock guards all accounts; each operation is a few dictionary and heap steps, so
    contention stays negligible next to signing and broadcasting.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[tuple[int, bytes], _AccountState] = {}

    def _state(self, chain_id: int, address: str) -> _AccountState:
        return self._accounts.setdefault(_key(chain_id, address), _AccountState())

    def allocate(self, chain_id: int, address: str) -> int:
        """Reserve the lowest released nonce, or else the next fresh one.

        Raises:
            NonceError: the account has no nonce left below 2**64 - 1 (EIP-2681).
            InvalidFieldError, InvalidAddressError: a bad chain id or address.
        """
        with self._lock:
            state = self._state(chain_id, address)
            if state.released:
                nonce = heapq.heappop(state.released)
            else:
                if state.next_fresh > MAX_NONCE:
                    raise NonceError("the account's nonces are exhausted", field="nonce")
                nonce = state.next_fresh
                state.next_fresh += 1
            state.in_flight.add(nonce)
            return nonce

    def confirm(self, chain_id: int, address: str, nonce: int) -> None:
        """Mark ``nonce`` spent.

        Raises:
            NonceError: ``nonce`` is not currently allocated (never handed out, already
                confirmed or released).
        """
        _check_nonce(nonce)
        with self._lock:
            state = self._state(chain_id, address)
            if nonce not in state.in_flight:
                raise NonceError("was not allocated or is already settled", field="nonce")
            state.in_flight.discard(nonce)

    def release(self, chain_id: int, address: str, nonce: int) -> None:
        """Return ``nonce`` so the next allocation reuses it.

        Raises:
            NonceError: ``nonce`` is not currently allocated.
        """
        _check_nonce(nonce)
        with self._lock:
            state = self._state(chain_id, address)
            if nonce not in state.in_flight:
                raise NonceError("was not allocated or is already settled", field="nonce")
            state.in_flight.discard(nonce)
            heapq.heappush(state.released, nonce)

    def observe_chain_nonce(self, chain_id: int, address: str, pending_nonce: int) -> None:
        """Skip past nonces the chain already counts (used outside this allocator).

        Released nonces below ``pending_nonce`` are dropped: the chain consumed them.
        Raises:
            NonceError: ``pending_nonce`` is not a valid nonce.
        """
        _check_nonce(pending_nonce)
        with self._lock:
            state = self._state(chain_id, address)
            if pending_nonce > state.next_fresh:
                state.next_fresh = pending_nonce
            state.released = [n for n in state.released if n >= pending_nonce]
            heapq.heapify(state.released)
