"""A strict, depth-limited RLP decoder (Yellow Paper, Appendix B) for untrusted bytes.

The ``rlp`` package encodes; decoding untrusted input goes through this module instead,
because it bounds nesting depth (a transaction never nests deeper than four lists, while
``rlp.decode`` recurses once per level and a crafted input exhausts the Python stack) and
refuses every non-canonical form: a single byte below 0x80 wrapped in a string header,
long-form lengths below 56, and lengths with leading zero bytes.
"""

from __future__ import annotations

from shardvault.chains.errors import DecodeError

RlpValue = bytes | list["RlpValue"]
"""A decoded RLP item: a byte string or a list of items."""


def decode(data: bytes, *, max_depth: int, field: str = "transaction") -> RlpValue:
    """Decode exactly one RLP item filling all of ``data``.

    Raises:
        DecodeError: truncated input, trailing bytes, a non-canonical encoding, or lists
            nested deeper than ``max_depth``; the message names ``field``.
    """
    item, end = _item(data, 0, max_depth, field)
    if end != len(data):
        raise DecodeError(f"has {len(data) - end} trailing bytes after the RLP item", field=field)
    return item


def _length(data: bytes, start: int, size: int, field: str) -> int:
    """Read a big-endian long-form length of ``size`` bytes at ``start``."""
    if start + size > len(data):
        raise DecodeError("is truncated inside an RLP length", field=field)
    raw = data[start : start + size]
    if raw[0] == 0:
        raise DecodeError("has an RLP length with leading zero bytes", field=field)
    length = int.from_bytes(raw, "big")
    if length < 56:
        raise DecodeError("uses a long RLP length form for a short item", field=field)
    return length


def _item(data: bytes, pos: int, depth: int, field: str) -> tuple[RlpValue, int]:
    """Decode the item starting at ``pos``; return it and the position after it."""
    if pos >= len(data):
        raise DecodeError("is truncated: an RLP item is missing", field=field)
    prefix = data[pos]
    if prefix < 0x80:
        return data[pos : pos + 1], pos + 1
    if prefix < 0xC0:
        if prefix <= 0xB7:
            length, start = prefix - 0x80, pos + 1
        else:
            size = prefix - 0xB7
            length, start = _length(data, pos + 1, size, field), pos + 1 + size
        end = start + length
        if end > len(data):
            raise DecodeError("is truncated inside an RLP string", field=field)
        if length == 1 and data[start] < 0x80:
            raise DecodeError("wraps a single byte below 0x80 in an RLP header", field=field)
        return data[start:end], end
    if depth <= 0:
        raise DecodeError("nests RLP lists deeper than a transaction can", field=field)
    if prefix <= 0xF7:
        length, start = prefix - 0xC0, pos + 1
    else:
        size = prefix - 0xF7
        length, start = _length(data, pos + 1, size, field), pos + 1 + size
    end = start + length
    if end > len(data):
        raise DecodeError("is truncated inside an RLP list", field=field)
    items: list[RlpValue] = []
    cursor = start
    while cursor < end:
        item, cursor = _item(data, cursor, depth - 1, field)
        items.append(item)
    if cursor != end:
        raise DecodeError("has an RLP list whose items overrun its length", field=field)
    return items, end
