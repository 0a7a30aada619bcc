"""Helpers shared by the CGGMP21 phases: hash commitments, echo digests, message intake."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from shardvault.crypto.errors import EncodingError, ProtocolAbort, TransportError, VerificationError
from shardvault.crypto.group import Point
from shardvault.crypto.protocols.cggmp21.keyshare import CURVE
from shardvault.crypto.protocols.common import (
    Header,
    PartyId,
    SessionId,
    WireValue,
    check_echo,
)
from shardvault.crypto.transcript import Transcript


class HasHeader(Protocol):
    """Any wire message: what delivery and :func:`collect` look at."""

    @property
    def header(self) -> Header: ...


M = TypeVar("M")
H = TypeVar("H", bound=HasHeader)
T = TypeVar("T")


def hash_commitment(domain: str, session: SessionId, party: int, values: Iterable[bytes]) -> bytes:
    """``V_i = H(sid, i, values...)``: a length-prefixed, domain-separated commitment."""
    t = Transcript(f"shardvault/cggmp21/{domain}/commitment")
    t.append("session_id", session)
    t.append_int("party", party)
    for index, value in enumerate(values):
        t.append(f"value/{index}", value)
    return t.challenge_bytes("V", 32)


def echo_digest(domain: str, messages: Sequence[bytes]) -> bytes:
    """The digest of a round's broadcasts, in party order, as one party received them."""
    h = hashlib.sha256(f"shardvault/cggmp21/{domain}/echo/v1".encode())
    for message in messages:
        h.update(len(message).to_bytes(8, "big") + message)
    return h.digest()


def collect(
    received: Sequence[M],
    header_of: Callable[[M], Header],
    *,
    protocol: str,
    session: SessionId,
    round_number: int,
    parties: tuple[PartyId, ...],
    me: PartyId,
    direct: bool,
) -> dict[PartyId, M]:
    """Check every header and index the messages by sender; exactly one from each peer.

    Raises:
        TransportError: a sender outside the session, or a peer's message missing.
        ProtocolAbort: a header for another protocol, session, round or recipient, or two
            messages from one sender; names the sender.
    """
    by_sender: dict[PartyId, M] = {}
    for message in received:
        header = header_of(message)
        header.check(
            protocol=protocol,
            session=session,
            round_number=round_number,
            parties=parties,
            me=me,
            direct=direct,
        )
        if header.sender in by_sender:
            raise ProtocolAbort(
                [header.sender], f"party {header.sender} sent round {round_number} twice"
            )
        by_sender[header.sender] = message
    missing = [p for p in parties if p != me and p not in by_sender]
    if missing:
        raise TransportError(f"round {round_number} messages missing from parties {missing}")
    return by_sender


def blame(sender: int, what: str, action: Callable[[], T]) -> T:
    """Run ``action``; a decoding or verification failure becomes an abort naming ``sender``.

    Raises:
        ProtocolAbort: ``action`` raised :class:`EncodingError` or :class:`VerificationError`.
    """
    try:
        return action()
    except (EncodingError, VerificationError) as exc:
        raise ProtocolAbort([sender], f"party {sender}: {what}: {exc}") from exc


def wire_int(value: WireValue, name: str) -> int:
    """An integer payload field.

    Raises:
        EncodingError: not an integer.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise EncodingError(f"field {name} must be an integer")
    return value


def wire_bytes(value: WireValue, name: str, length: int | None = None) -> bytes:
    """A bytes payload field.

    Raises:
        EncodingError: not bytes or the wrong length.
    """
    if not isinstance(value, bytes) or (length is not None and len(value) != length):
        raise EncodingError(f"field {name} must be {length or 'some'} bytes")
    return value


def wire_bytes_list(value: WireValue, name: str) -> list[bytes]:
    """A list-of-bytes payload field.

    Raises:
        EncodingError: not a list of bytes.
    """
    if not isinstance(value, list) or not all(isinstance(v, bytes) for v in value):
        raise EncodingError(f"field {name} must be a list of byte strings")
    return [v for v in value if isinstance(v, bytes)]


def wire_point(value: WireValue, name: str) -> Point:
    """A secp256k1 point payload field (validated, never the identity).

    Raises:
        EncodingError: not a valid point.
    """
    return CURVE.decode_point(wire_bytes(value, name, 33))


__all__ = [
    "HasHeader",
    "blame",
    "check_echo",
    "collect",
    "echo_digest",
    "hash_commitment",
    "wire_bytes",
    "wire_bytes_list",
    "wire_int",
    "wire_point",
]
