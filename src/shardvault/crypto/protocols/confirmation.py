"""Key confirmation: the last round of every key generation and refresh, before anything
is stored.

shardvault's addition to CGGMP21 (ePrint 2021/060: key generation, Figure 5; auxiliary
info and refresh, Figures 6 and 7) and to the FROST DKG (RFC 9591 Appendix C, the FROST
paper's KeyGen), which end with a round whose messages a party checks alone: a cheater
that sends one party a bad share (or a bad proof, or a different broadcast) makes that
party abort while the others finish and store a key the victim does not hold. Here each
party instead broadcasts the digest of the public data it ended with (its confirmation)
and keeps its result until every other party confirmed the same digest. A party that
aborted sends none, so nobody finishes; a party whose digest differs is named, since the
public data every honest party ends with is fixed by broadcasts they already agreed on
through the protocol's echo round (a different digest is that party's own claim).

This gives agreement, not fairness: a cheater that withholds its own confirmation from
some parties only can still let the others finish. Those hold a consistent key; the
coordinator treats a key generation as done only when every party reports it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Self, TypeVar

from shardvault.crypto.errors import MisuseError, ProtocolAbort, TransportError
from shardvault.crypto.protocols.common import (
    WIRE_VERSION,
    Header,
    HeaderedMessage,
    PartyId,
    SessionId,
    require_bytes,
)

CONFIRMATION_DOMAIN = b"shardvault/key-confirmation/v1"
"""Domain tag of :func:`confirmation_digest`."""

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


def confirmation_digest(protocol: str, session: SessionId, public: bytes) -> bytes:
    """What a party confirms: SHA-256 over :data:`CONFIRMATION_DOMAIN`, the protocol name,
    the session id and ``public`` (the protocol's digest of the public data it ended with),
    each length-prefixed."""
    h = hashlib.sha256(CONFIRMATION_DOMAIN)
    for part in (protocol.encode(), bytes(session), public):
        h.update(len(part).to_bytes(8, "big") + part)
    return h.digest()


@dataclass(frozen=True, slots=True)
class KeyConfirmationMessage(HeaderedMessage):
    """The confirmation round's broadcast: the sender's :func:`confirmation_digest`."""

    confirmation: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure."""
        header, fields = cls._fields(data)
        return cls(header, require_bytes(fields, "confirmation", 32))


class KeyConfirmation(Generic[T_co]):
    """The confirmation round of one party: ``message`` is its broadcast, and
    :meth:`finish` hands out ``result`` once every other party confirmed the same public
    data.

    Security: ``result`` holds the party's new key share; it leaves only through
    :meth:`finish`, once, and ``repr`` hides it.
    """

    def __init__(
        self,
        *,
        protocol: str,
        session: SessionId,
        round_number: int,
        me: PartyId,
        parties: tuple[PartyId, ...],
        public: bytes,
        result: T_co,
    ) -> None:
        self._protocol = protocol
        self._session = session
        self._round = round_number
        self._me = me
        self._parties = parties
        self._digest = confirmation_digest(protocol, session, public)
        self._result: T_co | None = result
        self.message = KeyConfirmationMessage(
            Header(protocol, WIRE_VERSION, session, round_number, me, None), self._digest
        )

    def __repr__(self) -> str:
        return f"KeyConfirmation({self._protocol}, party={self._me}, <redacted>)"

    def finish(self, received: Sequence[KeyConfirmationMessage]) -> T_co:
        """Check every other party's confirmation; return the result.

        Raises:
            MisuseError: this round already finished.
            TransportError: a confirmation missing, or from outside the party set.
            ProtocolAbort: a confirmation of other public data (names every party that sent
                one), a second, different confirmation, or a header for another protocol,
                session or round (names the sender).
        """
        result = self._result
        if result is None:
            raise MisuseError("key confirmation already finished")
        self._result = None
        by_sender: dict[PartyId, KeyConfirmationMessage] = {}
        for message in received:
            message.header.check(
                protocol=self._protocol,
                session=self._session,
                round_number=self._round,
                parties=self._parties,
                me=self._me,
                direct=False,
            )
            sender = message.header.sender
            if sender in by_sender and by_sender[sender] != message:
                raise ProtocolAbort([sender], f"party {sender} sent two different confirmations")
            by_sender[sender] = message
        missing = [p for p in self._parties if p != self._me and p not in by_sender]
        if missing:
            raise TransportError(f"key confirmations missing from parties {missing}")
        differing = [p for p, m in by_sender.items() if m.confirmation != self._digest]
        if differing:
            raise ProtocolAbort(
                differing, "key confirmation: the parties ended with different public data"
            )
        return result


def finish_all(confirmations: Sequence[KeyConfirmation[T]]) -> list[T]:
    """Run one confirmation round among parties in this process (local runners, tests):
    each gets every other party's message; the results in the same order.

    Raises:
        ProtocolAbort, TransportError, MisuseError: as :meth:`KeyConfirmation.finish`.
    """
    messages = [c.message for c in confirmations]
    return [
        c.finish([m for m in messages if m.header.sender != c.message.header.sender])
        for c in confirmations
    ]


__all__ = [
    "CONFIRMATION_DOMAIN",
    "KeyConfirmation",
    "KeyConfirmationMessage",
    "confirmation_digest",
    "finish_all",
]
