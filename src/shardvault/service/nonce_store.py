"""The store-backed :class:`~shardvault.service.nonces.NonceAllocator` (DESIGN.md
invariant 6): nonces per (chain, address) with no reuse and no gap, across concurrent
requests, processes and restarts.

The rules are those of :mod:`shardvault.service.nonces`; the state lives in the
``nonce_counters`` and ``nonce_allocations`` tables. Each operation locks the account's
counter row (``SELECT ... FOR UPDATE`` on PostgreSQL, the write lock of ``BEGIN
IMMEDIATE`` on SQLite) so that concurrent allocators of one account run one at a time.

The pipeline calls :func:`allocate_in` / :func:`settle_if_in_flight` inside its own unit of work,
so that a nonce is allocated in the same database transaction that records it on the
transaction: a crash can never leave a nonce allocated but unrecorded (a gap).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from shardvault.chains.ethereum import parse_address
from shardvault.chains.ethereum.models import MAX_NONCE, check_chain_id
from shardvault.service.nonces import NonceError
from shardvault.store import Database
from shardvault.store.models_vaults import NonceState
from shardvault.store.repositories_vaults import NonceLedger


def account_key(chain_id: int, address: str) -> tuple[str, str]:
    """``("evm:<chain id>", lowercase hex address)``: checksummed and lowercase
    spellings of one address share one account.

    Raises:
        InvalidFieldError, InvalidAddressError: a bad chain id or address.
    """
    check_chain_id(chain_id)
    return f"evm:{chain_id}", "0x" + parse_address(address).raw.hex()


def _check_nonce(nonce: int) -> None:
    if not isinstance(nonce, int) or isinstance(nonce, bool) or not 0 <= nonce <= MAX_NONCE:
        raise NonceError(f"must be an integer between 0 and {MAX_NONCE}", field="nonce")


def allocate_in(session: Session, chain_id: int, address: str) -> int:
    """Allocate on ``session`` (the caller commits).

    Raises:
        NonceError: the account's nonces are exhausted.
    """
    chain, account = account_key(chain_id, address)
    nonce = NonceLedger(session).allocate(chain, account, MAX_NONCE)
    if nonce is None:
        raise NonceError("the account's nonces are exhausted", field="nonce")
    return nonce


def settle_in(session: Session, chain_id: int, address: str, nonce: int, state: NonceState) -> None:
    """Confirm or release on ``session`` (the caller commits).

    Raises:
        NonceError: ``nonce`` is not in flight.
    """
    _check_nonce(nonce)
    chain, account = account_key(chain_id, address)
    if not NonceLedger(session).settle(chain, account, nonce, state):
        raise NonceError("was not allocated or is already settled", field="nonce")


def settle_if_in_flight(
    session: Session, chain_id: int, address: str, nonce: int, state: NonceState
) -> bool:
    """Confirm or release on ``session`` if ``nonce`` is in flight; whether it was."""
    _check_nonce(nonce)
    chain, account = account_key(chain_id, address)
    return NonceLedger(session).settle(chain, account, nonce, state)


def prefetch_in(session: Session, chain_id: int, address: str, nonces: Sequence[int]) -> None:
    """Read the allocations of ``nonces`` at once for this transaction's settle calls."""
    chain, account = account_key(chain_id, address)
    NonceLedger(session).prefetch(chain, account, nonces)


def state_in(session: Session, chain_id: int, address: str, nonce: int) -> NonceState | None:
    """Where ``nonce`` stands, or ``None`` if it was never handed out."""
    chain, account = account_key(chain_id, address)
    return NonceLedger(session).state_of(chain, account, nonce)


class StoreNonceAllocator:
    """A :class:`~shardvault.service.nonces.NonceAllocator` whose every call is one
    database transaction of its own."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def allocate(self, chain_id: int, address: str) -> int:
        """Reserve the lowest released nonce, or else the next fresh one.

        Raises:
            NonceError: the account's nonces are exhausted.
            InvalidFieldError, InvalidAddressError: a bad chain id or address.
        """
        with self._database.transaction() as session:
            return allocate_in(session, chain_id, address)

    def confirm(self, chain_id: int, address: str, nonce: int) -> None:
        """Mark ``nonce`` spent.

        Raises:
            NonceError: ``nonce`` is not in flight.
        """
        with self._database.transaction() as session:
            settle_in(session, chain_id, address, nonce, NonceState.CONFIRMED)

    def release(self, chain_id: int, address: str, nonce: int) -> None:
        """Return ``nonce`` so that the next allocation reuses it.

        Raises:
            NonceError: ``nonce`` is not in flight.
        """
        with self._database.transaction() as session:
            settle_in(session, chain_id, address, nonce, NonceState.RELEASED)

    def observe_chain_nonce(self, chain_id: int, address: str, pending_nonce: int) -> None:
        """Skip past nonces the chain already counts.

        Raises:
            NonceError: ``pending_nonce`` is not a valid nonce.
        """
        _check_nonce(pending_nonce)
        chain, account = account_key(chain_id, address)
        with self._database.transaction() as session:
            NonceLedger(session).observe(chain, account, pending_nonce)
