"""Reading a co-signer request's fields: each wrong type or shape is refused as
``malformed``, naming the field (the request is the coordinator's, so nothing in it is
trusted, docs/cosigner.md "Requests")."""

from __future__ import annotations

from collections.abc import Mapping

from shardvault.cosigner.errors import RequestRefused
from shardvault.crypto.errors import CryptoError
from shardvault.crypto.protocols.common import SessionId, party_set, session_id


def text_field(body: Mapping[str, object], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise RequestRefused("malformed", f"field {name} must be a string")
    return value


def int_field(body: Mapping[str, object], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RequestRefused("malformed", f"field {name} must be an integer")
    return value


def list_field(body: Mapping[str, object], name: str) -> list[object]:
    value = body.get(name)
    if not isinstance(value, list):
        raise RequestRefused("malformed", f"field {name} must be a list")
    return value


def session_field(body: Mapping[str, object]) -> SessionId:
    raw = text_field(body, "session_id")
    try:
        return session_id(bytes.fromhex(raw))
    except (ValueError, CryptoError):
        raise RequestRefused("malformed", "session_id must be 32 bytes of hex") from None


def parties_field(body: Mapping[str, object], name: str) -> tuple[int, ...]:
    raw = list_field(body, name)
    ids = [p for p in raw if isinstance(p, int) and not isinstance(p, bool)]
    if len(ids) != len(raw):
        raise RequestRefused("malformed", f"field {name} must list party ids")
    try:
        return tuple(int(p) for p in party_set(ids))
    except CryptoError as exc:
        raise RequestRefused("malformed", f"field {name}: {exc}") from None


def path_field(body: Mapping[str, object]) -> str:
    """The BIP32 path an ECDSA request derives along (``m``, the key itself, when the
    request names none or an empty one)."""
    path = body.get("path", "m")
    if not isinstance(path, str):
        raise RequestRefused("malformed", "field path must be a string")
    return path or "m"
