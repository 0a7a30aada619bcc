"""Contract calldata: Solidity ABI encoding and decoding of function calls.

Solidity ABI specification, "Function Selector" and "Argument Encoding": calldata is the
first four bytes of keccak256 of the canonical signature ``name(type1,type2,...)``
followed by the ABI encoding of the arguments. The argument codec is eth-abi's; this
module adds typed function descriptions, selector lookup against known ABIs (ERC-20 among
them, EIP-20 "Methods"), strict decoding, and conversion of decoded values to
shardvault's own types (addresses become :class:`Address`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import eth_abi.exceptions
from eth_abi.abi import decode as _abi_decode
from eth_abi.abi import encode as _abi_encode
from eth_abi.grammar import ABIType, BasicType, TupleType, parse
from eth_hash.auto import keccak

from shardvault.chains.errors import DecodeError, UnsupportedError
from shardvault.chains.ethereum.address import Address, parse_address
from shardvault.chains.ethereum.errors import InvalidFieldError
from shardvault.chains.ethereum.models import MAX_DATA_BYTES

AbiValue = int | bool | str | bytes | Address | tuple["AbiValue", ...]
"""A Python value of an ABI type: integers, booleans, strings, bytes, addresses, tuples."""

_ABI_ERRORS = (
    eth_abi.exceptions.DecodingError,
    eth_abi.exceptions.EncodingError,
    eth_abi.exceptions.ABITypeError,
    eth_abi.exceptions.ParseError,
    ValueError,
    TypeError,
    OverflowError,
    UnicodeDecodeError,
)


@dataclass(frozen=True, slots=True)
class AbiParameter:
    """A function parameter: its name and canonical ABI type (tuples spelled ``(a,b)``)."""

    name: str
    type: str

    def __post_init__(self) -> None:
        _parse_type(self.type, self.name or "parameter")


@dataclass(frozen=True, slots=True)
class AbiFunction:
    """A contract function as the ABI describes it."""

    name: str
    inputs: tuple[AbiParameter, ...]

    @property
    def signature(self) -> str:
        """The canonical signature, e.g. ``transfer(address,uint256)``."""
        return f"{self.name}({','.join(p.type for p in self.inputs)})"

    @property
    def selector(self) -> bytes:
        """The first four bytes of keccak256 of :attr:`signature`."""
        return bytes(keccak(self.signature.encode("ascii")))[:4]


@dataclass(frozen=True, slots=True)
class DecodedCall:
    """Calldata matched to a known function, with its arguments decoded."""

    function: AbiFunction
    arguments: tuple[AbiValue, ...]

    def named_arguments(self) -> dict[str, AbiValue]:
        """Arguments keyed by parameter name (``arg<i>`` where the ABI gives none)."""
        return {
            (p.name or f"arg{i}"): value
            for i, (p, value) in enumerate(zip(self.function.inputs, self.arguments, strict=True))
        }


def _parse_type(text: str, field: str) -> ABIType:
    try:
        parsed: ABIType = parse(text)
        parsed.validate()  # type: ignore[no-untyped-call]
    except _ABI_ERRORS as exc:
        raise InvalidFieldError(f"{text!r} is not a valid ABI type", field=field) from exc
    return parsed


def function(signature: str, names: Sequence[str] = ()) -> AbiFunction:
    """Build an :class:`AbiFunction` from ``name(type,...)`` and optional parameter names.

    Raises:
        InvalidFieldError: the signature does not parse or ``names`` has the wrong length.
    """
    open_at = signature.find("(")
    if open_at <= 0 or not signature.endswith(")"):
        raise InvalidFieldError("must look like name(type,...)", field="signature")
    name = signature[:open_at]
    parsed = _parse_type(signature[open_at:], "signature")
    if not isinstance(parsed, TupleType) or parsed.is_array:
        raise InvalidFieldError("must look like name(type,...)", field="signature")
    types = [c.to_type_str() for c in parsed.components]
    if names and len(names) != len(types):
        raise InvalidFieldError("needs one name per parameter", field="names")
    labels = list(names) if names else [""] * len(types)
    return AbiFunction(name, tuple(AbiParameter(n, t) for n, t in zip(labels, types, strict=True)))


def _json_type(entry: Mapping[str, object], field: str) -> str:
    """Canonical type of a JSON ABI parameter, expanding ``tuple`` with its components."""
    kind = entry.get("type")
    if not isinstance(kind, str):
        raise InvalidFieldError("needs a type", field=field)
    if kind.startswith("tuple"):
        components = entry.get("components")
        if not isinstance(components, list):
            raise InvalidFieldError("tuple needs components", field=field)
        inner = ",".join(_json_type(_as_mapping(c, field), field) for c in components)
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def _as_mapping(value: object, field: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise InvalidFieldError("must be a JSON object", field=field)
    return value


def functions_from_json_abi(abi: Iterable[object]) -> tuple[AbiFunction, ...]:
    """Extract the functions of a contract's JSON ABI (other entries are skipped).

    Raises:
        InvalidFieldError: a function entry is malformed.
    """
    result = []
    for index, item in enumerate(abi):
        entry = _as_mapping(item, f"abi[{index}]")
        if entry.get("type", "function") != "function":
            continue
        name = entry.get("name")
        inputs = entry.get("inputs", [])
        if not isinstance(name, str) or not isinstance(inputs, list):
            raise InvalidFieldError("function needs a name and inputs", field=f"abi[{index}]")
        params = []
        for j, raw in enumerate(inputs):
            param = _as_mapping(raw, f"abi[{index}].inputs[{j}]")
            label = param.get("name", "")
            params.append(
                AbiParameter(
                    label if isinstance(label, str) else "",
                    _json_type(param, f"abi[{index}].inputs[{j}]"),
                )
            )
        result.append(AbiFunction(name, tuple(params)))
    return tuple(result)


ERC20_TRANSFER = function("transfer(address,uint256)", ("to", "value"))
"""EIP-20 ``transfer(address _to, uint256 _value)``."""

ERC20_APPROVE = function("approve(address,uint256)", ("spender", "value"))
"""EIP-20 ``approve(address _spender, uint256 _value)``."""

ERC20_TRANSFER_FROM = function("transferFrom(address,address,uint256)", ("from", "to", "value"))
"""EIP-20 ``transferFrom(address _from, address _to, uint256 _value)``."""

ERC20_BALANCE_OF = function("balanceOf(address)", ("owner",))
"""EIP-20 ``balanceOf(address _owner)``."""

ERC20_ALLOWANCE = function("allowance(address,address)", ("owner", "spender"))
"""EIP-20 ``allowance(address _owner, address _spender)``."""

ERC20_FUNCTIONS = (
    ERC20_TRANSFER,
    ERC20_APPROVE,
    ERC20_TRANSFER_FROM,
    ERC20_BALANCE_OF,
    ERC20_ALLOWANCE,
)
"""The ERC-20 functions the decoder recognises without being told."""


def _to_codec(value: AbiValue) -> object:
    """Turn shardvault values into what eth-abi's encoder takes."""
    if isinstance(value, Address):
        return value.checksummed
    if isinstance(value, tuple):
        return tuple(_to_codec(v) for v in value)
    return value


def _check_address_strings(kind: ABIType, value: object, field: str) -> None:
    """Address arguments given as text must pass EIP-55 checks before encoding."""
    if isinstance(kind, BasicType) and not kind.is_array and kind.base == "address":
        if isinstance(value, str):
            parse_address(value, field=field)
    elif kind.is_array and isinstance(value, list | tuple):
        for item in value:
            _check_address_strings(kind.item_type, item, field)
    elif isinstance(kind, TupleType) and isinstance(value, tuple):
        for sub, item in zip(kind.components, value, strict=False):
            _check_address_strings(sub, item, field)


def encode_call(fn: AbiFunction, arguments: Sequence[AbiValue]) -> bytes:
    """Selector followed by the ABI encoding of ``arguments``.

    Raises:
        InvalidFieldError: wrong argument count or an argument that does not fit its
            type; the field is ``<function>.<parameter>``.
        InvalidAddressError: an address argument with a wrong EIP-55 checksum.
    """
    if len(arguments) != len(fn.inputs):
        raise InvalidFieldError(
            f"takes {len(fn.inputs)} arguments, got {len(arguments)}", field=fn.name
        )
    converted = []
    for index, (param, value) in enumerate(zip(fn.inputs, arguments, strict=True)):
        where = f"{fn.name}.{param.name or f'arg{index}'}"
        _check_address_strings(_parse_type(param.type, where), value, where)
        codec_value = _to_codec(value)
        try:
            _abi_encode([param.type], [codec_value])
        except _ABI_ERRORS as exc:
            raise InvalidFieldError(f"does not fit ABI type {param.type}", field=where) from exc
        converted.append(codec_value)
    encoded = fn.selector + bytes(_abi_encode([p.type for p in fn.inputs], converted))
    if len(encoded) > MAX_DATA_BYTES:
        raise InvalidFieldError(f"encodes to more than {MAX_DATA_BYTES} bytes", field="data")
    return encoded


def _from_codec(kind: ABIType, value: object, field: str) -> AbiValue:
    """Turn eth-abi's decoded value into shardvault's types, following the ABI type."""
    if kind.is_array:
        if not isinstance(value, list | tuple):
            raise DecodeError("decoded to a non-array value", field=field)
        return tuple(_from_codec(kind.item_type, item, field) for item in value)
    if isinstance(kind, TupleType):
        if not isinstance(value, tuple):
            raise DecodeError("decoded to a non-tuple value", field=field)
        return tuple(
            _from_codec(sub, item, field) for sub, item in zip(kind.components, value, strict=True)
        )
    if isinstance(kind, BasicType) and kind.base == "address":
        if not isinstance(value, str):
            raise DecodeError("decoded to a non-address value", field=field)
        return Address(bytes.fromhex(value[2:]))
    if isinstance(value, bool | int | str | bytes):
        return value
    raise DecodeError("decoded to an unexpected value", field=field)


def decode_arguments(fn: AbiFunction, encoded: bytes) -> tuple[AbiValue, ...]:
    """Decode the ABI-encoded arguments of ``fn`` (calldata without its selector).

    Raises:
        DecodeError: the bytes are not a valid encoding of ``fn``'s parameters.
    """
    types = [p.type for p in fn.inputs]
    try:
        values = _abi_decode(types, encoded, strict=True)
    except _ABI_ERRORS as exc:
        raise DecodeError(f"is not a valid encoding of {fn.signature}", field="data") from exc
    return tuple(
        _from_codec(_parse_type(p.type, "data"), v, f"data.{p.name or i}")
        for i, (p, v) in enumerate(zip(fn.inputs, values, strict=True))
    )


def decode_call(data: bytes, functions: Iterable[AbiFunction] = ERC20_FUNCTIONS) -> DecodedCall:
    """Match calldata's selector against ``functions`` and decode its arguments.

    Raises:
        DecodeError: fewer than four bytes, too long, or arguments that do not decode.
        UnsupportedError: no function in ``functions`` has this selector.
    """
    if not isinstance(data, bytes) or len(data) < 4:
        raise DecodeError("is shorter than a 4-byte function selector", field="data")
    if len(data) > MAX_DATA_BYTES:
        raise DecodeError(f"is longer than {MAX_DATA_BYTES} bytes", field="data")
    selector = data[:4]
    for fn in functions:
        if fn.selector == selector:
            return DecodedCall(fn, decode_arguments(fn, data[4:]))
    raise UnsupportedError(f"selector 0x{selector.hex()} matches no known function", field="data")


def abi_value_to_json(value: AbiValue) -> object:
    """A JSON-able rendering: integers as decimal strings, bytes as 0x-hex, addresses
    checksummed, tuples as lists."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, Address):
        return value.checksummed
    if isinstance(value, tuple):
        return [abi_value_to_json(v) for v in value]
    return value
