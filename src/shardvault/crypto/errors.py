"""Errors of the cryptographic layer.

Protocol failures split three ways, after cggmp21: :class:`ProtocolAbort` when a peer
misbehaved (it names the culprits), :class:`TransportError` when a message could not be
delivered or decoded as a message at all, and :class:`ProtocolBug` for what cannot happen.
Our own misuse (calling a finished round again, reusing a nonce, bad local arguments) is
:class:`MisuseError`, distinct from anything a peer did (h11's local/remote split).
"""

from collections.abc import Iterable

from shardvault.errors import ShardvaultError


class CryptoError(ShardvaultError):
    """Root of the cryptographic layer's errors."""


class EncodingError(CryptoError):
    """Bytes that do not decode to a valid value (scalar, point, message, key file)."""


class InvalidPointError(EncodingError):
    """A point that is not on the curve, is the identity, or lies outside the prime-order
    subgroup where one was required."""


class InvalidScalarError(EncodingError):
    """A scalar encoding that is not canonical (not below the group order) or is zero
    where zero is forbidden."""


class VerificationError(CryptoError):
    """A signature, proof or commitment that does not verify."""


class MisuseError(CryptoError):
    """The local caller used the API wrongly: a finished round called again, a nonce or
    presignature used twice, inconsistent local arguments. Never a peer's fault."""


class ProtocolBug(CryptoError):
    """An internal invariant broke. This is a defect in shardvault, not a peer's fault."""


class TransportError(CryptoError):
    """A message that could not be taken as a protocol message at all (undecodable,
    for another session, round or recipient) where no culprit can be proven."""


class ProtocolAbort(CryptoError):
    """A peer misbehaved; the protocol stopped and names who.

    ``culprits`` are the party identifiers proven at fault; ``reason`` says which check
    failed. After an abort the party object is terminal.
    """

    def __init__(self, culprits: Iterable[int], reason: str) -> None:
        self.culprits: tuple[int, ...] = tuple(sorted(set(culprits)))
        self.reason = reason
        super().__init__(f"protocol aborted, culprits {list(self.culprits)}: {reason}")


class MessageDigestMismatch(ProtocolAbort):
    """A peer's signature share is for another message digest than ours.

    The signers were not all asked to sign the same message: the coordinator handed them
    different ones, or a peer lies about what it signed. The crypto layer cannot tell
    which, so nobody is named (``culprits`` is empty), unlike a cheater's
    :class:`ProtocolAbort`; a share that claims our digest but does not verify for it
    still names its sender. It is a :class:`ProtocolAbort` so that every caller that ends
    a session on an abort ends this one too (the presignature or nonces are spent); catch
    it first to tell it apart.
    """

    def __init__(self, reason: str) -> None:
        super().__init__((), reason)
