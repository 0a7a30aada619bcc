"""Fuzz-style property tests: the parsers let only ChainError subclasses escape.

Inputs are random bytes, and mutations (byte flips, truncations, insertions) of valid
encodings so that the search reaches deep into the RLP and ABI structure.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shardvault.chains.errors import ChainError
from shardvault.chains.ethereum import (
    ERC20_FUNCTIONS,
    decode_call,
    describe,
    encode_call,
    encode_signed,
    encode_unsigned,
    function,
    parse_transaction,
    parse_typed_data,
    typed_data_hash,
)
from shardvault.chains.ethereum.signature import assemble
from tests.chains.ethereum.strategies import addresses, transactions


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "set"]))
        if op == "cut" and data:
            at = draw(st.integers(0, len(data)))
            data = data[:at]
        elif op == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] = (
                draw(st.integers(0, 255))
                if op == "set"
                else data[at] ^ 1 << draw(st.integers(0, 7))
            )
    return bytes(data)


def _signed_bytes(tx: object) -> bytes:
    # A fixed valid signature shape; it need not verify for this fuzz target.
    return encode_signed(assemble(tx, 1, 1, 0))  # type: ignore[arg-type]


valid_raw = st.one_of(
    transactions.map(encode_unsigned),
    transactions.map(_signed_bytes),
)


@given(st.one_of(st.binary(max_size=400), mutated(valid_raw)))
@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
def test_raw_transaction_parser_only_raises_chain_errors(raw: bytes) -> None:
    try:
        parse_transaction(raw)
    except ChainError:
        pass


@given(st.one_of(st.binary(max_size=200), mutated(valid_raw)))
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_describe_only_raises_chain_errors(raw: bytes) -> None:
    try:
        describe("0x" + raw.hex())
    except ChainError:
        pass


_NESTED = function("f(address,(uint8,bytes)[],string,int32[2],bytes4)")

valid_calldata = st.one_of(
    st.tuples(addresses, st.integers(0, 2**256 - 1)).map(
        lambda a: encode_call(ERC20_FUNCTIONS[0], list(a))
    ),
    st.tuples(
        addresses,
        st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=3),
        st.text(max_size=20),
        st.tuples(st.integers(-(2**31), 2**31 - 1), st.integers(-(2**31), 2**31 - 1)),
        st.binary(min_size=4, max_size=4),
    ).map(lambda a: encode_call(_NESTED, [a[0], tuple(a[1]), a[2], a[3], a[4]])),
)


@given(st.one_of(st.binary(max_size=300), mutated(valid_calldata)))
@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
def test_calldata_decoder_only_raises_chain_errors(data: bytes) -> None:
    try:
        decode_call(data, (*ERC20_FUNCTIONS, _NESTED))
    except ChainError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)


@given(
    st.fixed_dictionaries(
        {
            "types": st.dictionaries(
                st.sampled_from(["EIP712Domain", "Mail", "Person", "x"]),
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "name": st.sampled_from(["name", "wallet", "to", "n"]),
                            "type": st.sampled_from(
                                [
                                    "string",
                                    "address",
                                    "uint8",
                                    "Person",
                                    "Person[]",
                                    "bytes",
                                    "int256[2]",
                                    "Mail",
                                    "bool",
                                    "bytes3",
                                ]
                            ),
                        }
                    ),
                    max_size=3,
                ),
                max_size=4,
            ),
            "primaryType": st.sampled_from(["Mail", "Person", "EIP712Domain"]),
            "domain": st.dictionaries(
                st.sampled_from(["name", "wallet", "to", "n"]), json_values, max_size=3
            ),
            "message": st.dictionaries(
                st.sampled_from(["name", "wallet", "to", "n"]), json_values, max_size=3
            ),
        }
    )
)
@settings(max_examples=600)
def test_typed_data_only_raises_chain_errors(payload: dict[str, object]) -> None:
    try:
        typed_data_hash(parse_typed_data(payload))
    except ChainError:
        pass
