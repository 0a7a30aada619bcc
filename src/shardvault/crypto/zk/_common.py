"""Helpers shared by the auxiliary-info proofs (Πmod, Πprm, Πfac): transcript set-up and
integer-list wire fields.

Every Fiat-Shamir transcript starts with the proof's domain tag, then the session id, the
prover's party id and a caller-supplied context (the party set, the curve, whatever the
protocol binds), before the proof's own public inputs: the TSSHOCK attacks fed proofs
made for one session or party to another, or relied on ambiguous encodings, and the
length-prefixed :class:`~shardvault.crypto.transcript.Transcript` rules out both.
"""

from collections.abc import Mapping

from shardvault.crypto.errors import EncodingError
from shardvault.crypto.protocols.common import WireValue, decode_wire, encode_wire, require_int
from shardvault.crypto.transcript import Transcript


def start_transcript(domain: str, session_id: bytes, prover: int, context: bytes) -> Transcript:
    """A transcript bound to the session, the prover and the caller's context."""
    transcript = Transcript(domain)
    transcript.append("session_id", bytes(session_id))
    transcript.append_int("prover", int(prover))
    transcript.append("context", bytes(context))
    return transcript


def require_int_list(fields: Mapping[str, WireValue], name: str) -> tuple[int, ...]:
    """A list-of-integers field.

    Raises:
        EncodingError: missing, not a list, or an element that is not an integer.
    """
    value = fields.get(name)
    if not isinstance(value, list):
        raise EncodingError(f"field {name} must be a list of integers")
    out: list[int] = []
    for item in value:
        if not isinstance(item, int) or isinstance(item, bool):
            raise EncodingError(f"field {name} must be a list of integers")
        out.append(item)
    return tuple(out)


def encode_fields(fields: Mapping[str, WireValue]) -> bytes:
    """Canonical CBOR of a proof's fields."""
    return encode_wire(fields)


def decode_fields(data: bytes, names: tuple[str, ...]) -> dict[str, WireValue]:
    """Decode a proof's canonical CBOR, with exactly ``names`` as keys.

    Raises:
        EncodingError: on any structural problem.
    """
    return decode_wire(data, names)


__all__ = ["decode_fields", "encode_fields", "require_int", "require_int_list", "start_transcript"]
