"""A generic driver that runs one sans-I/O protocol session over the channel.

The protocol round objects (``shardvault.crypto.protocols``) consume messages and return
messages; they never send. The driver puts them on the wire:

* a protocol is a chain of :class:`Step` objects, one per round the party *receives*.
  A step says its protocol name and round number, whether it waits for a broadcast and/or
  a direct message from every peer, how to decode them, and what to do once it has them
  (:meth:`Step.advance`): return the next step and this party's outbound messages, or the
  session's result;
* every outbound message is sealed into a signed envelope (encrypted when direct,
  :mod:`shardvault.crypto.channel`), and every inbound envelope is opened against the
  pinned directory and the :class:`~shardvault.crypto.channel.ReplayGuard`;
* messages of the next round that arrive early (a faster peer) are buffered; the guard has
  the current and the next round open and closes a round when the driver leaves it, so a
  late copy of an old round is refused.

Adding a protocol (CGGMP21 key generation, presigning, signing) is writing its steps: a
few lines per round that call the round object's ``next``/``finish``.

After an abort the driver is terminal; the abort names the culprits, and
:attr:`SessionDriver.evidence` holds every signed envelope received from them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from shardvault.cosigner.errors import SessionError
from shardvault.crypto.channel import (
    Directory,
    PartyIdentity,
    ReplayGuard,
    open_envelope,
    seal,
)
from shardvault.crypto.errors import EncodingError, MisuseError, ProtocolAbort, ProtocolBug
from shardvault.crypto.protocols.common import Header, PartyId, SessionId
from shardvault.crypto.protocols.confirmation import KeyConfirmation, KeyConfirmationMessage
from shardvault.crypto.rng import RandomSource


class WireMessage(Protocol):
    """What every protocol message offers: its header and its canonical encoding."""

    @property
    def header(self) -> Header: ...

    def to_bytes(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Advance:
    """What a step returns: the next step (or none, with the result) and messages out."""

    outbound: Sequence[WireMessage]
    next_step: Step | None = None
    result: object | None = None


_Kind = TypeVar("_Kind")


def typed_messages(messages: Sequence[WireMessage], kind: type[_Kind]) -> list[_Kind]:
    """``messages`` as the one wire type a step decodes; anything else is our bug."""
    out: list[_Kind] = [m for m in messages if isinstance(m, kind)]
    if len(out) != len(messages):  # pragma: no cover - a step's decode() returns only `kind`
        raise ProtocolBug("step received a message of another type")
    return out


class Step(ABC):
    """One receiving round of a protocol, for one party."""

    protocol: str
    round_number: int
    wants_broadcast: bool = True
    wants_direct: bool = False

    @abstractmethod
    def decode(self, data: bytes, direct: bool) -> WireMessage:
        """Decode one inbound message of this round (raises ``EncodingError``)."""

    @abstractmethod
    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        """Run the round on every peer's messages (raises ``ProtocolAbort``...)."""


class ConfirmationStep(Step):
    """The key-confirmation round that ends every key generation and refresh
    (:mod:`shardvault.crypto.protocols.confirmation`): one broadcast; its result is the
    protocol's, handed out once every party confirmed the same public data."""

    def __init__(self, state: KeyConfirmation[object]) -> None:
        self._state = state
        self.protocol = state.message.header.protocol
        self.round_number = state.message.header.round

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return KeyConfirmationMessage.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        result = self._state.finish(typed_messages(broadcasts, KeyConfirmationMessage))
        return Advance((), None, result)

    @classmethod
    def after(cls, state: KeyConfirmation[object], message: WireMessage) -> Advance:
        """What the round before it returns: its confirmation out, this step next."""
        return Advance((message,), cls(state))


@dataclass(slots=True)
class _Buffered:
    header: Header
    payload: bytes


class SessionDriver:
    """Runs one session of one protocol for one party over signed envelopes.

    Security: the round objects it holds carry this party's secrets for the session
    (nonces, polynomial, share); they are dropped as soon as the session ends.
    """

    def __init__(
        self,
        *,
        identity: PartyIdentity,
        directory: Directory,
        guard: ReplayGuard,
        protocol: str,
        session: SessionId,
        parties: Sequence[int],
        first_step: Step,
        first_outbound: Sequence[WireMessage],
        rng: RandomSource,
    ) -> None:
        self._me = identity
        self._directory = directory
        self._guard = guard
        self.protocol = protocol
        self.session = session
        self.parties = tuple(PartyId(p) for p in sorted(parties))
        self._peers = tuple(p for p in self.parties if p != identity.party)
        self._step: Step | None = first_step
        self._pending_outbound: Sequence[WireMessage] | None = first_outbound
        self._rng = rng
        self._buffer: dict[tuple[int, PartyId, bool], _Buffered] = {}
        self.evidence: dict[PartyId, list[bytes]] = {}
        self.result: object | None = None
        self.abort: ProtocolAbort | None = None
        self._started = False
        guard.open_session(protocol, session, self.parties)
        guard.open_round(protocol, session, first_step.round_number)
        guard.open_round(protocol, session, first_step.round_number + 1)

    def __repr__(self) -> str:
        return f"SessionDriver({self.protocol}, party={self._me.party}, <redacted>)"

    @property
    def done(self) -> bool:
        """Whether the session finished (with a result) or aborted."""
        return self._step is None

    @property
    def round_number(self) -> int | None:
        """The round the party is waiting for, ``None`` once done."""
        return None if self._step is None else self._step.round_number

    def missing(self) -> list[int]:
        """The peers whose messages of the current round have not arrived."""
        step = self._step
        if step is None:
            return []
        out = []
        for peer in self._peers:
            if step.wants_broadcast and (step.round_number, peer, False) not in self._buffer:
                out.append(int(peer))
            elif step.wants_direct and (step.round_number, peer, True) not in self._buffer:
                out.append(int(peer))
        return out

    def start(self) -> list[bytes]:
        """The envelopes of this party's first message(s).

        Raises:
            MisuseError: called twice.
        """
        if self._started:
            raise MisuseError("session already started")
        self._started = True
        outbound = self._pending_outbound or ()
        self._pending_outbound = None
        return self._seal_all(outbound)

    def receive(self, envelope: bytes) -> list[bytes]:
        """Take one inbound envelope; return the envelopes this party sends as a result.

        Raises:
            ChannelError (a ``TransportError``): the envelope is refused (bad signature,
                replay, not for us...). The session continues.
            ProtocolAbort: a peer misbehaved; the session is over and names it.
            SessionError: the session already ended.
        """
        if self._step is None:
            raise SessionError("session is over")
        opened = open_envelope(envelope, self._me, self._directory, self._guard)
        header = opened.header
        self.evidence.setdefault(header.sender, []).append(opened.evidence)
        direct = header.recipient is not None
        self._buffer[(header.round, header.sender, direct)] = _Buffered(header, opened.payload)
        try:
            return self._advance_while_ready()
        except ProtocolAbort as abort:
            self._fail(abort)
            raise

    def fail(self, reason: str) -> None:
        """Abort locally (timeout, coordinator abort): no culprit is named."""
        if self._step is not None:
            self._fail(ProtocolAbort([], reason))

    def _fail(self, abort: ProtocolAbort) -> None:
        self.abort = abort
        self._step = None
        self._buffer.clear()
        self._guard.close_session(self.protocol, self.session)

    def _advance_while_ready(self) -> list[bytes]:
        out: list[bytes] = []
        while self._step is not None and not self.missing():
            step = self._step
            broadcasts: list[WireMessage] = []
            directs: list[WireMessage] = []
            for peer in self._peers:
                for direct, wanted in ((False, step.wants_broadcast), (True, step.wants_direct)):
                    if not wanted:
                        continue
                    item = self._buffer.pop((step.round_number, peer, direct))
                    message = self._decode(step, item, direct)
                    (directs if direct else broadcasts).append(message)
            advance = step.advance(broadcasts, directs)
            self._guard.close_round(self.protocol, self.session, step.round_number)
            out.extend(self._seal_all(advance.outbound))
            if advance.next_step is None:
                self.result = advance.result
                self._step = None
                self._buffer.clear()
                self._guard.close_session(self.protocol, self.session)
            else:
                self._step = advance.next_step
                self._guard.open_round(
                    self.protocol, self.session, advance.next_step.round_number + 1
                )
        return out

    @staticmethod
    def _decode(step: Step, item: _Buffered, direct: bool) -> WireMessage:
        sender = item.header.sender
        try:
            message = step.decode(item.payload, direct)
        except EncodingError as exc:
            # The envelope was validly signed, so the malformed content is the sender's.
            raise ProtocolAbort([sender], f"party {sender} sent a malformed message") from exc
        if message.header != item.header:
            raise ProtocolAbort(
                [sender], f"party {sender} sent a message whose header differs from its envelope"
            )
        return message

    def _seal_all(self, outbound: Sequence[WireMessage]) -> list[bytes]:
        envelopes = []
        for message in outbound:
            header = message.header
            recipient = None
            if header.recipient is not None:
                recipient = self._directory.get(header.recipient)
            envelopes.append(seal(message.to_bytes(), header, self._me, recipient, self._rng))
        return envelopes
