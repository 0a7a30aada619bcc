"""Fee caps in the policy document: the fields each chain family's cap names, read
strictly and written canonically (docs/policy.md "Fee caps").

A cap is keyed by a network name as co-signers name the network of a payload, and its
chain family comes from the name where the name fixes it (:func:`network_family`), else
from the fields the entry names:

* a well-known EVM chain id's name
  (:data:`shardvault.chains.ethereum.networks.KNOWN_NETWORKS`: ``ethereum``, ``base``,
  ``hardhat``, ...) is an EVM network;
* a Bitcoin network is one of :data:`shardvault.chains.bitcoin.NETWORK_NAMES`
  (``bitcoin``, ``testnet``, ``signet``, ``regtest``), the names co-signers accept;
* any other name is an EVM network that the signed asset registry names (any chain id
  can be one) or a Solana network, as its fields say.

An entry names fields of one family only, and of the name's own where the name fixes
it: a field that could never be enforced (no payload of that family is ever given that
network) is refused when the policy loads, with the path of the field. Where the policy
meets its bundle's asset registry (:func:`refuse_unmatched_fee_caps`), an EVM cap must
name an EVM network (a well-known one, or one the registry lists) and a cap on a network
the registry lists must be of its chain family; every entry that passes both is enforced
by the co-signers. Amounts are whole numbers written as decimal strings (no
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
from shardvault.chains.ethereum.networks import WELL_KNOWN_NAMES
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
from shardvault.policy.registry import AssetRegistry, Chain

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

_LABELS = {ChainFamily.EVM: "EVM", ChainFamily.BITCOIN: "Bitcoin", ChainFamily.SOLANA: "Solana"}
_READ_AS = {
    ChainFamily.EVM: "the EVM network of a well-known chain id",
    ChainFamily.BITCOIN: "a Bitcoin network",
}
_FAMILY_OF_CHAIN = {
    Chain.ETHEREUM: ChainFamily.EVM,
    Chain.BITCOIN: ChainFamily.BITCOIN,
    Chain.SOLANA: ChainFamily.SOLANA,
}
_WHOLE_TEXT = re.compile(r"0|[1-9][0-9]*")
_RATE_TEXT = re.compile(r"(0|[1-9][0-9]{0,15})(\.[0-9]{0,2}[1-9])?")


def network_family(name: str) -> ChainFamily | None:
    """The chain family the network ``name`` belongs to whatever the registry says
    (module docstring): EVM for the names of well-known chain ids, Bitcoin for its four
    network names; ``None`` for any other name (an EVM network of the registry's, or a
    Solana network)."""
    if name in WELL_KNOWN_NAMES:
        return ChainFamily.EVM
    if name in BITCOIN_NETWORK_NAMES:
        return ChainFamily.BITCOIN
    return None


def _family_of_fields(network: str, fields: Mapping[str, object], path: str) -> ChainFamily:
    """The family of an entry on a name that does not fix one: its fields' family (the
    first field's; a Bitcoin field is refused, Bitcoin networks having their own names)."""
    if not fields:
        raise PolicyDocumentError(
            "a fee cap names at least one of " + ", ".join(FEE_CAP_FIELDS), path=path
        )
    first = next(iter(fields))
    family = next(f for f, names in FAMILY_FIELDS.items() if first in names)
    if family is ChainFamily.BITCOIN:
        raise PolicyDocumentError(
            f"{first} is a fee cap of Bitcoin networks, which are named "
            f"{', '.join(sorted(BITCOIN_NETWORK_NAMES))}, not {network!r}",
            path=f"{path}.{first}",
        )
    return family


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
    fixed = network_family(network)
    family = fixed if fixed is not None else _family_of_fields(network, fields, path)
    allowed = FAMILY_FIELDS[family]
    read_as = _READ_AS[fixed] if fixed is not None else f"one of the {_LABELS[family]} networks"
    if not fields:
        raise PolicyDocumentError(
            f"a fee cap of {read_as} names at least one of {', '.join(allowed)}", path=path
        )
    for name in fields:
        if name not in allowed:
            other = next(f for f, names in FAMILY_FIELDS.items() if name in names)
            raise PolicyDocumentError(
                f"{name} is a fee cap of {_LABELS[other]} networks, but co-signers read "
                f"{network!r} as {read_as}, so it would never apply (its fee cap names "
                f"{', '.join(allowed)})",
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


def refuse_unmatched_fee_caps(
    caps: Mapping[str, FeeCap], registry: AssetRegistry | None, path: str = "policy.fee_caps"
) -> None:
    """Refuse a cap that the bundle's asset registry makes unenforceable (module
    docstring): an EVM cap on a name that is neither a well-known EVM network nor an EVM
    network of ``registry``, or a cap on a network ``registry`` lists as another family.

    Raises:
        PolicyDocumentError: naming the cap's path, its family and the network's.
    """
    for network, cap in sorted(caps.items()):
        listed = None if registry is None else registry.network(network)
        if listed is not None:
            family = _FAMILY_OF_CHAIN[listed.chain]
            if cap.family is not family:
                raise PolicyDocumentError(
                    f"{_LABELS[cap.family]} fee cap, but the signed asset registry lists "
                    f"{network!r} among its {_LABELS[family]} networks, so it would never "
                    "apply",
                    path=f"{path}.{network}",
                )
        elif cap.family is ChainFamily.EVM and network not in WELL_KNOWN_NAMES:
            raise PolicyDocumentError(
                f"an EVM fee cap on {network!r}, which is neither a well-known EVM network "
                "nor one the signed asset registry lists, so it would never apply",
                path=f"{path}.{network}",
            )
