"""Building transactions from requests: native transfers, ERC-20 transfers and approvals,
and arbitrary contract calls, with amounts parsed exactly from decimal strings.

Every builder checks the chain id (a valid EIP-155 id; one that ``networks`` lists, when
the caller passes a table), parses recipient addresses with their EIP-55 checksum, and
turns a decimal amount into base units against the asset's decimals (18 for ether);
nothing here uses floats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shardvault.chains.amounts import UINT256_MAX, Wei, parse_decimal_amount
from shardvault.chains.ethereum.abi import (
    ERC20_APPROVE,
    ERC20_TRANSFER,
    AbiFunction,
    AbiValue,
    encode_call,
)
from shardvault.chains.ethereum.address import Address, parse_address
from shardvault.chains.ethereum.errors import InvalidFieldError
from shardvault.chains.ethereum.models import (
    AccessListEntry,
    FeeMarketTransaction,
    check_chain_id,
)
from shardvault.chains.ethereum.networks import EvmNetwork, network_for

ETHER_DECIMALS = 18
"""Ether and every EVM native asset have 18 decimals."""


@dataclass(frozen=True, slots=True)
class FeeParameters:
    """EIP-1559 fee caps and the gas limit for one transaction."""

    max_fee_per_gas: Wei
    max_priority_fee_per_gas: Wei
    gas_limit: int


def parse_ether(text: str, *, field: str = "value") -> Wei:
    """Parse a decimal ether amount (``"1.5"``) into wei, exactly.

    Raises:
        InvalidAmountError: not a plain non-negative decimal, more than 18 decimals, or
            above uint256.
    """
    return Wei(parse_decimal_amount(text, ETHER_DECIMALS, maximum=UINT256_MAX, field=field))


def parse_token_amount(text: str, decimals: int, *, field: str = "amount") -> int:
    """Parse a decimal token amount against the token's ``decimals`` into its raw integer.

    Raises:
        InvalidFieldError: ``decimals`` outside 0..77 (uint256 holds at most 77 digits).
        InvalidAmountError: see :func:`parse_ether`.
    """
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 77:
        raise InvalidFieldError("must be an integer between 0 and 77", field="decimals")
    return parse_decimal_amount(text, decimals, maximum=UINT256_MAX, field=field)


def _fee_market(
    chain_id: int,
    nonce: int,
    to: Address,
    value: Wei,
    data: bytes,
    fees: FeeParameters,
    networks: Mapping[int, EvmNetwork] | None,
    access_list: tuple[AccessListEntry, ...] = (),
) -> FeeMarketTransaction:
    # Any valid chain id, or (given a table) only one it lists.
    if networks is None:
        check_chain_id(chain_id)
    else:
        network_for(chain_id, networks)
    return FeeMarketTransaction(
        chain_id=chain_id,
        nonce=nonce,
        max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
        max_fee_per_gas=fees.max_fee_per_gas,
        gas_limit=fees.gas_limit,
        to=to,
        value=value,
        data=data,
        access_list=access_list,
    )


def native_transfer(
    *,
    chain_id: int,
    nonce: int,
    to: str,
    amount: str,
    fees: FeeParameters,
    networks: Mapping[int, EvmNetwork] | None = None,
) -> FeeMarketTransaction:
    """An EIP-1559 transfer of ``amount`` (decimal ether) to ``to``.

    Raises:
        InvalidAddressError, InvalidAmountError, InvalidFieldError, UnsupportedError.
    """
    recipient = parse_address(to, field="to")
    return _fee_market(chain_id, nonce, recipient, parse_ether(amount), b"", fees, networks)


def erc20_transfer(
    *,
    chain_id: int,
    nonce: int,
    token: str,
    to: str,
    amount: str,
    decimals: int,
    fees: FeeParameters,
    networks: Mapping[int, EvmNetwork] | None = None,
) -> FeeMarketTransaction:
    """An EIP-1559 call of ``token.transfer(to, amount)`` with ``amount`` in token units.

    Raises:
        InvalidAddressError, InvalidAmountError, InvalidFieldError, UnsupportedError.
    """
    contract = parse_address(token, field="token")
    recipient = parse_address(to, field="to")
    raw = parse_token_amount(amount, decimals)
    data = encode_call(ERC20_TRANSFER, [recipient, raw])
    return _fee_market(chain_id, nonce, contract, Wei(0), data, fees, networks)


def erc20_approve(
    *,
    chain_id: int,
    nonce: int,
    token: str,
    spender: str,
    amount: str,
    decimals: int,
    fees: FeeParameters,
    networks: Mapping[int, EvmNetwork] | None = None,
) -> FeeMarketTransaction:
    """An EIP-1559 call of ``token.approve(spender, amount)``.

    Raises:
        InvalidAddressError, InvalidAmountError, InvalidFieldError, UnsupportedError.
    """
    contract = parse_address(token, field="token")
    approved = parse_address(spender, field="spender")
    raw = parse_token_amount(amount, decimals)
    data = encode_call(ERC20_APPROVE, [approved, raw])
    return _fee_market(chain_id, nonce, contract, Wei(0), data, fees, networks)


def contract_call(
    *,
    chain_id: int,
    nonce: int,
    contract: str,
    fn: AbiFunction,
    arguments: Sequence[AbiValue],
    fees: FeeParameters,
    value: str = "0",
    networks: Mapping[int, EvmNetwork] | None = None,
) -> FeeMarketTransaction:
    """An EIP-1559 call of ``fn(*arguments)`` on ``contract``, sending ``value`` ether.

    Raises:
        InvalidAddressError, InvalidAmountError, InvalidFieldError, UnsupportedError.
    """
    target = parse_address(contract, field="contract")
    data = encode_call(fn, arguments)
    return _fee_market(chain_id, nonce, target, parse_ether(value), data, fees, networks)
