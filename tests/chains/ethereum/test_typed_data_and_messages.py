"""EIP-712 v4 rules beyond the Mail example (arrays, nested structs, strict members) and
agreement with eth-account as an independent implementation."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from shardvault.chains.errors import InvalidAddressError
from shardvault.chains.ethereum import (
    InvalidFieldError,
    Signature,
    encode_message_signature,
    parse_typed_data,
    personal_message_hash,
    recover_message_signer,
    typed_data_hash,
)
from tests.chains.ethereum.helpers import test_only_sign_digest
from tests.vectors import load_vector

TEST_ONLY_KEY = bytes.fromhex("11" * 32)


def _mail() -> dict[str, Any]:
    return copy.deepcopy(load_vector("ethereum/eip712-spec-mail-example.json")["typed_data"])


def _eth_account_hash(payload: dict[str, Any]) -> bytes:
    signable = encode_typed_data(full_message=payload)
    return bytes(b"\x19" + signable.version + signable.header + signable.body)


def _v4_group_payload() -> dict[str, Any]:
    """Arrays of structs, fixed arrays, bytes, bytes32, int and bool members."""
    payload = _mail()
    payload["types"]["Group"] = [
        {"name": "name", "type": "string"},
        {"name": "members", "type": "Person[]"},
        {"name": "scores", "type": "int16[3]"},
        {"name": "blob", "type": "bytes"},
        {"name": "tag", "type": "bytes32"},
        {"name": "open", "type": "bool"},
    ]
    payload["primaryType"] = "Group"
    # eth-account derives the primary type as the one root type, so Mail must go.
    del payload["types"]["Mail"]
    people = [payload["message"]["from"], payload["message"]["to"]]
    payload["message"] = {
        "name": "Friends",
        "members": people,
        "scores": [-3, 0, 300],
        "blob": "0xdeadbeef",
        "tag": "0x" + "ab" * 32,
        "open": True,
    }
    return payload


def test_v4_arrays_and_nested_structs_match_eth_account() -> None:
    payload = _v4_group_payload()
    ours = typed_data_hash(parse_typed_data(payload))
    assert ours == keccak(_eth_account_hash(payload))


@given(st.text(max_size=40), st.integers(0, 2**256 - 1), st.booleans())
@settings(max_examples=40, deadline=None)
def test_typed_data_agrees_with_eth_account(name: str, amount: int, flag: bool) -> None:
    payload = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            "Order": [
                {"name": "label", "type": "string"},
                {"name": "amount", "type": "uint256"},
                {"name": "flag", "type": "bool"},
            ],
        },
        "primaryType": "Order",
        "domain": {"name": "Shop", "chainId": 1},
        "message": {"label": name, "amount": amount, "flag": flag},
    }
    digest = typed_data_hash(parse_typed_data(payload))
    signed = Account.sign_typed_data(TEST_ONLY_KEY, full_message=payload)
    r, s, y = test_only_sign_digest(TEST_ONLY_KEY, digest)
    assert bytes(signed.message_hash) == digest
    assert encode_message_signature(Signature(r, s, y)) == bytes(signed.signature)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p["message"].pop("contents"), "message.contents"),
        (lambda p: p["message"].update(extra="x"), "message"),
        (
            lambda p: p["types"]["Person"].append({"name": "age", "type": "uint7"}),
            "types.Person.age",
        ),
        (lambda p: p["types"].pop("EIP712Domain"), "types"),
        (lambda p: p.update(primaryType="Nope"), "primaryType"),
        (lambda p: p.pop("domain"), "domain"),
        (lambda p: p["domain"].update(chainId=-1), "domain.chainId"),
        (lambda p: p["domain"].update(chainId="ten"), "domain.chainId"),
        (lambda p: p["message"].update(contents=5), "message.contents"),
        (lambda p: p["message"]["to"].update(name=["x"]), "message.to.name"),
    ],
)
def test_typed_data_bad_input_names_the_member(mutate: Any, field: str) -> None:
    payload = _mail()
    mutate(payload)
    with pytest.raises(InvalidFieldError) as info:
        typed_data_hash(parse_typed_data(payload))
    assert info.value.field == field


def test_typed_data_bad_address_checksum() -> None:
    payload = _mail()
    payload["message"]["to"]["wallet"] = "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbb"
    with pytest.raises(InvalidAddressError) as info:
        typed_data_hash(parse_typed_data(payload))
    assert info.value.field == "message.to.wallet"


@given(st.binary(max_size=200))
@settings(max_examples=50)
def test_personal_sign_agrees_with_eth_account(message: bytes) -> None:
    digest = personal_message_hash(message)
    signed = Account.sign_message(encode_defunct(primitive=message), TEST_ONLY_KEY)
    assert bytes(signed.message_hash) == digest
    r, s, y = test_only_sign_digest(TEST_ONLY_KEY, digest)
    assert encode_message_signature(Signature(r, s, y)) == bytes(signed.signature)
    assert (
        recover_message_signer(digest, Signature(r, s, y)).checksummed
        == Account.from_key(TEST_ONLY_KEY).address
    )


def test_message_signature_from_r_s_and_public_key() -> None:
    """An external signer returns (r, s) only; the parity comes from the public key, and
    the 65-byte signature equals the EIP-712 vector's."""
    from shardvault.chains.errors import SignatureAssemblyError
    from shardvault.chains.ethereum import signature_for_public_key
    from tests.chains.ethereum.helpers import test_only_public_key

    vector = load_vector("ethereum/eip712-spec-mail-example.json")
    key = bytes.fromhex(vector["private_key"][2:])
    digest = typed_data_hash(parse_typed_data(vector["typed_data"]))
    r, s, _ = test_only_sign_digest(key, digest)
    signature = signature_for_public_key(digest, r, s, test_only_public_key(key))
    assert encode_message_signature(signature).hex() == vector["signature"][2:]
    with pytest.raises(SignatureAssemblyError) as info:
        signature_for_public_key(personal_message_hash(b"other"), r, s, test_only_public_key(key))
    assert info.value.field == "signature"
