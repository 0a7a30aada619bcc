"""Edge cases of the Ethereum parsers and builders: each refusal is typed and names its
field, and the less common valid shapes (tuples in JSON ABIs, transferFrom, fixed
arrays, EIP712Domain as primary type) are handled."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import rlp

from shardvault.chains.amounts import Wei
from shardvault.chains.errors import (
    DecodeError,
    InvalidAddressError,
    SignatureAssemblyError,
)
from shardvault.chains.ethereum import (
    ERC20_TRANSFER,
    AccessListEntry,
    AccessListTransaction,
    Address,
    FeeMarketTransaction,
    InvalidFieldError,
    LegacyTransaction,
    Signature,
    abi_value_to_json,
    address_from_public_key,
    assemble,
    decode_call,
    describe,
    encode_call,
    encode_signed,
    encode_unsigned,
    function,
    functions_from_json_abi,
    normalize_s,
    parse_address,
    parse_hex,
    parse_transaction,
    parse_typed_data,
    personal_message_hash,
    recover_public_key,
    summarize,
    typed_data_hash,
)
from shardvault.chains.ethereum.abi import ERC20_TRANSFER_FROM
from shardvault.chains.ethereum.models import MAX_ACCESS_LIST_KEYS, SECP256K1_ORDER
from shardvault.chains.ethereum.signature import y_parity_from_v
from tests.vectors import load_vector

ALICE = parse_address("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359")
BAD_CHECKSUM = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5D359"  # one letter case flipped


# --- ABI -------------------------------------------------------------------------------


def test_json_abi_tuples_events_and_errors() -> None:
    abi = [
        {"type": "event", "name": "Transfer", "inputs": []},
        {
            "type": "function",
            "name": "settle",
            "inputs": [
                {
                    "name": "orders",
                    "type": "tuple[]",
                    "components": [
                        {"name": "maker", "type": "address"},
                        {"name": "amounts", "type": "uint256[2]"},
                    ],
                },
                {"name": "", "type": "bytes32"},
            ],
        },
    ]
    (settle,) = functions_from_json_abi(abi)
    assert settle.signature == "settle((address,uint256[2])[],bytes32)"
    data = encode_call(settle, [((ALICE, (1, 2)),), b"\x01" * 32])
    call = decode_call(data, (settle,))
    assert call.named_arguments() == {"orders": ((ALICE, (1, 2)),), "arg1": b"\x01" * 32}
    for bad, field in (
        ([{"type": "function", "inputs": []}], "abi[0]"),
        ([{"type": "function", "name": "f", "inputs": [{"type": 5}]}], "abi[0].inputs[0]"),
        ([{"type": "function", "name": "f", "inputs": [{"type": "tuple"}]}], "abi[0].inputs[0]"),
        (["nope"], "abi[0]"),
    ):
        with pytest.raises(InvalidFieldError) as info:
            functions_from_json_abi(bad)
        assert info.value.field == field


def test_address_checksums_are_checked_inside_arrays_and_tuples() -> None:
    fn = function("f(address[],(address,uint8))", ("list", "pair"))
    with pytest.raises(InvalidAddressError) as info:
        encode_call(fn, [[BAD_CHECKSUM], (ALICE, 1)])
    assert info.value.field == "f.list"
    with pytest.raises(InvalidAddressError) as info:
        encode_call(fn, [[], (BAD_CHECKSUM, 1)])
    assert info.value.field == "f.pair"
    assert decode_call(encode_call(fn, [[ALICE.checksummed], (ALICE, 1)]), (fn,)).arguments == (
        (ALICE,),
        (ALICE, 1),
    )


def test_calldata_size_limits_and_names() -> None:
    fn = function("store(bytes)")
    with pytest.raises(InvalidFieldError) as info:
        encode_call(fn, [bytes(128 * 1024)])
    assert info.value.field == "data"
    with pytest.raises(DecodeError) as info2:
        decode_call(b"\xa9\x05\x9c\xbb" + bytes(128 * 1024))
    assert info2.value.field == "data"
    with pytest.raises(InvalidFieldError) as info3:
        function("f(uint256,uint256)", ("only_one",))
    assert info3.value.field == "names"
    assert abi_value_to_json((True, 5, b"\x01", ALICE, "x")) == [
        True,
        "5",
        "0x01",
        ALICE.checksummed,
        "x",
    ]


def test_transfer_from_summary_names_the_destination() -> None:
    owner = parse_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
    data = encode_call(ERC20_TRANSFER_FROM, [owner, ALICE, 9])
    tx = FeeMarketTransaction(1, 0, Wei(0), Wei(0), 90000, owner, Wei(0), data)
    summary = summarize(tx)
    assert (summary.kind, summary.recipient, summary.amount) == ("token_transfer", ALICE, 9)


# --- addresses, signatures ------------------------------------------------------------


def test_address_type_and_public_key_checks() -> None:
    with pytest.raises(InvalidAddressError):
        Address(b"\x00" * 19)
    assert repr(ALICE) == f"Address({ALICE.checksummed})"
    with pytest.raises(InvalidAddressError) as info:
        address_from_public_key(b"\x05" + bytes(32))
    assert info.value.field == "public_key"


def test_normalize_s_turns_high_s_into_the_eip2_form() -> None:
    """The ethereum/tests high-s vector (eth-account-vectors.json, its ``note``)
    normalised gives the low-s encoding the note records."""
    case = load_vector("ethereum/eth-account-vectors.json")["sign_transaction_from_ethereum_tests"][
        "cases"
    ][1]
    items = rlp.decode(bytes.fromhex(case["signed"]))
    v, r, s = (int.from_bytes(items[i], "big") for i in (6, 7, 8))
    low = normalize_s(r, s, v - 27)
    assert (low.s, low.y_parity) == (SECP256K1_ORDER - s, (v - 27) ^ 1)
    tx = parse_transaction(bytes.fromhex(case["unsigned"]))
    assert isinstance(tx, LegacyTransaction)
    raw = encode_signed(assemble(tx, low.r, low.s, low.y_parity)).hex()
    prefix, suffix = case["note"].split("instead of 0x1b: ")[1].split(" ")[0].split("...")
    assert raw.startswith(prefix)
    assert raw.endswith(suffix)
    assert normalize_s(r, 5, 1) == Signature(r, 5, 1)


def test_v_conventions() -> None:
    typed = FeeMarketTransaction(1, 0, Wei(0), Wei(0), 21000, None, Wei(0))
    assert y_parity_from_v(typed, 28) == 1
    with pytest.raises(SignatureAssemblyError):
        y_parity_from_v(typed, True)
    with pytest.raises(SignatureAssemblyError) as info:
        recover_public_key(bytes(31), Signature(1, 1, 0))
    assert info.value.field == "digest"
    with pytest.raises(SignatureAssemblyError) as info:
        Signature("1", 1, 0)  # type: ignore[arg-type]
    assert info.value.field == "r"


# --- models ---------------------------------------------------------------------------


def test_model_type_checks() -> None:
    with pytest.raises(InvalidFieldError) as info:
        LegacyTransaction(1, "0", Wei(0), 21000, None, Wei(0))  # type: ignore[arg-type]
    assert info.value.field == "nonce"
    with pytest.raises(InvalidFieldError) as info:
        AccessListEntry("0x00", ())  # type: ignore[arg-type]
    assert info.value.field == "access_list.address"
    with pytest.raises(InvalidFieldError) as info:
        AccessListTransaction(1, 0, Wei(0), 0, None, Wei(0), access_list=[])  # type: ignore[arg-type]
    assert info.value.field == "access_list"
    too_many = tuple(
        AccessListEntry(ALICE, tuple(bytes(32) for _ in range(1024))) for _ in range(3)
    )
    assert sum(len(e.storage_keys) for e in too_many) > MAX_ACCESS_LIST_KEYS
    with pytest.raises(InvalidFieldError) as info:
        AccessListTransaction(1, 0, Wei(0), 0, None, Wei(0), access_list=too_many)
    assert info.value.field == "access_list"


# --- raw transaction parser -----------------------------------------------------------


def _typed(tx_type: int, items: list[Any]) -> bytes:
    return bytes([tx_type]) + rlp.encode(items)


FEE_FIELDS: list[Any] = [1, 0, 0, 0, 21000, ALICE.raw, 0, b"", []]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (_typed(2, [1, [0], 0, 0, 21000, ALICE.raw, 0, b"", []]), "nonce"),
        (_typed(2, [1, 2**64, 0, 0, 21000, ALICE.raw, 0, b"", []]), "nonce"),
        (_typed(2, [1, 0, 0, 0, 21000, ALICE.raw[:19], 0, b"", []]), "to"),
        (_typed(2, [1, 0, 0, 0, 21000, ALICE.raw, 0, b"", [[ALICE.raw]]]), "access_list"),
        (_typed(2, [*FEE_FIELDS[:8], [[ALICE.raw[:19], []]]]), "access_list.address"),
        (_typed(2, [*FEE_FIELDS[:8], [[ALICE.raw, [bytes(31)]]]]), "access_list.storage_keys"),
        (_typed(2, [*FEE_FIELDS[:8], b"x"]), "access_list"),
        (_typed(2, [*FEE_FIELDS, 27, 1, 1]), "v"),
        (_typed(2, FEE_FIELDS[:5]), "transaction"),
        (_typed(1, FEE_FIELDS[:5]), "transaction"),
        (rlp.encode([0, 0, 21000, ALICE.raw, 0, b"", 0]), "transaction"),
        (rlp.encode([0, 0, 21000, ALICE.raw, 0, b"", 30, 1, 1]), "v"),
        (rlp.encode([0, 0, 21000, ALICE.raw, 0, [b""]]), "transaction"),  # nested list
    ],
)
def test_malformed_fields_in_raw_transactions(raw: bytes, field: str) -> None:
    with pytest.raises(DecodeError) as info:
        parse_transaction(raw)
    assert info.value.field == field


def test_six_field_pre_eip155_signing_payload_parses() -> None:
    from shardvault.chains.ethereum import signing_payload

    tx = LegacyTransaction(None, 3, Wei(1), 21000, ALICE, Wei(2))
    assert len(rlp.decode(signing_payload(tx))) == 6
    assert parse_transaction(signing_payload(tx)) == tx


def test_parser_input_types() -> None:
    with pytest.raises(DecodeError):
        parse_transaction("02c0")  # type: ignore[arg-type]
    tx = FeeMarketTransaction(1, 0, Wei(0), Wei(0), 21000, None, Wei(0))
    assert parse_transaction(bytearray(encode_unsigned(tx))) == tx
    with pytest.raises(DecodeError, match="too long"):
        parse_hex("00" * (400 * 1024))


# --- EIP-712 ----------------------------------------------------------------------------


def _mail() -> dict[str, Any]:
    return copy.deepcopy(load_vector("ethereum/eip712-spec-mail-example.json")["typed_data"])


def _with_member(kind: str, value: object) -> dict[str, Any]:
    payload = _mail()
    payload["types"]["Mail"].append({"name": "extra", "type": kind})
    payload["message"]["extra"] = value
    return payload


@pytest.mark.parametrize(
    ("kind", "value", "ok"),
    [
        ("uint8", "0x10", True),
        ("int8", "-5", True),
        ("int8", "-0x80", True),
        ("int8", 128, False),
        ("uint8", True, False),
        ("uint8", "ten", False),
        ("uint8", "0x", False),
        ("bytes2", "0xabcd", True),
        ("bytes2", "0xab", False),
        ("bytes", "abcd", False),
        ("bytes", "0xabc", False),
        ("bool", "true", False),
        ("address", 5, False),
        ("uint8[2]", [1], False),
        ("uint8[]", "x", False),
        ("uint8[]", [1] * 4097, False),
        ("string[][1]", [["a", "b"]], True),
    ],
)
def test_typed_data_member_values(kind: str, value: object, ok: bool) -> None:
    typed = parse_typed_data(_with_member(kind, value))
    if ok:
        assert len(typed_data_hash(typed)) == 32
    else:
        with pytest.raises(InvalidFieldError) as info:
            typed_data_hash(typed)
        assert info.value.field is not None
        assert info.value.field.startswith("message.extra")


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p["types"].update({"bad name": []}), "types.bad name"),
        (lambda p: p["types"].update({"X": "nope"}), "types.X"),
        (lambda p: p["types"]["Mail"].append({"name": "1x", "type": "string"}), "types.Mail[3]"),
        (lambda p: p["types"]["Mail"].append({"name": "y", "type": 5}), "types.Mail[3]"),
        (lambda p: p["types"]["Mail"].append({"name": "to", "type": "string"}), "types.Mail[3]"),
        (lambda p: p["types"]["Mail"].append({"name": "b", "type": "bytes33"}), "types.Mail.b"),
        (lambda p: p.update(types={1: []}), "types"),
    ],
)
def test_typed_data_declaration_errors(mutate: Any, field: str) -> None:
    payload = _mail()
    mutate(payload)
    with pytest.raises(InvalidFieldError) as info:
        parse_typed_data(payload)
    assert info.value.field == field


def test_typed_data_recursion_is_bounded() -> None:
    payload = _mail()
    payload["types"]["Node"] = [{"name": "next", "type": "Node[]"}]
    payload["types"]["Mail"].append({"name": "node", "type": "Node"})
    node: dict[str, Any] = {"next": []}
    for _ in range(40):
        node = {"next": [node]}
    payload["message"]["node"] = node
    with pytest.raises(InvalidFieldError, match="nests deeper"):
        typed_data_hash(parse_typed_data(payload))


def test_domain_as_primary_type_signs_the_domain_alone() -> None:
    payload = _mail()
    payload["primaryType"] = "EIP712Domain"
    described = describe(json.dumps(payload))
    assert described["message_hash"] is None
    assert (
        described["domain_separator"]
        == load_vector("ethereum/eip712-spec-mail-example.json")["domainSeparator"]
    )


# --- describe and messages -------------------------------------------------------------


def test_describe_access_list_transaction() -> None:
    tx = AccessListTransaction(
        1, 0, Wei(5), 30000, ALICE, Wei(1), access_list=(AccessListEntry(ALICE, (bytes(32),)),)
    )
    described = describe(encode_unsigned(tx).hex())
    assert described["gas_price"] == "5"
    assert described["access_list"] == [
        {"address": ALICE.checksummed, "storage_keys": ["0x" + "00" * 32]}
    ]


def test_describe_refuses_huge_json_and_non_text() -> None:
    with pytest.raises(DecodeError) as info:
        describe("{" + " " * (1024 * 1024 + 1) + "}")
    assert info.value.field == "typed_data"
    with pytest.raises(DecodeError):
        describe(b"\x02")  # type: ignore[arg-type]


def test_personal_message_must_be_bytes() -> None:
    with pytest.raises(InvalidFieldError) as info:
        personal_message_hash("text")  # type: ignore[arg-type]
    assert info.value.field == "message"


def test_erc20_transfer_selector_constant_is_shared() -> None:
    assert decode_call(encode_call(ERC20_TRANSFER, [ALICE, 1])).function is ERC20_TRANSFER
