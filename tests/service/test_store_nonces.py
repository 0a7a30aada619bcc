"""The store-backed nonce allocator (DESIGN.md invariant 6) on SQLite and PostgreSQL:
no reuse and no gap under 200 concurrent allocations, released nonces reused first,
state kept across a restart (a new engine on the same database), typed errors on misuse.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event

from shardvault.chains.errors import InvalidAddressError
from shardvault.service import nonce_store
from shardvault.service.nonce_store import StoreNonceAllocator
from shardvault.service.nonces import NonceError
from shardvault.store import Database
from shardvault.store.models_vaults import NonceState
from shardvault.store.repositories_vaults import NonceLedger

CHAIN = 31337
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_200_concurrent_allocations_are_distinct_and_consecutive(database: Database) -> None:
    allocator = StoreNonceAllocator(database)
    with ThreadPoolExecutor(max_workers=40) as pool:
        nonces = list(pool.map(lambda _: allocator.allocate(CHAIN, ADDRESS), range(200)))
    assert sorted(nonces) == list(range(200))


def test_checksummed_and_lowercase_spellings_share_one_account(database: Database) -> None:
    allocator = StoreNonceAllocator(database)
    assert allocator.allocate(CHAIN, ADDRESS) == 0
    assert allocator.allocate(CHAIN, ADDRESS.lower()) == 1
    assert allocator.allocate(1, ADDRESS) == 0  # another chain, another account


def test_released_nonce_is_reused_before_a_fresh_one(database: Database) -> None:
    allocator = StoreNonceAllocator(database)
    first, second, third = (allocator.allocate(CHAIN, ADDRESS) for _ in range(3))
    allocator.confirm(CHAIN, ADDRESS, first)
    allocator.release(CHAIN, ADDRESS, second)
    assert allocator.allocate(CHAIN, ADDRESS) == second
    assert allocator.allocate(CHAIN, ADDRESS) == third + 1


def test_state_survives_a_restart(database: Database) -> None:
    allocator = StoreNonceAllocator(database)
    for _ in range(3):
        allocator.allocate(CHAIN, ADDRESS)
    allocator.release(CHAIN, ADDRESS, 1)
    restarted = Database(database.url)
    try:
        again = StoreNonceAllocator(restarted)
        assert again.allocate(CHAIN, ADDRESS) == 1
        assert again.allocate(CHAIN, ADDRESS) == 3
        # A nonce in flight before the restart is still reserved: it cannot be released twice.
        again.release(CHAIN, ADDRESS, 1)
        with pytest.raises(NonceError, match="nonce"):
            again.release(CHAIN, ADDRESS, 1)
    finally:
        restarted.dispose()


def test_chain_nonce_skips_ahead_and_drops_released_ones_below_it(database: Database) -> None:
    allocator = StoreNonceAllocator(database)
    for _ in range(2):
        allocator.allocate(CHAIN, ADDRESS)
    allocator.release(CHAIN, ADDRESS, 0)
    allocator.observe_chain_nonce(CHAIN, ADDRESS, 5)
    assert allocator.allocate(CHAIN, ADDRESS) == 5


def test_misuse_is_a_typed_error_and_changes_nothing(database: Database) -> None:
    allocator = StoreNonceAllocator(database)
    with pytest.raises(NonceError, match="nonce"):
        allocator.confirm(CHAIN, ADDRESS, 7)
    with pytest.raises(NonceError, match="nonce"):
        allocator.release(CHAIN, ADDRESS, -1)
    with pytest.raises(NonceError, match="nonce"):
        allocator.observe_chain_nonce(CHAIN, ADDRESS, 2**64)
    with pytest.raises(InvalidAddressError):
        allocator.allocate(CHAIN, "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266")  # bad checksum
    assert allocator.allocate(CHAIN, ADDRESS) == 0


def test_one_transaction_allocating_many_still_reuses_what_it_released(
    database: Database,
) -> None:
    """A batch allocates several nonces in one database transaction; the ledger skips
    the look-up for released nonces after finding none, and the delete below the
    chain's count after doing it once, but a release in the same transaction brings
    both back."""
    StoreNonceAllocator(database).allocate(CHAIN, ADDRESS)  # nonce 0, committed
    with database.transaction() as session:
        NonceLedger(session).observe(*nonce_store.account_key(CHAIN, ADDRESS), 2)
        assert [nonce_store.allocate_in(session, CHAIN, ADDRESS) for _ in range(3)] == [2, 3, 4]
        nonce_store.settle_in(session, CHAIN, ADDRESS, 3, NonceState.RELEASED)
        assert nonce_store.allocate_in(session, CHAIN, ADDRESS) == 3
        nonce_store.settle_in(session, CHAIN, ADDRESS, 4, NonceState.RELEASED)
        # The same count again keeps nonce 4 (it is not below 2); a higher one (the chain
        # moved past 4) drops it, even in this transaction.
        NonceLedger(session).observe(*nonce_store.account_key(CHAIN, ADDRESS), 2)
        assert nonce_store.state_in(session, CHAIN, ADDRESS, 4) is NonceState.RELEASED
        NonceLedger(session).observe(*nonce_store.account_key(CHAIN, ADDRESS), 5)
        assert nonce_store.state_in(session, CHAIN, ADDRESS, 4) is None
        assert nonce_store.allocate_in(session, CHAIN, ADDRESS) == 5
    # The next transaction looks again: a nonce released since is reused first.
    allocator = StoreNonceAllocator(database)
    allocator.release(CHAIN, ADDRESS, 5)
    assert allocator.allocate(CHAIN, ADDRESS) == 5
    assert allocator.allocate(CHAIN, ADDRESS) == 6


def test_a_batch_settles_prefetched_nonces_without_reading_each(database: Database) -> None:
    """``prefetch`` reads the allocations a batch will settle in one query under the
    account's lock; each settle then uses that row (no query of its own), still
    refuses a nonce that is not in flight, and the changes commit together."""
    allocator = StoreNonceAllocator(database)
    for _ in range(4):
        allocator.allocate(CHAIN, ADDRESS)
    allocator.confirm(CHAIN, ADDRESS, 2)
    selects: list[str] = []

    def count(conn: object, cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "nonce_allocations" in statement:
            selects.append(statement)

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        with database.transaction() as session:
            nonce_store.prefetch_in(session, CHAIN, ADDRESS, [0, 1, 2, 7])
            assert len(selects) == 1
            confirmed = NonceState.CONFIRMED
            assert nonce_store.settle_if_in_flight(session, CHAIN, ADDRESS, 0, confirmed)
            assert nonce_store.settle_if_in_flight(session, CHAIN, ADDRESS, 1, confirmed)
            assert not nonce_store.settle_if_in_flight(session, CHAIN, ADDRESS, 2, confirmed)
            assert not nonce_store.settle_if_in_flight(session, CHAIN, ADDRESS, 7, confirmed)
            # Settled once in this transaction: not in flight any more.
            assert not nonce_store.settle_if_in_flight(session, CHAIN, ADDRESS, 0, confirmed)
            assert len(selects) == 1
            # A nonce not prefetched is read on its own.
            assert nonce_store.settle_if_in_flight(session, CHAIN, ADDRESS, 3, NonceState.RELEASED)
            assert len(selects) == 2
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
    with database.transaction() as session:
        states = [nonce_store.state_in(session, CHAIN, ADDRESS, n) for n in range(5)]
    assert states == [confirmed, confirmed, confirmed, NonceState.RELEASED, None]
    assert allocator.allocate(CHAIN, ADDRESS) == 3  # the released one first
