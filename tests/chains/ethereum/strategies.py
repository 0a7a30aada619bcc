"""Hypothesis strategies for Ethereum transactions within the protocol's ranges."""

from __future__ import annotations

from hypothesis import strategies as st

from shardvault.chains.amounts import UINT256_MAX, Wei
from shardvault.chains.ethereum import (
    AccessListEntry,
    AccessListTransaction,
    Address,
    FeeMarketTransaction,
    LegacyTransaction,
    Transaction,
)
from shardvault.chains.ethereum.models import (
    MAX_CHAIN_ID,
    MAX_NONCE,
    SECP256K1_ORDER,
    UINT64_MAX,
)

addresses = st.binary(min_size=20, max_size=20).map(Address)
wei = st.integers(0, UINT256_MAX).map(Wei)
chain_ids = st.integers(1, MAX_CHAIN_ID)
nonces = st.integers(0, MAX_NONCE)
gas_limits = st.integers(0, UINT64_MAX)
recipients = st.none() | addresses
calldata = st.binary(max_size=300)
access_lists = st.lists(
    st.builds(
        AccessListEntry,
        addresses,
        st.lists(st.binary(min_size=32, max_size=32), max_size=3).map(tuple),
    ),
    max_size=3,
).map(tuple)

legacy = st.builds(
    LegacyTransaction,
    chain_id=st.none() | chain_ids,
    nonce=nonces,
    gas_price=wei,
    gas_limit=gas_limits,
    to=recipients,
    value=wei,
    data=calldata,
)
access_list_txs = st.builds(
    AccessListTransaction,
    chain_id=chain_ids,
    nonce=nonces,
    gas_price=wei,
    gas_limit=gas_limits,
    to=recipients,
    value=wei,
    data=calldata,
    access_list=access_lists,
)


@st.composite
def fee_market_txs(draw: st.DrawFn) -> FeeMarketTransaction:
    """EIP-1559 transactions whose tip never exceeds their fee cap."""
    fee_cap = draw(wei)
    tip = draw(st.integers(0, fee_cap))
    return FeeMarketTransaction(
        chain_id=draw(chain_ids),
        nonce=draw(nonces),
        max_priority_fee_per_gas=Wei(tip),
        max_fee_per_gas=fee_cap,
        gas_limit=draw(gas_limits),
        to=draw(recipients),
        value=draw(wei),
        data=draw(calldata),
        access_list=draw(access_lists),
    )


transactions: st.SearchStrategy[Transaction] = st.one_of(legacy, access_list_txs, fee_market_txs())

# Test-only private keys: any scalar in [1, n - 1].
test_only_keys = st.integers(1, SECP256K1_ORDER - 1).map(lambda k: k.to_bytes(32, "big"))
