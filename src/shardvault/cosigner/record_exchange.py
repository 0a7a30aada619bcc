"""Records shared within a quorum: the round every signing session starts with.

A co-signer's record of what it signed (:mod:`.signed_record`) stops a replay only at
the co-signers that signed the first time, and a velocity limit counts only what one
co-signer saw. With quorums chosen by the coordinator, that let a compromised server
rotate them: 0.8 + 0.8 + 0.8 ETH through {1,2}, {1,3}, {2,3} passed a 2 ETH limit that
each co-signer, seeing 1.6, kept.

So before a signing session's first protocol message, each signer broadcasts, in a
signed envelope of the session (protocol ``shardvault/records``, round 1), an
:class:`~.peer_records.Offer`: the length and head of its own record, the lines since
the fewest any of the session's peers acknowledged, and how much it holds of each
peer's. Every signer merges the offers it receives into its copies
(:meth:`.PeerRecords.merge`, which names a peer whose record shrank or forked), then
evaluates replays and velocity over its own record and every copy it holds, and only
then records the signature and starts the protocol.

What this guarantees: any two quorums of a key share a co-signer when
``2 * min_signers > number of parties`` (2-of-3, 3-of-5). The shared co-signer's record
has every transfer the earlier quorum signed, and it hands it to the later quorum, so
every member of the later quorum evaluates with it: a replay is refused and a velocity
limit is summed over every quorum. Sessions at one co-signer are evaluated and recorded
one at a time (the node's loop is single-threaded, and it records before it sends a
share), so two replays racing to the shared co-signer get one signature. Where two
quorums can be disjoint (2-of-4), the coordinator can choose quorums that never met:
vault creation warns, and docs/threat-model.md says what then holds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

from shardvault.cosigner.driver import Advance, SessionDriver, Step, WireMessage, typed_messages
from shardvault.cosigner.peer_records import (
    MAX_OFFER_LINES,
    Offer,
    PeerRecords,
    RecordConflict,
    RecordGap,
)
from shardvault.cosigner.signed_record import SignedRecord
from shardvault.crypto.channel import Directory, PartyIdentity, ReplayGuard
from shardvault.crypto.errors import ProtocolAbort
from shardvault.crypto.protocols.common import (
    Header,
    HeaderedMessage,
    PartyId,
    SessionId,
    WireValue,
    require_bytes,
)
from shardvault.crypto.rng import RandomSource

RECORDS_PROTOCOL = "shardvault/records"
"""The protocol name of the records round's envelopes."""

RECORDS_VERSION = 1


@dataclass(frozen=True, slots=True)
class RecordsMessage(HeaderedMessage):
    """The records round's broadcast: one :class:`Offer` as canonical JSON."""

    offer: bytes

    _payload_fields: ClassVar[tuple[str, ...]] = ("offer",)

    def _payload(self) -> dict[str, WireValue]:
        return {"offer": self.offer}

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode; raises :class:`~shardvault.crypto.errors.EncodingError` on bad structure."""
        header, fields = cls._fields(data)
        return cls(header, require_bytes(fields, "offer"))


@dataclass(frozen=True, slots=True)
class Exchanged:
    """What the records round ended with: the lines merged from each peer."""

    merged: dict[int, int]


class RecordGapError(Exception):
    """The round ended, but a peer's record could not be merged whole yet."""


def make_offer(
    record: SignedRecord, peers: PeerRecords, party: int, session_peers: Sequence[int]
) -> Offer:
    """This co-signer's offer to ``session_peers``: its record from the fewest lines any
    of them acknowledged (at most :data:`MAX_OFFER_LINES`), and what it holds of each."""
    start = min((peers.acknowledged(p) for p in session_peers), default=0)
    start = min(start, len(record.lines))
    lines = tuple(record.lines[start : start + MAX_OFFER_LINES])
    return Offer(
        party=party,
        length=len(record.lines),
        head=record.head,
        start=start,
        lines=lines,
        holds={p: peers.held(p) for p in session_peers},
    )


class _RecordsStep(Step):
    protocol = RECORDS_PROTOCOL
    round_number = 1

    def __init__(self, me: int, record: SignedRecord, peers: PeerRecords, directory: Directory):
        self._me = me
        self._record = record
        self._peers = peers
        self._directory = directory

    def decode(self, data: bytes, direct: bool) -> WireMessage:
        return RecordsMessage.from_bytes(data)

    def advance(self, broadcasts: Sequence[WireMessage], directs: Sequence[WireMessage]) -> Advance:
        merged: dict[int, int] = {}
        gaps: list[str] = []
        for message in typed_messages(broadcasts, RecordsMessage):
            sender = int(message.header.sender)
            try:
                offer = Offer.from_json(json.loads(message.offer))
            except (ValueError, UnicodeDecodeError) as exc:
                raise ProtocolAbort(
                    [PartyId(sender)], f"co-signer {sender} sent a malformed records offer: {exc}"
                ) from None
            if offer.party != sender:
                raise ProtocolAbort(
                    [PartyId(sender)], f"co-signer {sender} sent an offer of another party"
                )
            try:
                merged[sender] = self._peers.merge(offer, self._directory.get(sender))
            except RecordConflict as exc:
                raise ProtocolAbort([PartyId(sender)], exc.reason) from None
            except RecordGap as exc:
                gaps.append(str(exc))
            held, head = offer.holds.get(self._me, (0, b""))
            # What the peer says it holds of ours counts only if it is ours.
            if held <= len(self._record.lines) and head == self._record.hash_at(held):
                self._peers.acknowledge(sender, held)
            else:
                self._peers.acknowledge(sender, 0)
        if gaps:
            return Advance((), result=RecordGapError("; ".join(gaps)))
        return Advance((), result=Exchanged(merged))


def records_driver(
    *,
    identity: PartyIdentity,
    directory: Directory,
    guard: ReplayGuard,
    session: SessionId,
    signers: Sequence[int],
    record: SignedRecord,
    peers: PeerRecords,
    rng: RandomSource,
) -> SessionDriver:
    """The records round of one signing session, for this party."""
    me = identity.party
    offer = make_offer(record, peers, me, [p for p in signers if p != me])
    header = Header(RECORDS_PROTOCOL, RECORDS_VERSION, session, 1, PartyId(me), None)
    body = json.dumps(offer.to_json(), sort_keys=True, separators=(",", ":")).encode("ascii")
    return SessionDriver(
        identity=identity,
        directory=directory,
        guard=guard,
        protocol=RECORDS_PROTOCOL,
        session=session,
        parties=signers,
        first_step=_RecordsStep(me, record, peers, directory),
        first_outbound=[RecordsMessage(header, body)],
        rng=rng,
    )
