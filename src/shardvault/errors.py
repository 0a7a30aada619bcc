"""The root of every error shardvault raises on purpose.

Each layer has one root below :class:`ShardvaultError` (``CryptoError``, ``ChainError``,
``PolicyError``, ``CustodyError`` ...) and its categories below that, so a caller can
catch as broadly or as narrowly as it needs. Messages name the field and the party at
fault and never carry a secret value.
"""


class ShardvaultError(Exception):
    """Base class of every error shardvault raises deliberately."""
