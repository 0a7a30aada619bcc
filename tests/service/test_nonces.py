"""The in-memory nonce allocator: no nonce reused or skipped, under concurrency too."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardvault.chains.errors import InvalidAddressError
from shardvault.chains.ethereum import InvalidFieldError
from shardvault.service.nonces import InMemoryNonceAllocator, NonceAllocator, NonceError

ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
OTHER = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"


def test_satisfies_the_protocol() -> None:
    allocator: NonceAllocator = InMemoryNonceAllocator()
    assert allocator.allocate(1, ADDRESS) == 0


def test_200_threads_get_200_distinct_consecutive_nonces() -> None:
    allocator = InMemoryNonceAllocator()
    barrier = threading.Barrier(200)

    def worker(_: int) -> int:
        barrier.wait()
        return allocator.allocate(1, ADDRESS)

    with ThreadPoolExecutor(max_workers=200) as pool:
        nonces = list(pool.map(worker, range(200)))
    assert sorted(nonces) == list(range(200))


def test_concurrent_allocate_release_confirm_leaves_no_gap_or_reuse() -> None:
    """Half the workers release their nonce (signing failed) and the others confirm; at
    the end the confirmed nonces are exactly 0..k-1 once each after refilling releases."""
    allocator = InMemoryNonceAllocator()
    confirmed: list[int] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        nonce = allocator.allocate(5, ADDRESS)
        if i % 2:
            allocator.release(5, ADDRESS, nonce)
            nonce = allocator.allocate(5, ADDRESS)
        allocator.confirm(5, ADDRESS, nonce)
        with lock:
            confirmed.append(nonce)

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(worker, range(200)))
    assert sorted(confirmed) == list(range(200))
    assert allocator.allocate(5, ADDRESS) == 200


def test_released_nonce_is_reused_first_and_lowest_first() -> None:
    allocator = InMemoryNonceAllocator()
    n0, n1, n2 = (allocator.allocate(1, ADDRESS) for _ in range(3))
    allocator.confirm(1, ADDRESS, n0)
    allocator.release(1, ADDRESS, n2)
    allocator.release(1, ADDRESS, n1)
    assert allocator.allocate(1, ADDRESS) == 1
    assert allocator.allocate(1, ADDRESS) == 2
    assert allocator.allocate(1, ADDRESS) == 3


def test_accounts_and_chains_are_independent_and_spelling_insensitive() -> None:
    allocator = InMemoryNonceAllocator()
    assert allocator.allocate(1, ADDRESS) == 0
    assert allocator.allocate(1, ADDRESS.lower()) == 1
    assert allocator.allocate(1, OTHER) == 0
    assert allocator.allocate(10, ADDRESS) == 0


def test_observed_chain_nonce_skips_used_nonces_and_drops_stale_releases() -> None:
    allocator = InMemoryNonceAllocator()
    nonce = allocator.allocate(1, ADDRESS)
    allocator.release(1, ADDRESS, nonce)
    allocator.observe_chain_nonce(1, ADDRESS, 7)
    assert allocator.allocate(1, ADDRESS) == 7
    # A lower chain nonce (a node lagging behind) never moves the allocator back.
    allocator.observe_chain_nonce(1, ADDRESS, 3)
    assert allocator.allocate(1, ADDRESS) == 8


def test_settling_a_nonce_twice_or_one_never_allocated_is_refused() -> None:
    allocator = InMemoryNonceAllocator()
    nonce = allocator.allocate(1, ADDRESS)
    allocator.confirm(1, ADDRESS, nonce)
    with pytest.raises(NonceError) as info:
        allocator.confirm(1, ADDRESS, nonce)
    assert info.value.field == "nonce"
    with pytest.raises(NonceError):
        allocator.release(1, ADDRESS, nonce)
    with pytest.raises(NonceError):
        allocator.release(1, ADDRESS, 99)
    with pytest.raises(NonceError):
        allocator.confirm(1, ADDRESS, -1)
    with pytest.raises(NonceError):
        allocator.observe_chain_nonce(1, ADDRESS, 2**64)
    # Refused calls changed nothing.
    assert allocator.allocate(1, ADDRESS) == 1


def test_bad_account_keys_are_typed_errors() -> None:
    allocator = InMemoryNonceAllocator()
    with pytest.raises(InvalidAddressError):
        allocator.allocate(1, ADDRESS[:-1] + "D")
    with pytest.raises(InvalidFieldError) as info:
        allocator.allocate(0, ADDRESS)
    assert info.value.field == "chain_id"


@given(st.lists(st.sampled_from(["allocate", "confirm", "release"]), max_size=60), st.randoms())
@settings(max_examples=200)
def test_model_no_reuse_no_gap(ops: list[str], rnd: object) -> None:
    """Against a simple model: confirmed nonces are distinct, and at any point the
    confirmed plus in-flight nonces plus the released pool cover 0..next-1 exactly."""
    allocator = InMemoryNonceAllocator()
    in_flight: list[int] = []
    confirmed: set[int] = set()
    released: set[int] = set()
    highest = -1
    for op in ops:
        if op == "allocate" or not in_flight:
            nonce = allocator.allocate(1, ADDRESS)
            assert nonce not in confirmed
            assert nonce not in in_flight
            if released:
                assert nonce == min(released)
                released.discard(nonce)
            else:
                assert nonce == highest + 1
            highest = max(highest, nonce)
            in_flight.append(nonce)
            continue
        nonce = in_flight.pop(rnd.randrange(len(in_flight)))  # type: ignore[attr-defined]
        if op == "confirm":
            allocator.confirm(1, ADDRESS, nonce)
            confirmed.add(nonce)
        else:
            allocator.release(1, ADDRESS, nonce)
            released.add(nonce)
        assert confirmed | set(in_flight) | released == set(range(highest + 1))
