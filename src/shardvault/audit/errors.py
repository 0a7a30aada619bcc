"""Errors of the audit log.

:class:`AuditChainBroken` is what verification raises: it names the chain, the sequence
number and (when one is there) the event id where the chain stops being what was written.
"""

from shardvault.errors import ShardvaultError


class AuditError(ShardvaultError):
    """Root of the errors raised by :mod:`shardvault.audit`."""


class AuditDetailsError(AuditError):
    """An event's details are not representable in the canonical encoding."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"audit details at {path}: {reason}")
        self.path = path
        self.reason = reason


class AuditKeyError(AuditError):
    """The audit signing key file is missing, unreadable, malformed or too widely readable."""


class AuditSignatureInvalid(AuditError):
    """A signature is not the audit key's (the caller adds where it was found)."""


class AuditChainBroken(AuditError):
    """Verification found the chain altered.

    ``kind`` is one of ``"missing"`` (an event was deleted), ``"edited"`` (an event's
    content no longer matches its hash), ``"forged"`` (a hash not signed by the audit key),
    ``"relinked"`` (an event does not point at its predecessor), ``"truncated"`` (events
    after the head or a checkpoint are gone) or ``"checkpoint"`` (a checkpoint or the head
    record does not verify).
    """

    def __init__(self, chain: str, seq: int, event_id: str | None, kind: str, detail: str) -> None:
        where = f"seq {seq}" + (f" (event {event_id})" if event_id else "")
        super().__init__(f"audit chain {chain!r} broken at {where}: {kind}: {detail}")
        self.chain = chain
        self.seq = seq
        self.event_id = event_id
        self.kind = kind
        self.detail = detail
