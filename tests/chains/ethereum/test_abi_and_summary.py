"""ABI calldata encoding/decoding, ERC-20 builders and transaction summaries.

The ERC-20 selectors are checked against EIP-20's well-known values
(transfer 0xa9059cbb, approve 0x095ea7b3, transferFrom 0x23b872dd, balanceOf 0x70a08231).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardvault.chains.amounts import Wei
from shardvault.chains.errors import DecodeError, InvalidAddressError, UnsupportedError
from shardvault.chains.ethereum import (
    ERC20_APPROVE,
    ERC20_TRANSFER,
    Address,
    FeeMarketTransaction,
    FeeParameters,
    InvalidFieldError,
    abi_value_to_json,
    contract_call,
    decode_call,
    encode_call,
    erc20_approve,
    erc20_transfer,
    function,
    functions_from_json_abi,
    native_transfer,
    parse_address,
    summarize,
)
from shardvault.chains.ethereum.abi import ERC20_BALANCE_OF, ERC20_TRANSFER_FROM
from tests.chains.ethereum.strategies import addresses

TOKEN_ARTIFACT = Path(__file__).resolve().parents[2] / "fixtures" / "erc20" / "TestToken.json"
TOKEN = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
ALICE = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
FEES = FeeParameters(Wei(2 * 10**9), Wei(10**9), 60000)


def test_erc20_selectors() -> None:
    assert ERC20_TRANSFER.selector.hex() == "a9059cbb"
    assert ERC20_APPROVE.selector.hex() == "095ea7b3"
    assert ERC20_TRANSFER_FROM.selector.hex() == "23b872dd"
    assert ERC20_BALANCE_OF.selector.hex() == "70a08231"


def test_json_abi_of_the_test_token_matches_builtin_erc20() -> None:
    abi = json.loads(TOKEN_ARTIFACT.read_text())["abi"]
    functions = {f.signature: f for f in functions_from_json_abi(abi)}
    for builtin in (ERC20_TRANSFER, ERC20_APPROVE, ERC20_TRANSFER_FROM, ERC20_BALANCE_OF):
        assert functions[builtin.signature].selector == builtin.selector


def test_erc20_transfer_builds_exact_calldata_and_summary() -> None:
    tx = erc20_transfer(
        chain_id=1, nonce=3, token=TOKEN, to=ALICE, amount="12.5", decimals=6, fees=FEES
    )
    assert tx.to == parse_address(TOKEN)
    assert tx.value == 0
    assert tx.data == (
        bytes.fromhex("a9059cbb")
        + bytes(12)
        + bytes.fromhex(ALICE[2:])
        + (12_500_000).to_bytes(32, "big")
    )
    summary = summarize(tx)
    assert summary.kind == "token_transfer"
    assert summary.recipient == parse_address(ALICE)
    assert summary.asset == parse_address(TOKEN)
    assert summary.amount == 12_500_000
    assert summary.method == "transfer(address,uint256)"
    assert summary.network == "ethereum"
    assert {k: abi_value_to_json(v) for k, v in summary.arguments.items()} == {
        "to": ALICE,
        "value": "12500000",
    }


def test_erc20_approve_summary() -> None:
    tx = erc20_approve(
        chain_id=10, nonce=0, token=TOKEN, spender=ALICE, amount="1", decimals=18, fees=FEES
    )
    summary = summarize(tx)
    assert (summary.kind, summary.recipient, summary.amount) == (
        "token_approval",
        parse_address(ALICE),
        10**18,
    )


def test_native_transfer_and_creation_summaries() -> None:
    tx = native_transfer(chain_id=1, nonce=0, to=ALICE, amount="0.000000000000000001", fees=FEES)
    summary = summarize(tx)
    assert (summary.kind, summary.asset, summary.amount) == ("native_transfer", "native", 1)
    creation = FeeMarketTransaction(1, 0, Wei(0), Wei(0), 100000, None, Wei(5), b"\x60\x00")
    assert summarize(creation).kind == "contract_creation"


def test_unknown_selector_is_reported_not_guessed() -> None:
    tx = FeeMarketTransaction(
        1, 0, Wei(0), Wei(0), 100000, parse_address(TOKEN), Wei(0), b"\xde\xad\xbe\xef"
    )
    summary = summarize(tx)
    assert summary.kind == "unknown_contract_call"
    assert summary.selector == b"\xde\xad\xbe\xef"
    assert summary.decode_error is not None
    with pytest.raises(UnsupportedError) as info:
        decode_call(b"\xde\xad\xbe\xef")
    assert info.value.field == "data"


def test_arbitrary_contract_call_round_trip() -> None:
    fn = function(
        "submit(address,(uint8,bytes)[],string,int32[2],bool)",
        ("target", "items", "note", "pair", "flag"),
    )
    args = (
        parse_address(ALICE),
        ((1, b"ab"), (255, b"")),
        "héllo",
        (-5, 7),
        True,
    )
    tx = contract_call(
        chain_id=1, nonce=0, contract=TOKEN, fn=fn, arguments=args, fees=FEES, value="0.5"
    )
    call = decode_call(tx.data, (fn,))
    assert call.arguments == args
    summary = summarize(tx, (fn,))
    assert summary.kind == "contract_call"
    assert summary.native_value == 5 * 10**17
    assert abi_value_to_json(summary.arguments["items"]) == [["1", "0x6162"], ["255", "0x"]]


@given(addresses, st.integers(0, 2**256 - 1))
@settings(max_examples=100)
def test_transfer_calldata_round_trip(to: Address, value: int) -> None:
    call = decode_call(encode_call(ERC20_TRANSFER, [to, value]))
    assert call.function == ERC20_TRANSFER
    assert call.arguments == (to, value)


def test_encode_call_names_the_bad_argument() -> None:
    with pytest.raises(InvalidFieldError) as info:
        encode_call(ERC20_TRANSFER, [parse_address(ALICE), -1])
    assert info.value.field == "transfer.value"
    with pytest.raises(InvalidFieldError) as info:
        encode_call(ERC20_TRANSFER, [parse_address(ALICE), 2**256])
    assert info.value.field == "transfer.value"
    with pytest.raises(InvalidAddressError) as info2:
        encode_call(ERC20_TRANSFER, [ALICE[:-1] + "8", 1])
    assert info2.value.field == "transfer.to"
    with pytest.raises(InvalidFieldError) as info:
        encode_call(ERC20_TRANSFER, [parse_address(ALICE)])
    assert info.value.field == "transfer"


def test_bad_signatures_and_types() -> None:
    for text in ("transfer", "(address)", "f(uint7)", "f(address"):
        with pytest.raises(InvalidFieldError):
            function(text)


def test_truncated_calldata_is_a_decode_error() -> None:
    data = encode_call(ERC20_TRANSFER, [parse_address(ALICE), 5])
    with pytest.raises(DecodeError) as info:
        decode_call(data[:-1])
    assert info.value.field == "data"
    with pytest.raises(DecodeError):
        decode_call(b"\xa9\x05")
