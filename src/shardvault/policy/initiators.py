"""Initiator keys: which API key speaks for which initiator, as the admin quorum signed.

Every API request is signed by an API key (a JWT over method, URI and body hash,
``docs/api.md``). The server knows which key belongs to which user, but the server is the
party a co-signer must not trust (DESIGN.md invariant 12). A policy bundle may therefore
carry the workspace's *initiator keys*: for each initiator as the policy names it
(``{type: user | api_key, id}``), the API key ids it signs with and their public keys.
The admins confirm the list before they sign the bundle; a co-signer then takes a
request's initiator only from the entry of the key that signed the initiator's own
request (``shardvault.cosigner.initiator``), never from the coordinator's word.

Encoding inside the bundle payload (canonical JSON; members sorted by type and id, keys
by id)::

    "initiators": {"members": [
        {"initiator": {"type": "user", "id": "alice@example.com"},
         "keys": [{"id": "<api key id>", "algorithm": "ed25519" | "p256",
                   "public_key": hex}]}, ...]}

``ed25519`` keys are the 32-byte RFC 8032 encoding and sign request tokens as JOSE
``EdDSA`` (RFC 8037); ``p256`` keys are SEC1 points and sign as ``ES256`` (RFC 7518
§3.4). A bundle without the section keeps the payload, and the hash, it always had.

Refused (:class:`~shardvault.policy.errors.MalformedBundleError`, naming the path): an
unknown or missing field, an initiator listed twice, an API key id listed twice (under one
initiator or two), one public key under two key ids, an entry without keys, more than
:data:`MAX_INITIATOR_KEYS` keys in all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from shardvault.policy.errors import ConfigurationKeyError, MalformedBundleError
from shardvault.policy.keys import KeyAlgorithm, PublicKey
from shardvault.policy.model import InitiatorKind
from shardvault.policy.request import Initiator

MAX_INITIATOR_KEYS = 4096
"""The most API keys one initiators section lists, over all its members."""

MAX_INITIATOR_ID = 320
"""The longest initiator id (a user's email address, RFC 5321 limits, or a key id)."""

JOSE_ALGORITHMS: Mapping[KeyAlgorithm, str] = {
    KeyAlgorithm.ED25519: "EdDSA",
    KeyAlgorithm.P256: "ES256",
}
"""The JOSE ``alg`` a request token signed by a key of each algorithm carries (the
only one accepted for that key)."""

_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


@dataclass(frozen=True, slots=True)
class InitiatorKey:
    """One API key: its id (the request token's ``sub``) and its public key."""

    id: str
    key: PublicKey

    @property
    def jose_algorithm(self) -> str:
        """The ``alg`` its tokens carry: ``EdDSA`` or ``ES256``."""
        return JOSE_ALGORITHMS[self.key.algorithm]


@dataclass(frozen=True, slots=True)
class InitiatorEntry:
    """An initiator as the policy names it, and the API keys that speak for it."""

    initiator: Initiator
    keys: tuple[InitiatorKey, ...]


@dataclass(frozen=True, slots=True)
class InitiatorKeys:
    """The initiators section of a bundle: who each listed API key speaks for.

    Members are kept sorted by initiator type and id, each one's keys by id (the
    canonical order), so two sections listing the same keys compare equal.
    """

    members: tuple[InitiatorEntry, ...]

    def __post_init__(self) -> None:
        ordered = tuple(
            InitiatorEntry(m.initiator, tuple(sorted(m.keys, key=lambda k: k.id)))
            for m in sorted(self.members, key=lambda m: (m.initiator.kind.value, m.initiator.id))
        )
        object.__setattr__(self, "members", ordered)
        initiators = [(m.initiator.kind, m.initiator.id) for m in self.members]
        if len(set(initiators)) != len(initiators):
            raise MalformedBundleError("an initiator is listed twice", path="initiators.members")
        keys = [k for m in self.members for k in m.keys]
        if any(not m.keys for m in self.members):
            raise MalformedBundleError("an initiator is listed without keys", path="initiators")
        if len(keys) > MAX_INITIATOR_KEYS:
            raise MalformedBundleError(
                f"more than {MAX_INITIATOR_KEYS} keys", path="initiators.members"
            )
        ids = [k.id for k in keys]
        if len(set(ids)) != len(ids):
            raise MalformedBundleError("an API key id is listed twice", path="initiators.members")
        publics = [k.key for k in keys]
        if len(set(publics)) != len(publics):
            raise MalformedBundleError(
                "one public key is listed under two API key ids", path="initiators.members"
            )

    def for_key(self, key_id: str) -> tuple[Initiator, InitiatorKey] | None:
        """The initiator ``key_id`` speaks for and the key, if the section lists it."""
        for member in self.members:
            for key in member.keys:
                if key.id == key_id:
                    return member.initiator, key
        return None

    def to_document(self) -> dict[str, object]:
        """The canonical document inside a bundle payload."""
        return {
            "members": [
                {
                    "initiator": {"type": m.initiator.kind.value, "id": m.initiator.id},
                    "keys": [
                        {"id": k.id, "algorithm": k.key.algorithm.value, "public_key": k.key.hex()}
                        for k in m.keys
                    ],
                }
                for m in self.members
            ]
        }

    def listing(self) -> list[str]:
        """One line per key, for the admins to compare before they sign:
        ``<type> <id>: API key <key id> <algorithm> <public key hex>``."""
        return [
            f"{m.initiator.kind.value} {m.initiator.id}: API key {k.id} "
            f"{k.key.algorithm.value} {k.key.hex()}"
            for m in self.members
            for k in m.keys
        ]


def parse_initiator_keys(data: object, path: str = "initiators") -> InitiatorKeys:
    """Read an initiators section.

    Raises:
        MalformedBundleError: see the module docstring.
    """
    members = _object(data, path, {"members"})["members"]
    if not isinstance(members, list):
        raise MalformedBundleError("expected a list", path=f"{path}.members")
    entries: list[InitiatorEntry] = []
    count = 0
    for index, item in enumerate(members):
        where = f"{path}.members[{index}]"
        fields = _object(item, where, {"initiator", "keys"})
        who = _object(fields["initiator"], f"{where}.initiator", {"type", "id"})
        try:
            kind = InitiatorKind(who["type"])  # type: ignore[arg-type]
        except ValueError:
            raise MalformedBundleError(
                "expected user or api_key", path=f"{where}.initiator.type"
            ) from None
        initiator_id = who["id"]
        if not isinstance(initiator_id, str) or not 0 < len(initiator_id) <= MAX_INITIATOR_ID:
            raise MalformedBundleError(
                f"expected a non-empty id of at most {MAX_INITIATOR_ID} characters",
                path=f"{where}.initiator.id",
            )
        raw_keys = fields["keys"]
        if not isinstance(raw_keys, list):
            raise MalformedBundleError("expected a list", path=f"{where}.keys")
        count += len(raw_keys)
        if count > MAX_INITIATOR_KEYS:
            raise MalformedBundleError(f"more than {MAX_INITIATOR_KEYS} keys", path=path)
        keys = tuple(_key(raw, f"{where}.keys[{i}]") for i, raw in enumerate(raw_keys))
        entries.append(InitiatorEntry(Initiator(kind, initiator_id), keys))
    return InitiatorKeys(tuple(entries))


def _key(raw: object, where: str) -> InitiatorKey:
    fields = _object(raw, where, {"id", "algorithm", "public_key"})
    key_id, algorithm, public = fields["id"], fields["algorithm"], fields["public_key"]
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise MalformedBundleError(
            "expected an API key id of 1 to 64 characters from A-Z a-z 0-9 . _ : -",
            path=f"{where}.id",
        )
    if not isinstance(algorithm, str) or not isinstance(public, str):
        raise MalformedBundleError("algorithm and public_key are strings", path=where)
    try:
        return InitiatorKey(key_id, PublicKey.parse(algorithm, public, path=where))
    except ConfigurationKeyError as exc:
        raise MalformedBundleError(exc.reason, path=exc.path) from None


def _object(value: object, path: str, names: set[str]) -> dict[str, object]:
    if not isinstance(value, Mapping):
        raise MalformedBundleError("expected an object", path=path)
    unknown = sorted(str(k) for k in value if k not in names)
    if unknown:
        raise MalformedBundleError(f"unknown field {unknown[0]!r}", path=path)
    missing = sorted(names - set(value))
    if missing:
        raise MalformedBundleError(f"missing field {missing[0]!r}", path=path)
    return dict(value)
