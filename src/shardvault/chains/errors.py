"""Errors of the chains layer.

Every failure to build, parse or validate chain data is a :class:`ChainError` naming the
field at fault. Categories let callers tell malformed input from unsupported input.
"""

from shardvault.errors import ShardvaultError


class ChainError(ShardvaultError):
    """Root of the chains layer's errors."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        self.reason = message  # without the field's name, for a caller that names it
        super().__init__(f"{field}: {message}" if field else message)


class InvalidAddressError(ChainError):
    """An address that does not parse, has a wrong checksum, or is for another network."""


class InvalidAmountError(ChainError):
    """An amount that is negative, overflows its type, or has more decimals than the asset."""


class DecodeError(ChainError):
    """Bytes that are not a well-formed transaction, PSBT, message or calldata."""


class UnsupportedError(ChainError):
    """Well-formed input of a kind shardvault does not handle (unknown chain id, tx type)."""


class SignatureAssemblyError(ChainError):
    """A signature that cannot be attached: wrong length, high s, wrong key."""
