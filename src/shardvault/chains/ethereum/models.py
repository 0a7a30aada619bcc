"""Ethereum transaction models: legacy (EIP-155), access-list (EIP-2930), fee-market (EIP-1559).

Each model is a frozen dataclass whose constructor checks every field against the ranges
the protocol allows (EIP-2681 for the nonce, EIP-2294 for the chain id, uint256 for values
and fees, uint64 for the gas limit), so an instance is always encodable. A signature is
kept apart from the transaction it signs: :class:`SignedTransaction` pairs the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shardvault.chains.amounts import UINT256_MAX, Wei
from shardvault.chains.errors import InvalidAmountError, SignatureAssemblyError
from shardvault.chains.ethereum.address import Address
from shardvault.chains.ethereum.errors import InvalidFieldError

UINT64_MAX = 2**64 - 1
"""The largest gas limit a transaction can carry."""

MAX_NONCE = 2**64 - 2
"""EIP-2681: an account nonce must stay below 2**64 - 1."""

MAX_CHAIN_ID = UINT64_MAX // 2 - 36
"""EIP-2294: the largest chain id for which an EIP-155 ``v`` still fits in 64 bits."""

MAX_DATA_BYTES = 128 * 1024
"""The largest calldata or init code accepted, matching geth's 128 KiB transaction cap."""

MAX_ACCESS_LIST_ENTRIES = 1024
"""The most addresses an access list may name."""

MAX_ACCESS_LIST_KEYS = 2048
"""The most storage keys an access list may hold in total."""

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""The order n of the secp256k1 group; r and s of a signature lie in [1, n - 1]."""

SECP256K1_HALF_ORDER = SECP256K1_ORDER // 2
"""EIP-2 (Homestead): a valid transaction signature has s <= n / 2."""

TransactionType = Literal[0, 1, 2]


def _check_int(value: object, field: str, maximum: int, minimum: int = 0) -> int:
    """Check that ``value`` is a plain int (not a bool) within [minimum, maximum]."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidFieldError("must be an integer", field=field)
    if not minimum <= value <= maximum:
        raise InvalidFieldError(f"must be between {minimum} and {maximum}", field=field)
    return value


def _check_wei(value: object, field: str) -> None:
    """Amounts and fees are uint256 wei; out-of-range values are amount errors."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidAmountError("must be an integer number of wei", field=field)
    if value < 0:
        raise InvalidAmountError("must not be negative", field=field)
    if value > UINT256_MAX:
        raise InvalidAmountError("overflows uint256", field=field)


def check_chain_id(value: object, field: str = "chain_id") -> int:
    """Check an EIP-155 chain id: an integer in [1, MAX_CHAIN_ID].

    Raises:
        InvalidFieldError: not an integer, zero, negative or above the EIP-2294 bound.
    """
    return _check_int(value, field, MAX_CHAIN_ID, minimum=1)


def _check_common(nonce: int, gas_limit: int, to: Address | None, value: Wei, data: bytes) -> None:
    _check_int(nonce, "nonce", MAX_NONCE)
    _check_int(gas_limit, "gas_limit", UINT64_MAX)
    if to is not None and not isinstance(to, Address):
        raise InvalidFieldError("must be an Address or None for contract creation", field="to")
    _check_wei(value, "value")
    if not isinstance(data, bytes):
        raise InvalidFieldError("must be bytes", field="data")
    if len(data) > MAX_DATA_BYTES:
        raise InvalidFieldError(
            f"is {len(data)} bytes; at most {MAX_DATA_BYTES} are accepted", field="data"
        )


@dataclass(frozen=True, slots=True)
class AccessListEntry:
    """One EIP-2930 access-list item: an address and the storage keys it warms."""

    address: Address
    storage_keys: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.address, Address):
            raise InvalidFieldError("must be an Address", field="access_list.address")
        for key in self.storage_keys:
            if not isinstance(key, bytes) or len(key) != 32:
                raise InvalidFieldError("must be 32 bytes", field="access_list.storage_keys")


def _check_access_list(access_list: tuple[AccessListEntry, ...]) -> None:
    if not isinstance(access_list, tuple) or not all(
        isinstance(e, AccessListEntry) for e in access_list
    ):
        raise InvalidFieldError("must be a tuple of AccessListEntry", field="access_list")
    if len(access_list) > MAX_ACCESS_LIST_ENTRIES:
        raise InvalidFieldError(
            f"names more than {MAX_ACCESS_LIST_ENTRIES} addresses", field="access_list"
        )
    if sum(len(e.storage_keys) for e in access_list) > MAX_ACCESS_LIST_KEYS:
        raise InvalidFieldError(
            f"holds more than {MAX_ACCESS_LIST_KEYS} storage keys", field="access_list"
        )


@dataclass(frozen=True, slots=True)
class LegacyTransaction:
    """A type-0 transaction. With a ``chain_id`` it is signed as EIP-155 specifies;
    ``chain_id=None`` is the pre-EIP-155 form, kept only to parse old transactions."""

    chain_id: int | None
    nonce: int
    gas_price: Wei
    gas_limit: int
    to: Address | None
    value: Wei
    data: bytes = b""

    def __post_init__(self) -> None:
        if self.chain_id is not None:
            check_chain_id(self.chain_id)
        _check_wei(self.gas_price, "gas_price")
        _check_common(self.nonce, self.gas_limit, self.to, self.value, self.data)

    @property
    def type(self) -> TransactionType:
        """The EIP-2718 transaction type: 0."""
        return 0


@dataclass(frozen=True, slots=True)
class AccessListTransaction:
    """An EIP-2930 (type 1) transaction."""

    chain_id: int
    nonce: int
    gas_price: Wei
    gas_limit: int
    to: Address | None
    value: Wei
    data: bytes = b""
    access_list: tuple[AccessListEntry, ...] = ()

    def __post_init__(self) -> None:
        check_chain_id(self.chain_id)
        _check_wei(self.gas_price, "gas_price")
        _check_common(self.nonce, self.gas_limit, self.to, self.value, self.data)
        _check_access_list(self.access_list)

    @property
    def type(self) -> TransactionType:
        """The EIP-2718 transaction type: 1."""
        return 1


@dataclass(frozen=True, slots=True)
class FeeMarketTransaction:
    """An EIP-1559 (type 2) transaction."""

    chain_id: int
    nonce: int
    max_priority_fee_per_gas: Wei
    max_fee_per_gas: Wei
    gas_limit: int
    to: Address | None
    value: Wei
    data: bytes = b""
    access_list: tuple[AccessListEntry, ...] = ()

    def __post_init__(self) -> None:
        check_chain_id(self.chain_id)
        _check_wei(self.max_priority_fee_per_gas, "max_priority_fee_per_gas")
        _check_wei(self.max_fee_per_gas, "max_fee_per_gas")
        # EIP-1559: a transaction whose tip cap exceeds its fee cap is invalid.
        if self.max_priority_fee_per_gas > self.max_fee_per_gas:
            raise InvalidAmountError(
                "must not exceed max_fee_per_gas", field="max_priority_fee_per_gas"
            )
        _check_common(self.nonce, self.gas_limit, self.to, self.value, self.data)
        _check_access_list(self.access_list)

    @property
    def type(self) -> TransactionType:
        """The EIP-2718 transaction type: 2."""
        return 2


Transaction = LegacyTransaction | AccessListTransaction | FeeMarketTransaction
"""Any unsigned Ethereum transaction shardvault builds or parses."""


@dataclass(frozen=True, slots=True)
class Signature:
    """An ECDSA signature over a transaction's signing hash: (r, s) and the y parity of R.

    Construction refuses r or s outside [1, n - 1] and, per EIP-2, any s above n / 2:
    a high-s signature is malleable and no Ethereum node accepts it.
    """

    r: int
    s: int
    y_parity: int

    def __post_init__(self) -> None:
        for name, value in (("r", self.r), ("s", self.s), ("y_parity", self.y_parity)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise SignatureAssemblyError("must be an integer", field=name)
        if not 1 <= self.r < SECP256K1_ORDER:
            raise SignatureAssemblyError("must be in [1, n - 1]", field="r")
        if not 1 <= self.s < SECP256K1_ORDER:
            raise SignatureAssemblyError("must be in [1, n - 1]", field="s")
        if self.s > SECP256K1_HALF_ORDER:
            raise SignatureAssemblyError(
                "is high (above n/2); EIP-2 requires the low-s form n - s", field="s"
            )
        if self.y_parity not in (0, 1):
            raise SignatureAssemblyError("must be 0 or 1", field="y_parity")

    def to_bytes(self) -> bytes:
        """The 65-byte r ‖ s ‖ recovery id form that libsecp256k1 recovery takes."""
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big") + bytes([self.y_parity])


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    """A transaction together with the signature that authorises it."""

    transaction: Transaction
    signature: Signature

    @property
    def v(self) -> int:
        """The ``v`` value as serialised: EIP-155 ``chain_id * 2 + 35 + y`` for legacy
        transactions with a chain id, ``27 + y`` without one, and ``y`` for typed ones."""
        tx = self.transaction
        if isinstance(tx, LegacyTransaction):
            if tx.chain_id is None:
                return 27 + self.signature.y_parity
            return tx.chain_id * 2 + 35 + self.signature.y_parity
        return self.signature.y_parity
