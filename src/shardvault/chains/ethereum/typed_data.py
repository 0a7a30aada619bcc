"""EIP-712 typed structured data hashing, as ``eth_signTypedData_v4`` defines it.

EIP-712 "Specification": ``encodeType`` (primary type, then referenced struct types sorted
by name), ``typeHash = keccak256(encodeType)``, ``encodeData`` (typeHash followed by one
32-byte word per member: atomic values ABI-encoded, ``string``/``bytes`` hashed, structs
replaced by their ``hashStruct``, arrays by the keccak256 of their elements' words, as the
v4 revision handles arrays), ``hashStruct = keccak256(encodeData)`` and the signing hash
``keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ hashStruct(message))``.

Input is the JSON object wallets exchange (``types``, ``primaryType``, ``domain``,
``message``). Validation is strict: unknown types, missing or extra members and values out
of their type's range are :class:`InvalidFieldError` naming the member's path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from eth_hash.auto import keccak

from shardvault.chains.ethereum.address import parse_address
from shardvault.chains.ethereum.errors import InvalidFieldError

MAX_DEPTH = 16
"""The deepest nesting of structs and arrays accepted in a message."""

MAX_ARRAY_LENGTH = 4096
"""The longest array accepted in a message."""

DOMAIN_TYPE = "EIP712Domain"
"""The reserved name of the domain's struct type."""

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_ARRAY_SUFFIX = re.compile(r"^(.*)\[([0-9]*)\]$")
_INT_TYPE = re.compile(r"(u?)int([0-9]*)")
_FIXED_BYTES = re.compile(r"bytes([0-9]+)")


@dataclass(frozen=True, slots=True)
class TypedDataField:
    """One member of a struct type: its name and its type string."""

    name: str
    type: str


@dataclass(frozen=True, slots=True)
class TypedData:
    """A validated ``eth_signTypedData_v4`` payload."""

    types: Mapping[str, tuple[TypedDataField, ...]]
    primary_type: str
    domain: Mapping[str, object]
    message: Mapping[str, object]


def _mapping(value: object, field: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidFieldError("must be a JSON object", field=field)
    return value


def parse_typed_data(payload: object) -> TypedData:
    """Validate a typed-data JSON object and check every type it declares is well formed.

    Raises:
        InvalidFieldError: a missing key, a malformed type declaration, an undeclared type,
            or no ``EIP712Domain`` type.
    """
    root = _mapping(payload, "typed_data")
    for key in ("types", "primaryType", "domain", "message"):
        if key not in root:
            raise InvalidFieldError("is missing", field=key)
    raw_types = _mapping(root["types"], "types")
    types: dict[str, tuple[TypedDataField, ...]] = {}
    for type_name, members in raw_types.items():
        if _IDENTIFIER.fullmatch(type_name) is None:
            raise InvalidFieldError("is not a valid struct name", field=f"types.{type_name}")
        if not isinstance(members, list):
            raise InvalidFieldError("must be a list of members", field=f"types.{type_name}")
        fields: list[TypedDataField] = []
        for index, member in enumerate(members):
            where = f"types.{type_name}[{index}]"
            entry = _mapping(member, where)
            name, kind = entry.get("name"), entry.get("type")
            if not isinstance(name, str) or _IDENTIFIER.fullmatch(name) is None:
                raise InvalidFieldError("needs a valid member name", field=where)
            if not isinstance(kind, str):
                raise InvalidFieldError("needs a type string", field=where)
            if any(f.name == name for f in fields):
                raise InvalidFieldError(f"declares member {name!r} twice", field=where)
            fields.append(TypedDataField(name, kind))
        types[type_name] = tuple(fields)
    if DOMAIN_TYPE not in types:
        raise InvalidFieldError("must declare EIP712Domain", field="types")
    for type_name, declared in types.items():
        for field in declared:
            _check_type(field.type, types, f"types.{type_name}.{field.name}")
    primary = root["primaryType"]
    if not isinstance(primary, str) or primary not in types:
        raise InvalidFieldError("must name a declared struct type", field="primaryType")
    return TypedData(
        types=types,
        primary_type=primary,
        domain=_mapping(root["domain"], "domain"),
        message=_mapping(root["message"], "message"),
    )


def _check_type(kind: str, types: Mapping[str, tuple[TypedDataField, ...]], where: str) -> None:
    """Check a member type names an atomic type, string/bytes, a struct, or an array of them."""
    base = kind
    while (match := _ARRAY_SUFFIX.match(base)) is not None:
        base = match.group(1)
    if base in types or base in ("bool", "address", "string", "bytes"):
        return
    if (m := _INT_TYPE.fullmatch(base)) is not None:
        bits = int(m.group(2) or "256")
        if 8 <= bits <= 256 and bits % 8 == 0:
            return
    if (m := _FIXED_BYTES.fullmatch(base)) is not None and 1 <= int(m.group(1)) <= 32:
        return
    raise InvalidFieldError(f"type {kind!r} is neither atomic nor a declared struct", field=where)


def _dependencies(primary: str, types: Mapping[str, tuple[TypedDataField, ...]]) -> list[str]:
    """Struct types reachable from ``primary`` (itself included), found iteratively."""
    found: list[str] = []
    pending = [primary]
    while pending:
        name = pending.pop()
        if name in found or name not in types:
            continue
        found.append(name)
        for field in types[name]:
            base = field.type.split("[", 1)[0]
            pending.append(base)
    return found


def encode_type(primary: str, types: Mapping[str, tuple[TypedDataField, ...]]) -> str:
    """EIP-712 ``encodeType``: ``Name(type member,...)`` for the primary type followed by
    every struct type it references, sorted by name."""
    deps = _dependencies(primary, types)
    ordered = [primary, *sorted(d for d in deps if d != primary)]
    return "".join(
        f"{name}({','.join(f'{f.type} {f.name}' for f in types[name])})" for name in ordered
    )


def type_hash(primary: str, types: Mapping[str, tuple[TypedDataField, ...]]) -> bytes:
    """EIP-712 ``typeHash``: keccak256 of :func:`encode_type`."""
    return bytes(keccak(encode_type(primary, types).encode("utf-8")))


def _integer(value: object, where: str) -> int:
    """Integers arrive as JSON numbers, decimal strings or 0x-hex strings."""
    if isinstance(value, bool):
        raise InvalidFieldError("must be an integer, not a boolean", field=where)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and len(value) <= 80:
        text = value.strip()
        try:
            if text.lower().startswith(("0x", "-0x")):
                return int(text, 16)
            if re.fullmatch(r"-?[0-9]+", text):
                return int(text, 10)
        except ValueError:
            pass
    raise InvalidFieldError("must be an integer, a decimal string or a 0x-hex string", field=where)


def _hex_bytes(value: object, where: str) -> bytes:
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise InvalidFieldError("must be a 0x-prefixed hex string", field=where)
    body = value[2:]
    if len(body) % 2 or re.fullmatch(r"[0-9a-fA-F]*", body) is None:
        raise InvalidFieldError("is not valid hex", field=where)
    return bytes.fromhex(body)


def _encode_atomic(kind: str, value: object, where: str) -> bytes:
    """ABI-encode an atomic value into one 32-byte word (EIP-712 ``encodeData``)."""
    if kind == "bool":
        if not isinstance(value, bool):
            raise InvalidFieldError("must be true or false", field=where)
        return int(value).to_bytes(32, "big")
    if kind == "address":
        if not isinstance(value, str):
            raise InvalidFieldError("must be an address string", field=where)
        return bytes(12) + parse_address(value, field=where).raw
    if (m := _INT_TYPE.fullmatch(kind)) is not None:
        bits = int(m.group(2) or "256")
        number = _integer(value, where)
        if m.group(1) == "u":
            if not 0 <= number < 2**bits:
                raise InvalidFieldError(f"is outside the range of {kind}", field=where)
            return number.to_bytes(32, "big")
        if not -(2 ** (bits - 1)) <= number < 2 ** (bits - 1):
            raise InvalidFieldError(f"is outside the range of {kind}", field=where)
        return number.to_bytes(32, "big", signed=True)
    if (m := _FIXED_BYTES.fullmatch(kind)) is not None:
        raw = _hex_bytes(value, where)
        if len(raw) != int(m.group(1)):
            raise InvalidFieldError(f"must be exactly {m.group(1)} bytes", field=where)
        return raw.ljust(32, b"\x00")
    raise InvalidFieldError(f"has unknown type {kind!r}", field=where)


def _encode_value(
    kind: str,
    value: object,
    types: Mapping[str, tuple[TypedDataField, ...]],
    where: str,
    depth: int,
) -> bytes:
    """The 32-byte word a member contributes to its struct's ``encodeData``."""
    if depth > MAX_DEPTH:
        raise InvalidFieldError(f"nests deeper than {MAX_DEPTH} levels", field=where)
    if (match := _ARRAY_SUFFIX.match(kind)) is not None:
        element, size = match.group(1), match.group(2)
        if not isinstance(value, list):
            raise InvalidFieldError("must be an array", field=where)
        if size and len(value) != int(size):
            raise InvalidFieldError(f"must have exactly {size} elements", field=where)
        if len(value) > MAX_ARRAY_LENGTH:
            raise InvalidFieldError(f"has more than {MAX_ARRAY_LENGTH} elements", field=where)
        words = b"".join(
            _encode_value(element, item, types, f"{where}[{i}]", depth + 1)
            for i, item in enumerate(value)
        )
        return bytes(keccak(words))
    if kind in types:
        return _hash_struct(kind, value, types, where, depth + 1)
    if kind == "string":
        if not isinstance(value, str):
            raise InvalidFieldError("must be a string", field=where)
        return bytes(keccak(value.encode("utf-8")))
    if kind == "bytes":
        return bytes(keccak(_hex_bytes(value, where)))
    return _encode_atomic(kind, value, where)


def _encode_data(
    primary: str,
    value: object,
    types: Mapping[str, tuple[TypedDataField, ...]],
    where: str,
    depth: int,
) -> bytes:
    data = _mapping(value, where)
    fields = types[primary]
    names = {f.name for f in fields}
    extra = sorted(set(data) - names)
    if extra:
        # Members that are not part of the type are not signed; showing them would
        # mislead whoever approves the message, so they are refused.
        raise InvalidFieldError(f"has members not in type {primary}: {extra}", field=where)
    words = [type_hash(primary, types)]
    for field in fields:
        if field.name not in data:
            raise InvalidFieldError("is missing", field=f"{where}.{field.name}")
        words.append(
            _encode_value(field.type, data[field.name], types, f"{where}.{field.name}", depth)
        )
    return b"".join(words)


def _hash_struct(
    primary: str,
    value: object,
    types: Mapping[str, tuple[TypedDataField, ...]],
    where: str,
    depth: int,
) -> bytes:
    return bytes(keccak(_encode_data(primary, value, types, where, depth)))


def encode_data(typed: TypedData) -> bytes:
    """EIP-712 ``encodeData`` of the message under its primary type."""
    return _encode_data(typed.primary_type, typed.message, typed.types, "message", 0)


def hash_struct(typed: TypedData) -> bytes:
    """EIP-712 ``hashStruct(message)``."""
    return _hash_struct(typed.primary_type, typed.message, typed.types, "message", 0)


def domain_separator(typed: TypedData) -> bytes:
    """EIP-712 ``domainSeparator = hashStruct(eip712Domain)``."""
    return _hash_struct(DOMAIN_TYPE, typed.domain, typed.types, "domain", 0)


def typed_data_hash(typed: TypedData) -> bytes:
    """The digest to sign: ``keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ hashStruct(message))``.

    When the primary type is ``EIP712Domain`` itself, v4 signs the domain alone.

    Raises:
        InvalidFieldError: the domain or message does not match its declared types.
    """
    separator = domain_separator(typed)
    if typed.primary_type == DOMAIN_TYPE:
        return bytes(keccak(b"\x19\x01" + separator))
    return bytes(keccak(b"\x19\x01" + separator + hash_struct(typed)))
