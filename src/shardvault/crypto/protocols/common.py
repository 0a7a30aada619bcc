"""What every protocol message shares: session ids, party ids, the header, the wire form.

STYLE.md and DESIGN.md invariant 5: each message names its protocol, format version,
session id, round and sender (and recipient, for a peer-to-peer message), so that a message
replayed from another session, round or protocol, or delivered to the wrong party, is
refused before any of its content is looked at.

The wire form is canonical CBOR (RFC 8949 §4.2.1, deterministic encoding) of a map from
field names to values; decoding refuses unknown or missing fields rather than ignoring
them, and refuses any non-canonical encoding, so every message has exactly one byte form.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NewType

import cbor2

from shardvault.crypto.errors import EncodingError, MisuseError, ProtocolAbort, TransportError

PartyId = NewType("PartyId", int)
"""A party's identifier in a ceremony: an integer from 1 to 2**16 - 1."""

SessionId = NewType("SessionId", bytes)
"""A 32-byte identifier, fresh and agreed by all parties before a session starts."""

WIRE_VERSION = 1
"""Format version of every message header this code writes and accepts."""

MAX_PARTY_ID = 2**16 - 1
"""The largest party identifier accepted."""

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""The largest encoded message accepted, so a peer cannot exhaust memory."""

WireValue = int | bytes | str | bool | None | list["WireValue"] | dict[str, "WireValue"]
"""What a message field may hold on the wire."""


def session_id(value: bytes) -> SessionId:
    """Check and type a session id.

    Raises:
        MisuseError: not exactly 32 bytes.
    """
    if not isinstance(value, bytes) or len(value) != 32:
        raise MisuseError("session id must be 32 bytes")
    return SessionId(value)


def check_thresholds(min_signers: int, max_signers: int) -> None:
    """Refuse thresholds under which a key would not be shared: ``2 <= min_signers <=
    max_signers`` (so ``max_signers >= 2`` too).

    With ``min_signers = 1`` each dealt polynomial has degree 0, so every share is the
    whole key and any single party, or anyone who steals one share, can sign alone.
    Thresholds are chosen locally (by the operator or the coordinator), never by a peer,
    so a bad pair is our own misuse.

    Raises:
        MisuseError: the thresholds are out of range.
    """
    if not 2 <= min_signers <= max_signers:
        raise MisuseError(
            "thresholds must satisfy 2 <= min_signers <= max_signers, "
            f"not {min_signers}-of-{max_signers}"
        )


def party_set(identifiers: Iterable[int]) -> tuple[PartyId, ...]:
    """Check and sort a set of party ids.

    Raises:
        MisuseError: an id is out of range or repeats.
    """
    ids = list(identifiers)
    if len(set(ids)) != len(ids):
        raise MisuseError("party ids must be distinct")
    for value in ids:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_PARTY_ID:
            raise MisuseError(f"party id {value!r} is not in 1..{MAX_PARTY_ID}")
    return tuple(PartyId(v) for v in sorted(ids))


@dataclass(frozen=True, slots=True)
class Header:
    """The routing header every message carries.

    ``recipient`` is ``None`` for a broadcast and the addressee for a peer-to-peer message.
    """

    protocol: str
    version: int
    session_id: SessionId
    round: int
    sender: PartyId
    recipient: PartyId | None

    def to_wire(self) -> dict[str, WireValue]:
        """The header as wire fields."""
        return {
            "protocol": self.protocol,
            "version": self.version,
            "session_id": bytes(self.session_id),
            "round": self.round,
            "sender": int(self.sender),
            "recipient": None if self.recipient is None else int(self.recipient),
        }

    @classmethod
    def from_wire(cls, fields: Mapping[str, WireValue]) -> Header:
        """Decode and type-check header fields.

        Raises:
            EncodingError: a field has the wrong type.
        """
        protocol = fields.get("protocol")
        version = fields.get("version")
        sid = fields.get("session_id")
        rnd = fields.get("round")
        sender = fields.get("sender")
        recipient = fields.get("recipient")
        if not isinstance(protocol, str):
            raise EncodingError("header.protocol must be a string")
        if not isinstance(version, int) or isinstance(version, bool):
            raise EncodingError("header.version must be an integer")
        if not isinstance(sid, bytes) or len(sid) != 32:
            raise EncodingError("header.session_id must be 32 bytes")
        if not isinstance(rnd, int) or isinstance(rnd, bool):
            raise EncodingError("header.round must be an integer")
        if not isinstance(sender, int) or isinstance(sender, bool):
            raise EncodingError("header.sender must be an integer")
        if recipient is not None and (
            not isinstance(recipient, int) or isinstance(recipient, bool)
        ):
            raise EncodingError("header.recipient must be an integer or null")
        return cls(
            protocol,
            version,
            SessionId(sid),
            rnd,
            PartyId(sender),
            None if recipient is None else PartyId(recipient),
        )

    def check(
        self,
        *,
        protocol: str,
        session: SessionId,
        round_number: int,
        parties: Iterable[int],
        me: int,
        direct: bool,
    ) -> None:
        """Refuse a message that is not for this protocol, session, round and party.

        A header the sender signed wrongly is the sender's fault when the transport
        authenticates senders (DESIGN.md invariant 5), so these are aborts naming the
        sender; a sender outside the party set cannot be blamed on anyone in it and is a
        :class:`TransportError`.

        Raises:
            TransportError: the sender is not a party of this session, or is ourselves.
            ProtocolAbort: wrong protocol, version, session, round, or addressing.
        """
        if self.sender not in set(parties) or self.sender == me:
            raise TransportError(f"message from party {self.sender}, not a peer in this session")
        culprit = [int(self.sender)]
        if self.protocol != protocol:
            raise ProtocolAbort(culprit, f"message is for protocol {self.protocol!r}")
        if self.version != WIRE_VERSION:
            raise ProtocolAbort(culprit, f"unsupported message version {self.version}")
        if self.session_id != session:
            raise ProtocolAbort(culprit, "message belongs to another session (replay?)")
        if self.round != round_number:
            raise ProtocolAbort(culprit, f"message is for round {self.round}, not {round_number}")
        if direct and self.recipient != me:
            raise ProtocolAbort(culprit, "direct message addressed to another party")
        if not direct and self.recipient is not None:
            raise ProtocolAbort(culprit, "broadcast message carries a recipient")


HEADER_FIELDS = ("protocol", "version", "session_id", "round", "sender", "recipient")
"""The wire field names of a :class:`Header`, shared by every message."""


@dataclass(frozen=True, slots=True)
class HeaderedMessage:
    """Base of a protocol's wire messages: a header plus payload fields.

    A subclass declares its payload fields as dataclass fields, each sent under its own
    name (a tuple as a list; a subclass whose fields need encoding, nested objects say,
    overrides ``_payload``), and implements a ``from_bytes`` that calls :meth:`_fields`
    (decode with the exact field set) and validates each field.
    """

    header: Header

    @classmethod
    def _payload_names(cls) -> tuple[str, ...]:
        """The payload's wire names: the dataclass fields after ``header``."""
        return _payload_names(cls)

    def _payload(self) -> dict[str, WireValue]:
        payload: dict[str, WireValue] = {}
        for name in self._payload_names():
            value = getattr(self, name)
            payload[name] = list(value) if isinstance(value, tuple) else value
        return payload

    def to_bytes(self) -> bytes:
        """The canonical wire encoding."""
        return encode_wire({**self.header.to_wire(), **self._payload()})

    @classmethod
    def _fields(cls, data: bytes) -> tuple[Header, dict[str, WireValue]]:
        fields = decode_wire(data, HEADER_FIELDS + cls._payload_names())
        return Header.from_wire(fields), fields


_PAYLOAD_NAMES: dict[type, tuple[str, ...]] = {}


def _payload_names(cls: type) -> tuple[str, ...]:
    names = _PAYLOAD_NAMES.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(cls) if f.name != "header")
        _PAYLOAD_NAMES[cls] = names
    return names


def encode_wire(fields: Mapping[str, WireValue]) -> bytes:
    """Canonical CBOR of a field map."""
    return cbor2.dumps(dict(fields), canonical=True)


def decode_wire(data: bytes, expected: Iterable[str]) -> dict[str, WireValue]:
    """Decode a canonical CBOR field map with exactly the ``expected`` keys.

    Raises:
        EncodingError: too large, not CBOR, not a map, not canonical, or fields unknown or
            missing.
    """
    if len(data) > MAX_MESSAGE_BYTES:
        raise EncodingError("message is larger than the protocol allows")
    try:
        decoded = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise EncodingError("message is not valid CBOR") from exc
    if not isinstance(decoded, dict) or not all(isinstance(k, str) for k in decoded):
        raise EncodingError("message must be a map with text keys")
    wanted = set(expected)
    unknown = sorted(set(decoded) - wanted)
    missing = sorted(wanted - set(decoded))
    if unknown:
        raise EncodingError(f"message has unknown fields {unknown}")
    if missing:
        raise EncodingError(f"message lacks fields {missing}")
    if cbor2.dumps(decoded, canonical=True) != data:
        raise EncodingError("message is not canonically encoded")
    return decoded


def require_bytes(fields: Mapping[str, WireValue], name: str, length: int | None = None) -> bytes:
    """A bytes field, optionally of a fixed length.

    Raises:
        EncodingError: missing, not bytes, or the wrong length.
    """
    value = fields.get(name)
    if not isinstance(value, bytes):
        raise EncodingError(f"field {name} must be bytes")
    if length is not None and len(value) != length:
        raise EncodingError(f"field {name} must be {length} bytes")
    return value


def require_bytes_list(fields: Mapping[str, WireValue], name: str) -> list[bytes]:
    """A list-of-bytes field.

    Raises:
        EncodingError: missing, not a list, or an element that is not bytes.
    """
    value = fields.get(name)
    if not isinstance(value, list) or not all(isinstance(v, bytes) for v in value):
        raise EncodingError(f"field {name} must be a list of byte strings")
    return [v for v in value if isinstance(v, bytes)]


def require_int(fields: Mapping[str, WireValue], name: str) -> int:
    """An integer field (CBOR bignums included).

    Raises:
        EncodingError: missing or not an integer.
    """
    value = fields.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise EncodingError(f"field {name} must be an integer")
    return value


def check_echo(
    echoes: Mapping[PartyId, Sequence[bytes]],
    mine: Sequence[bytes],
    parties: tuple[PartyId, ...],
    me: PartyId,
) -> None:
    """Compare every peer's echo of a broadcast round with ours (Goldwasser-Lindell echo
    broadcast).

    If peer ``k`` reports party ``j``'s broadcast differently from what we received, then
    either ``j`` showed different broadcasts to different peers or ``k`` lies about it; the
    crypto layer cannot tell which (no signatures here), so both are named. The transport
    signs every message with its sender's identity key (DESIGN.md invariant 5): the
    co-signer holding ``j``'s two signed broadcasts, or ``k``'s signed echo, settles it.
    A peer misreporting our own broadcast, or its own, is named alone.

    Raises:
        ProtocolAbort: an echo of the wrong length, or a broadcast seen differently.
    """
    for sender, echo in echoes.items():
        if len(echo) != len(parties):
            raise ProtocolAbort([sender], f"party {sender} sent a malformed echo")
        for index, party in enumerate(parties):
            if echo[index] == mine[index]:
                continue
            if party == me:
                raise ProtocolAbort([sender], f"party {sender} echoes a broadcast we never sent")
            if party == sender:
                raise ProtocolAbort([sender], f"party {sender} echoes its own broadcast wrongly")
            raise ProtocolAbort(
                [party, sender],
                f"party {party}'s broadcast reached us and party {sender} differently: "
                f"party {party} equivocated or party {sender} misreports it",
            )
