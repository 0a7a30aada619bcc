"""Solana transaction model: public keys, instructions, legacy and v0 messages.

The structures are those of the Solana transaction format (docs.solana.com,
"Transactions": message header, account keys, recent blockhash, compiled instructions;
"Versioned Transactions" for v0 messages with address table lookups). A message is what
every signer signs; a transaction is the signatures followed by the message.
"""

from dataclasses import dataclass

import base58

from shardvault.chains.errors import DecodeError, InvalidAddressError

SIGNATURE_LENGTH = 64
"""An Ed25519 signature is 64 bytes."""

PUBKEY_LENGTH = 32
"""A Solana public key (an Ed25519 point or a program-derived address) is 32 bytes."""


@dataclass(frozen=True, slots=True, order=True)
class Pubkey:
    """A 32-byte Solana address, shown in base58. Ordered by its bytes."""

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != PUBKEY_LENGTH:
            raise InvalidAddressError("must be 32 bytes", field="pubkey")

    @classmethod
    def from_base58(cls, text: str, *, field: str = "pubkey") -> "Pubkey":
        """Parse a base58 address.

        Raises:
            InvalidAddressError: not base58, or not 32 bytes once decoded.
        """
        if not isinstance(text, str) or not 32 <= len(text) <= 44:
            raise InvalidAddressError("must be 32 to 44 base58 characters", field=field)
        try:
            raw = base58.b58decode(text)
        except ValueError:
            raise InvalidAddressError("is not base58", field=field) from None
        if len(raw) != PUBKEY_LENGTH:
            raise InvalidAddressError(f"decodes to {len(raw)} bytes, not 32", field=field)
        return cls(raw)

    def __str__(self) -> str:
        return str(base58.b58encode(self.raw).decode())

    def __repr__(self) -> str:
        return f"Pubkey({self})"

    def __bytes__(self) -> bytes:
        return self.raw


def blockhash_from_base58(text: str) -> bytes:
    """A recent blockhash given in base58, as its 32 bytes.

    Raises:
        InvalidAddressError: not base58 or not 32 bytes (field ``recent_blockhash``).
    """
    return Pubkey.from_base58(text, field="recent_blockhash").raw


@dataclass(frozen=True, slots=True)
class AccountMeta:
    """An account an instruction uses, and whether it must sign or may be written."""

    pubkey: Pubkey
    is_signer: bool
    is_writable: bool


@dataclass(frozen=True, slots=True)
class Instruction:
    """An instruction before compilation: program, accounts in order, opaque data."""

    program_id: Pubkey
    accounts: tuple[AccountMeta, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """The three counts that classify the account keys (Solana "Message Header")."""

    num_required_signatures: int
    num_readonly_signed_accounts: int
    num_readonly_unsigned_accounts: int

    def __post_init__(self) -> None:
        for name in (
            "num_required_signatures",
            "num_readonly_signed_accounts",
            "num_readonly_unsigned_accounts",
        ):
            if not 0 <= getattr(self, name) <= 255:
                raise DecodeError("must fit in one byte", field=f"header.{name}")


@dataclass(frozen=True, slots=True)
class CompiledInstruction:
    """An instruction whose program and accounts are indexes into the message's keys."""

    program_id_index: int
    accounts: tuple[int, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class AddressTableLookup:
    """A v0 message's reference to accounts loaded from an address lookup table."""

    account_key: Pubkey
    writable_indexes: tuple[int, ...]
    readonly_indexes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LegacyMessage:
    """A legacy (unversioned) message."""

    header: MessageHeader
    account_keys: tuple[Pubkey, ...]
    recent_blockhash: bytes
    instructions: tuple[CompiledInstruction, ...]

    @property
    def version(self) -> str:
        """``"legacy"``."""
        return "legacy"


@dataclass(frozen=True, slots=True)
class MessageV0:
    """A version 0 message, which may load further accounts from lookup tables."""

    header: MessageHeader
    account_keys: tuple[Pubkey, ...]
    recent_blockhash: bytes
    instructions: tuple[CompiledInstruction, ...]
    address_table_lookups: tuple[AddressTableLookup, ...] = ()

    @property
    def version(self) -> str:
        """``"v0"``."""
        return "v0"


Message = LegacyMessage | MessageV0
"""Either kind of message."""


@dataclass(frozen=True, slots=True)
class Transaction:
    """Signatures (one per required signer, in key order) and the message they sign.

    An absent signature is 64 zero bytes, as Solana's own tools write it.
    """

    signatures: tuple[bytes, ...]
    message: Message

    @property
    def is_fully_signed(self) -> bool:
        """Whether no signature slot is empty."""
        return all(sig != bytes(SIGNATURE_LENGTH) for sig in self.signatures)

    @property
    def signers(self) -> tuple[Pubkey, ...]:
        """The keys that must sign, in signature order."""
        return self.message.account_keys[: self.message.header.num_required_signatures]
