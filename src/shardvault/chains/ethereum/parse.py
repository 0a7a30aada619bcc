"""Parsing raw Ethereum transactions, signed or unsigned, back into their models.

Accepts every form :mod:`.encode` produces: EIP-2718 typed envelopes 0x01 (EIP-2930) and
0x02 (EIP-1559) with or without ``[yParity, r, s]``, and legacy RLP lists of six fields
(unsigned, pre-EIP-155), nine fields ending ``chainId, 0, 0`` (unsigned, EIP-155; chain
id 0 meaning pre-EIP-155) or nine
fields ending ``v, r, s`` (signed). Parsing is strict: integers must be minimal big-endian,
the encoding must be canonical, every field must be in range, and a signature must be
low-s (EIP-2). Only :class:`~shardvault.chains.errors.ChainError` subclasses escape.
"""

from __future__ import annotations

import re

from shardvault.chains.amounts import Wei
from shardvault.chains.errors import DecodeError, UnsupportedError
from shardvault.chains.ethereum import rlp_decode
from shardvault.chains.ethereum.address import Address
from shardvault.chains.ethereum.models import (
    MAX_ACCESS_LIST_ENTRIES,
    MAX_DATA_BYTES,
    AccessListEntry,
    AccessListTransaction,
    FeeMarketTransaction,
    LegacyTransaction,
    Signature,
    SignedTransaction,
    Transaction,
)
from shardvault.chains.ethereum.signature import y_parity_from_v

MAX_RAW_TRANSACTION_BYTES = MAX_DATA_BYTES + 128 * 1024
"""The largest raw transaction the parser reads; anything bigger is refused unread."""

ParsedTransaction = Transaction | SignedTransaction
"""What :func:`parse_transaction` returns: an unsigned transaction or a signed one."""

_RlpValue = rlp_decode.RlpValue

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


def _bytes(item: _RlpValue, field: str) -> bytes:
    if not isinstance(item, bytes):
        raise DecodeError("must be an RLP string, not a list", field=field)
    return item


def _list(item: _RlpValue, field: str) -> list[_RlpValue]:
    if not isinstance(item, list):
        raise DecodeError("must be an RLP list", field=field)
    return item


def _uint(item: _RlpValue, field: str, max_bytes: int = 32) -> int:
    """A minimal big-endian unsigned integer: no leading zero byte, at most ``max_bytes``."""
    raw = _bytes(item, field)
    if len(raw) > max_bytes:
        raise DecodeError(f"is longer than {max_bytes} bytes", field=field)
    if raw[:1] == b"\x00":
        raise DecodeError("has a leading zero byte (non-canonical integer)", field=field)
    return int.from_bytes(raw, "big")


def _to(item: _RlpValue) -> Address | None:
    raw = _bytes(item, "to")
    if raw == b"":
        return None
    if len(raw) != 20:
        raise DecodeError("must be empty (contract creation) or 20 bytes", field="to")
    return Address(raw)


def _access_list(item: _RlpValue) -> tuple[AccessListEntry, ...]:
    entries = _list(item, "access_list")
    if len(entries) > MAX_ACCESS_LIST_ENTRIES:
        raise DecodeError("names too many addresses", field="access_list")
    result = []
    for entry in entries:
        pair = _list(entry, "access_list")
        if len(pair) != 2:
            raise DecodeError("entry must be [address, storageKeys]", field="access_list")
        address = _bytes(pair[0], "access_list.address")
        if len(address) != 20:
            raise DecodeError("must be 20 bytes", field="access_list.address")
        keys = tuple(_bytes(k, "access_list.storage_keys") for k in _list(pair[1], "access_list"))
        if any(len(k) != 32 for k in keys):
            raise DecodeError("must each be 32 bytes", field="access_list.storage_keys")
        result.append(AccessListEntry(Address(address), keys))
    return tuple(result)


def _signature(items: list[_RlpValue], tx: Transaction) -> SignedTransaction:
    """Build the signature from the trailing (v, r, s) and attach it."""
    v = _uint(items[0], "v")
    r = _uint(items[1], "r")
    s = _uint(items[2], "s")
    if not isinstance(tx, LegacyTransaction) and v not in (0, 1):
        # EIP-2930/EIP-1559 serialise the bare y parity; 27/28 are not canonical here.
        raise DecodeError("y parity of a typed transaction must be 0 or 1", field="v")
    return SignedTransaction(tx, Signature(r, s, y_parity_from_v(tx, v)))


def _parse_legacy(items: list[_RlpValue]) -> ParsedTransaction:
    if len(items) not in (6, 9):
        raise DecodeError(
            f"a legacy transaction has 6 or 9 fields, not {len(items)}", field="transaction"
        )
    nonce = _uint(items[0], "nonce", 8)
    gas_price = Wei(_uint(items[1], "gas_price"))
    gas_limit = _uint(items[2], "gas_limit", 8)
    to = _to(items[3])
    value = Wei(_uint(items[4], "value"))
    data = _bytes(items[5], "data")
    if len(items) == 6:
        return LegacyTransaction(None, nonce, gas_price, gas_limit, to, value, data)
    v_or_chain = _uint(items[6], "v")
    r = _uint(items[7], "r")
    s = _uint(items[8], "s")
    if r == 0 and s == 0:
        # EIP-155 signing form: (chainId, 0, 0) in place of (v, r, s); chain id 0 marks
        # an unsigned pre-EIP-155 transaction, as ethereum/tests writes them.
        chain = v_or_chain if v_or_chain != 0 else None
        return LegacyTransaction(chain, nonce, gas_price, gas_limit, to, value, data)
    if v_or_chain in (27, 28):
        chain_id: int | None = None
    elif v_or_chain >= 37:
        chain_id = (v_or_chain - 35) // 2
    else:
        raise DecodeError("is neither 27/28 nor an EIP-155 value", field="v")
    tx = LegacyTransaction(chain_id, nonce, gas_price, gas_limit, to, value, data)
    return _signature(items[6:9], tx)


def _parse_access_list_tx(items: list[_RlpValue]) -> ParsedTransaction:
    if len(items) not in (8, 11):
        raise DecodeError(
            f"an EIP-2930 transaction has 8 or 11 fields, not {len(items)}", field="transaction"
        )
    tx = AccessListTransaction(
        chain_id=_uint(items[0], "chain_id", 8),
        nonce=_uint(items[1], "nonce", 8),
        gas_price=Wei(_uint(items[2], "gas_price")),
        gas_limit=_uint(items[3], "gas_limit", 8),
        to=_to(items[4]),
        value=Wei(_uint(items[5], "value")),
        data=_bytes(items[6], "data"),
        access_list=_access_list(items[7]),
    )
    return tx if len(items) == 8 else _signature(items[8:11], tx)


def _parse_fee_market_tx(items: list[_RlpValue]) -> ParsedTransaction:
    if len(items) not in (9, 12):
        raise DecodeError(
            f"an EIP-1559 transaction has 9 or 12 fields, not {len(items)}", field="transaction"
        )
    tx = FeeMarketTransaction(
        chain_id=_uint(items[0], "chain_id", 8),
        nonce=_uint(items[1], "nonce", 8),
        max_priority_fee_per_gas=Wei(_uint(items[2], "max_priority_fee_per_gas")),
        max_fee_per_gas=Wei(_uint(items[3], "max_fee_per_gas")),
        gas_limit=_uint(items[4], "gas_limit", 8),
        to=_to(items[5]),
        value=Wei(_uint(items[6], "value")),
        data=_bytes(items[7], "data"),
        access_list=_access_list(items[8]),
    )
    return tx if len(items) == 9 else _signature(items[9:12], tx)


def parse_transaction(raw: bytes) -> ParsedTransaction:
    """Parse a raw transaction, signed or unsigned, of type 0, 1 or 2.

    Raises:
        DecodeError: empty, oversized, malformed or non-canonical bytes, a field of the
            wrong shape, or a signature with the wrong ``v``.
        UnsupportedError: an EIP-2718 type other than 1 or 2 (blob, set-code...).
        InvalidFieldError, InvalidAmountError, SignatureAssemblyError: a field out of
            range or a high-s / out-of-range signature.
    """
    if not isinstance(raw, bytes | bytearray):
        raise DecodeError("must be bytes", field="transaction")
    raw = bytes(raw)
    if not raw:
        raise DecodeError("is empty", field="transaction")
    if len(raw) > MAX_RAW_TRANSACTION_BYTES:
        raise DecodeError(
            f"is {len(raw)} bytes; at most {MAX_RAW_TRANSACTION_BYTES} are read",
            field="transaction",
        )
    first = raw[0]
    if first >= 0xC0:
        items = _list(rlp_decode.decode(raw, max_depth=1), "transaction")
        return _parse_legacy(items)
    if first in (1, 2):
        items = _list(rlp_decode.decode(raw[1:], max_depth=4), "transaction")
        if first == 1:
            return _parse_access_list_tx(items)
        return _parse_fee_market_tx(items)
    if first < 0x80:
        raise UnsupportedError(f"transaction type {first} is not supported", field="type")
    raise DecodeError("is neither a typed envelope nor an RLP list", field="transaction")


def parse_hex(text: str, *, field: str = "data") -> bytes:
    """Decode a hex string with an optional ``0x`` prefix (surrounding whitespace ignored).

    Raises:
        DecodeError: not a string, too long, odd length or a non-hex character.
    """
    if not isinstance(text, str):
        raise DecodeError("must be a hex string", field=field)
    body = text.strip()
    if body[:2] in ("0x", "0X"):
        body = body[2:]
    if len(body) > 2 * MAX_RAW_TRANSACTION_BYTES:
        raise DecodeError("is too long", field=field)
    if _HEX.fullmatch(body) is None:
        raise DecodeError("is not valid hex (odd length or a non-hex character)", field=field)
    return bytes.fromhex(body)
