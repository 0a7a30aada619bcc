"""Fee caps in the policy document: the fields each chain family's cap names, read
strictly and written canonically (docs/policy.md "Fee caps").

A cap is keyed by a network name as co-signers name the network of a payload, and the
name decides the cap's chain family (:func:`network_family`):

* an EVM network is named from the chain id its transactions carry, by
  :data:`shardvault.chains.ethereum.networks.KNOWN_NETWORKS` (``ethereum``, ``base``,
  ``hardhat``, ...);
* a Bitcoin network is one of :data:`shardvault.chains.bitcoin.NETWORK_NAMES`
  (``bitcoin``, ``testnet``, ``signet``, ``regtest``), the names co-signers accept;
* every other name is a Solana network (the workspace names those).

An entry names fields of its own family only. An EVM or Bitcoin field under any other
name could never be enforced (no payload of that family is ever given that network), so
it is refused when the policy loads, with the path of the field; every entry that loads
is enforced by the co-signers. Amounts are whole numbers written as decimal strings (no
leading zeros), as the EVM caps were first; the Bitcoin fee rate is a decimal string
with at most three decimals and no trailing zeros, read into an exact
:class:`~decimal.Decimal`. No binary floating point is read or used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TypeVar

from shardvault.chains.amounts import MAX_SATOSHI
from shardvault.chains.bitcoin import NETWORK_NAMES as BITCOIN_NETWORK_NAMES
from shardvault.chains.ethereum.networks import KNOWN_NETWORKS
from shardvault.chains.solana.compute_budget import MAX_COMPUTE_UNIT_LIMIT
from shardvault.policy._exact import EXACT
from shardvault.policy.errors import PolicyDocumentError
from shardvault.policy.model import (
    MAX_WEI_DIGITS,
    BitcoinFeeCap,
    ChainFamily,
    EvmFeeCap,
    FeeCap,
    SolanaFeeCap,
)

FAMILY_FIELDS: Mapping[ChainFamily, tuple[str, ...]] = {
    ChainFamily.EVM: ("max_fee_wei", "max_priority_fee_per_gas_wei"),
    ChainFamily.BITCOIN: ("max_fee_sat", "max_fee_rate_sat_per_vb"),
    ChainFamily.SOLANA: (
        "max_compute_unit_price_micro_lamports",
        "max_compute_unit_limit",
        "max_fee_lamports",
    ),
}
"""The fields a cap of each chain family may name."""

FEE_CAP_FIELDS: tuple[str, ...] = tuple(f for fields in FAMILY_FIELDS.values() for f in fields)
"""Every field a fee cap may name, whatever its family."""

T = TypeVar("T")

MAX_U64 = 2**64 - 1
"""The largest Solana ``u64``: compute-unit prices and lamport amounts."""

_EVM_NETWORK_NAMES = frozenset(network.name for network in KNOWN_NETWORKS.values())
_LABELS = {ChainFamily.EVM: "EVM", ChainFamily.BITCOIN: "Bitcoin", ChainFamily.SOLANA: "Solana"}
_READ_AS = {
    ChainFamily.EVM: "the EVM network of a known chain id",
    ChainFamily.BITCOIN: "a Bitcoin network",
    ChainFamily.SOLANA: (
        "a Solana network (EVM networks are named from a known chain id: "
        + ", ".join(sorted(_EVM_NETWORK_NAMES))
        + "; Bitcoin networks are "
        + ", ".join(sorted(BITCOIN_NETWORK_NAMES))
        + ")"
    ),
}
_WHOLE_TEXT = re.compile(r"0|[1-9][0-9]*")
_RATE_TEXT = re.compile(r"(0|[1-9][0-9]{0,15})(\.[0-9]{0,2}[1-9])?")


def network_family(name: str) -> ChainFamily:
    """The chain family whose payloads co-signers give the network ``name`` (module
    docstring): EVM for the names of known chain ids, Bitcoin for its four network
    names, Solana for every other name."""
    if name in _EVM_NETWORK_NAMES:
        return ChainFamily.EVM
    if name in BITCOIN_NETWORK_NAMES:
        return ChainFamily.BITCOIN
    return ChainFamily.SOLANA


def _whole(value: object, path: str, unit: str, max_digits: int, maximum: int | None) -> int:
    """A non-negative whole number written as a decimal string without leading zeros
    (JSON numbers lose precision this large in many readers, so none are taken)."""
    if (
        not isinstance(value, str)
        or len(value) > max_digits
        or not _WHOLE_TEXT.fullmatch(value)
        or (maximum is not None and int(value) > maximum)
    ):
        limit = f"at most {max_digits} digits" if maximum is None else f"at most {maximum}"
        raise PolicyDocumentError(
            f"expected a whole number of {unit} as a decimal string ({limit}, no leading zeros)",
            path=path,
        )
    return int(value)


def _wei(value: object, path: str) -> int:
    return _whole(value, path, "wei", MAX_WEI_DIGITS, None)


def _satoshi(value: object, path: str) -> int:
    return _whole(value, path, "satoshi", 16, MAX_SATOSHI)


def _micro_lamports(value: object, path: str) -> int:
    return _whole(value, path, "micro-lamports", 20, MAX_U64)


def _lamports(value: object, path: str) -> int:
    return _whole(value, path, "lamports", 20, MAX_U64)


def _compute_units(value: object, path: str) -> int:
    return _whole(value, path, "compute units", 7, MAX_COMPUTE_UNIT_LIMIT)


def _rate(value: object, path: str) -> Decimal:
    """Satoshi per virtual byte: ``25``, ``25.5``, ``0.125`` (at most three decimals,
    no leading or trailing zeros), read exactly."""
    if not isinstance(value, str) or not _RATE_TEXT.fullmatch(value):
        raise PolicyDocumentError(
            'expected satoshi per vbyte as a decimal string such as "25" or "12.5" (at '
            "most three decimals, no leading or trailing zeros)",
            path=path,
        )
    return Decimal(value)


def read_fee_cap(network: str, fields: Mapping[str, object], path: str) -> FeeCap:
    """Build the cap of ``network`` from its entry's ``fields`` (already checked to be
    among :data:`FEE_CAP_FIELDS`).

    Raises:
        PolicyDocumentError: no field; a field of another chain family than the
            network's (at the field's path); an amount that is not a decimal string in
            its range.
    """
    family = network_family(network)
    allowed = FAMILY_FIELDS[family]
    if not fields:
        raise PolicyDocumentError(
            f"a fee cap of {_READ_AS[family]} names at least one of {', '.join(allowed)}",
            path=path,
        )
    for name in fields:
        if name not in allowed:
            other = next(f for f, names in FAMILY_FIELDS.items() if name in names)
            raise PolicyDocumentError(
                f"{name} is a fee cap of {_LABELS[other]} networks, but co-signers read "
                f"{network!r} as {_READ_AS[family]}, so it would never apply (its fee cap "
                f"names {', '.join(allowed)})",
                path=f"{path}.{name}",
            )

    if family is ChainFamily.EVM:
        return EvmFeeCap(
            max_fee_wei=_optional(fields, path, "max_fee_wei", _wei),
            max_priority_fee_per_gas_wei=_optional(
                fields, path, "max_priority_fee_per_gas_wei", _wei
            ),
        )
    if family is ChainFamily.BITCOIN:
        return BitcoinFeeCap(
            max_fee_sat=_optional(fields, path, "max_fee_sat", _satoshi),
            max_fee_rate_sat_per_vb=_optional(fields, path, "max_fee_rate_sat_per_vb", _rate),
        )
    return SolanaFeeCap(
        max_compute_unit_price_micro_lamports=_optional(
            fields, path, "max_compute_unit_price_micro_lamports", _micro_lamports
        ),
        max_compute_unit_limit=_optional(fields, path, "max_compute_unit_limit", _compute_units),
        max_fee_lamports=_optional(fields, path, "max_fee_lamports", _lamports),
    )


def _optional(
    fields: Mapping[str, object], path: str, name: str, reader: Callable[[object, str], T]
) -> T | None:
    """``fields[name]`` read by ``reader`` (``None`` when absent; a JSON null is read,
    and refused, like any other value that is not a decimal string)."""
    if name not in fields:
        return None
    return reader(fields[name], f"{path}.{name}")


def fee_cap_document(cap: FeeCap) -> dict[str, object]:
    """The canonical entry of ``cap``: its set fields as decimal strings."""
    values: dict[str, int | Decimal | None]
    if isinstance(cap, EvmFeeCap):
        values = {
            "max_fee_wei": cap.max_fee_wei,
            "max_priority_fee_per_gas_wei": cap.max_priority_fee_per_gas_wei,
        }
    elif isinstance(cap, BitcoinFeeCap):
        values = {
            "max_fee_sat": cap.max_fee_sat,
            "max_fee_rate_sat_per_vb": cap.max_fee_rate_sat_per_vb,
        }
    else:
        values = {
            "max_compute_unit_price_micro_lamports": cap.max_compute_unit_price_micro_lamports,
            "max_compute_unit_limit": cap.max_compute_unit_limit,
            "max_fee_lamports": cap.max_fee_lamports,
        }
    out: dict[str, object] = {}
    for name, value in values.items():
        if isinstance(value, Decimal):
            out[name] = format(value.normalize(EXACT), "f")
        elif value is not None:
            out[name] = str(value)
    return out
