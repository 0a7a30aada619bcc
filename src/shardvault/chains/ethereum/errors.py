"""Ethereum-specific error categories, below :class:`shardvault.chains.errors.ChainError`.

The shared categories (``InvalidAddressError``, ``InvalidAmountError``, ``DecodeError``,
``UnsupportedError``, ``SignatureAssemblyError``) cover most failures; this module adds the
ones that only make sense for EVM transactions.
"""

from shardvault.chains.errors import ChainError


class InvalidFieldError(ChainError):
    """A transaction, typed-data or calldata field whose value is out of range or malformed."""


class InvalidSignatureError(ChainError):
    """A signature that is present but cannot be valid: r or s out of range, high s,
    or a recovery that yields no public key."""
