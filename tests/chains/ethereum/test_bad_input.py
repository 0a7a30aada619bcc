"""Every check on untrusted input raises its typed error naming the field."""

from __future__ import annotations

import pytest

from shardvault.chains.amounts import UINT256_MAX, Wei
from shardvault.chains.errors import (
    ChainError,
    DecodeError,
    InvalidAddressError,
    InvalidAmountError,
    SignatureAssemblyError,
    UnsupportedError,
)
from shardvault.chains.ethereum import (
    KNOWN_NETWORKS,
    FeeMarketTransaction,
    FeeParameters,
    InvalidFieldError,
    LegacyTransaction,
    Signature,
    assemble_from_v,
    assemble_with_public_key,
    decode_message_signature,
    encode_unsigned,
    erc20_transfer,
    native_transfer,
    network_for,
    parse_address,
    parse_hex,
    parse_transaction,
    personal_message_hash,
)
from shardvault.chains.ethereum.models import (
    MAX_CHAIN_ID,
    MAX_DATA_BYTES,
    MAX_NONCE,
    SECP256K1_ORDER,
    AccessListEntry,
)
from shardvault.chains.ethereum.parse import MAX_RAW_TRANSACTION_BYTES
from tests.chains.ethereum.helpers import test_only_public_key

GOOD = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55's own example address
FEES = FeeParameters(Wei(2 * 10**9), Wei(10**9), 21000)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0x followed by 40"),
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe", "0x followed by 40"),
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAedd", "0x followed by 40"),
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg", "not a hex digit"),
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "checksum"),
        ("0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "checksum"),
        ("", "0x followed by 40"),
    ],
)
def test_malformed_or_miss_checksummed_addresses(text: str, reason: str) -> None:
    with pytest.raises(InvalidAddressError, match=reason) as info:
        parse_address(text, field="to")
    assert info.value.field == "to"


def test_address_checksum_rules() -> None:
    """EIP-55 examples: mixed case must match; one-case input has no checksum."""
    assert parse_address(GOOD).checksummed == GOOD
    assert parse_address(GOOD.lower()).checksummed == GOOD
    assert parse_address("0x" + GOOD[2:].upper()).checksummed == GOOD
    with pytest.raises(InvalidAddressError, match="checksummed form"):
        parse_address(GOOD.lower(), require_checksum=True)
    with pytest.raises(InvalidAddressError):
        parse_address(12345)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        ("1.0000000000000000001", "decimal places"),
        ("-1", "non-negative decimal"),
        ("1e18", "non-negative decimal"),
        (" 1", "non-negative decimal"),
        ("0x10", "non-negative decimal"),
        (str(UINT256_MAX + 1), "exceeds"),
        ("", "non-negative decimal"),
    ],
)
def test_bad_ether_amounts(amount: str, reason: str) -> None:
    with pytest.raises(InvalidAmountError, match=reason) as info:
        native_transfer(chain_id=1, nonce=0, to=GOOD, amount=amount, fees=FEES)
    assert info.value.field == "value"


def test_token_amount_too_many_decimals_names_amount() -> None:
    with pytest.raises(InvalidAmountError, match="decimal places") as info:
        erc20_transfer(
            chain_id=1, nonce=0, token=GOOD, to=GOOD, amount="1.0000001", decimals=6, fees=FEES
        )
    assert info.value.field == "amount"


def test_token_amount_overflow_and_bad_decimals() -> None:
    with pytest.raises(InvalidAmountError, match="exceeds") as info:
        erc20_transfer(
            chain_id=1, nonce=0, token=GOOD, to=GOOD, amount=str(2**256), decimals=0, fees=FEES
        )
    assert info.value.field == "amount"
    with pytest.raises(InvalidFieldError) as info2:
        erc20_transfer(chain_id=1, nonce=0, token=GOOD, to=GOOD, amount="1", decimals=78, fees=FEES)
    assert info2.value.field == "decimals"


def test_builder_names_bad_recipient_and_token() -> None:
    with pytest.raises(InvalidAddressError) as info:
        erc20_transfer(
            chain_id=1, nonce=0, token=GOOD, to=GOOD[:-1] + "D", amount="1", decimals=6, fees=FEES
        )
    assert info.value.field == "to"
    with pytest.raises(InvalidAddressError) as info:
        erc20_transfer(
            chain_id=1, nonce=0, token="0x12", to=GOOD, amount="1", decimals=6, fees=FEES
        )
    assert info.value.field == "token"


@pytest.mark.parametrize("value", [-1, UINT256_MAX + 1])
def test_negative_or_overflowing_model_amounts(value: int) -> None:
    for field in ("value", "gas_price"):
        kwargs = {"value": Wei(0), "gas_price": Wei(0)} | {field: value}
        with pytest.raises(InvalidAmountError) as info:
            LegacyTransaction(1, 0, gas_limit=21000, to=None, data=b"", **kwargs)  # type: ignore[arg-type]
        assert info.value.field == field


def test_tip_above_fee_cap_is_refused() -> None:
    with pytest.raises(InvalidAmountError) as info:
        FeeMarketTransaction(1, 0, Wei(2), Wei(1), 21000, None, Wei(0))
    assert info.value.field == "max_priority_fee_per_gas"


@pytest.mark.parametrize("chain_id", [0, -1, MAX_CHAIN_ID + 1, True, "1"])
def test_invalid_chain_ids(chain_id: object) -> None:
    with pytest.raises(InvalidFieldError) as info:
        FeeMarketTransaction(chain_id, 0, Wei(0), Wei(0), 21000, None, Wei(0))  # type: ignore[arg-type]
    assert info.value.field == "chain_id"


def test_builders_take_any_valid_chain_id_or_only_those_of_a_given_table() -> None:
    # Networks are data (the signed registry says which a co-signer accepts): any valid
    # EIP-155 id builds; an invalid one never does; a caller's own table still limits.
    built = native_transfer(chain_id=999_999_999, nonce=0, to=GOOD, amount="1", fees=FEES)
    assert built.chain_id == 999_999_999
    with pytest.raises(InvalidFieldError) as invalid:
        native_transfer(chain_id=MAX_CHAIN_ID + 1, nonce=0, to=GOOD, amount="1", fees=FEES)
    assert invalid.value.field == "chain_id"
    with pytest.raises(UnsupportedError) as info:
        native_transfer(
            chain_id=999_999_999, nonce=0, to=GOOD, amount="1", fees=FEES, networks=KNOWN_NETWORKS
        )
    assert info.value.field == "chain_id"
    assert network_for(1).name == "ethereum"


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("nonce", {"nonce": MAX_NONCE + 1}),
        ("nonce", {"nonce": -1}),
        ("gas_limit", {"gas_limit": 2**64}),
        ("data", {"data": bytes(MAX_DATA_BYTES + 1)}),
        ("data", {"data": "00"}),
        ("to", {"to": GOOD}),
    ],
)
def test_out_of_range_fields(field: str, kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {
        "chain_id": 1,
        "nonce": 0,
        "gas_price": Wei(0),
        "gas_limit": 21000,
        "to": None,
        "value": Wei(0),
        "data": b"",
    }
    with pytest.raises(InvalidFieldError) as info:
        LegacyTransaction(**(base | kwargs))  # type: ignore[arg-type]
    assert info.value.field == field


def test_oversized_raw_transaction_is_refused_unread() -> None:
    with pytest.raises(DecodeError, match="at most") as info:
        parse_transaction(b"\x02" + bytes(MAX_RAW_TRANSACTION_BYTES))
    assert info.value.field == "transaction"


def test_access_list_bad_key() -> None:
    with pytest.raises(InvalidFieldError) as info:
        AccessListEntry(parse_address(GOOD), (b"\x01" * 31,))
    assert info.value.field == "access_list.storage_keys"


@pytest.mark.parametrize(
    ("raw_hex", "error", "field"),
    [
        ("", DecodeError, "transaction"),
        ("03c0", UnsupportedError, "type"),
        ("04c0", UnsupportedError, "type"),
        ("80", DecodeError, "transaction"),
        ("c0", DecodeError, "transaction"),
        ("02c0", DecodeError, "transaction"),
        ("02", DecodeError, "transaction"),
        ("02c9018080808080808080ff", DecodeError, "transaction"),  # trailing byte
        ("c9800080808080808080", DecodeError, "gas_price"),  # 0x00: leading zero
        ("c98180808080808080808", DecodeError, "data"),  # odd hex, caught by parse_hex
    ],
)
def test_malformed_raw_transactions(raw_hex: str, error: type[ChainError], field: str) -> None:
    with pytest.raises(error) as info:
        parse_transaction(parse_hex(raw_hex))
    assert info.value.field == field


def test_non_canonical_integers_and_addresses_in_raw() -> None:
    tx = LegacyTransaction(1, 5, Wei(1), 21000, parse_address(GOOD), Wei(7))
    raw = encode_unsigned(tx)
    # Rewrite the nonce 0x05 as the non-canonical single-byte string 0x81 0x05.
    bad = bytes([raw[0] + 1]) + b"\x81\x05" + raw[2:]
    with pytest.raises(DecodeError, match="single byte"):
        parse_transaction(bad)
    # A 19-byte recipient.
    short_to = raw.replace(b"\x94" + bytes.fromhex(GOOD[2:]), b"\x93" + bytes.fromhex(GOOD[4:]))
    short_to = bytes([short_to[0] - 1]) + short_to[1:]
    with pytest.raises(DecodeError) as info:
        parse_transaction(short_to)
    assert info.value.field == "to"


def test_deeply_nested_rlp_is_refused_without_recursion() -> None:
    nested = b"\xc0"
    for _ in range(5000):
        length = len(nested)
        if length < 56:
            nested = bytes([0xC0 + length]) + nested
        else:
            size = (length.bit_length() + 7) // 8
            nested = bytes([0xF7 + size]) + length.to_bytes(size, "big") + nested
    with pytest.raises(DecodeError, match="nests"):
        parse_transaction(b"\x02" + nested)


def test_signature_range_and_high_s() -> None:
    with pytest.raises(SignatureAssemblyError) as info:
        Signature(0, 1, 0)
    assert info.value.field == "r"
    with pytest.raises(SignatureAssemblyError) as info:
        Signature(1, SECP256K1_ORDER, 0)
    assert info.value.field == "s"
    with pytest.raises(SignatureAssemblyError, match="high") as info:
        Signature(1, SECP256K1_ORDER // 2 + 1, 0)
    assert info.value.field == "s"
    with pytest.raises(SignatureAssemblyError) as info:
        Signature(1, 1, 2)
    assert info.value.field == "y_parity"


def test_v_must_match_chain_and_type() -> None:
    legacy = LegacyTransaction(5, 0, Wei(1), 21000, None, Wei(0))
    with pytest.raises(SignatureAssemblyError) as info:
        assemble_from_v(legacy, 1, 1, 37)  # v for chain 1, not 5
    assert info.value.field == "v"
    typed = FeeMarketTransaction(5, 0, Wei(0), Wei(0), 21000, None, Wei(0))
    with pytest.raises(SignatureAssemblyError) as info:
        assemble_from_v(typed, 1, 1, 2)
    assert info.value.field == "v"


def test_assembly_with_wrong_public_key_is_refused() -> None:
    tx = FeeMarketTransaction(1, 0, Wei(0), Wei(0), 21000, None, Wei(0))
    with pytest.raises(SignatureAssemblyError, match="does not verify") as info:
        assemble_with_public_key(tx, 12345, 6789, test_only_public_key(b"\x01" * 32))
    assert info.value.field == "signature"
    with pytest.raises(SignatureAssemblyError) as info:
        assemble_with_public_key(tx, 12345, 6789, b"\x02" + b"\xff" * 32)
    assert info.value.field == "public_key"


def test_message_inputs() -> None:
    with pytest.raises(InvalidFieldError) as info:
        personal_message_hash(bytes(64 * 1024 + 1))
    assert info.value.field == "message"
    with pytest.raises(SignatureAssemblyError) as info:
        decode_message_signature(bytes(64))
    assert info.value.field == "signature"
    with pytest.raises(SignatureAssemblyError) as info:
        decode_message_signature(bytes(31) + b"\x01" + bytes(31) + b"\x01" + b"\x1d")
    assert info.value.field == "signature"


@pytest.mark.parametrize("text", ["0xzz", "0x123", "12 34", 5])
def test_bad_hex(text: object) -> None:
    with pytest.raises(DecodeError) as info:
        parse_hex(text, field="data")  # type: ignore[arg-type]
    assert info.value.field == "data"
