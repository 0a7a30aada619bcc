"""The co-signer directory: which co-signers a workspace's sessions may include.

A policy bundle may carry the workspace's co-signer directory, so that the admin quorum,
not the server, decides who the co-signers are (DESIGN.md invariants 4 and 12). Each
entry names a party id and its public identity (Ed25519 signing key, X25519 encryption
key and the binding signature between them, :class:`~shardvault.crypto.channel.PublicIdentity`).
The admins compare each identity's fingerprint with the one the co-signer's operator read
on the co-signer's own host before they sign; a co-signer that holds a bundle with a
directory refuses every session with a party outside it, so a server that swapped an
identity at pairing gains nothing.

Encoding inside the bundle payload (canonical JSON, parties in ascending order)::

    "cosigners": {"members": [{"party": 1, "signing_key": hex, "encryption_key": hex,
                               "binding": hex}, ...]}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shardvault.crypto.channel import Directory, PublicIdentity
from shardvault.crypto.errors import CryptoError
from shardvault.crypto.protocols.common import MAX_PARTY_ID
from shardvault.policy.errors import MalformedBundleError

MAX_DIRECTORY_MEMBERS = 64
"""The most co-signers one directory names."""

MIN_DIRECTORY_MEMBERS = 2
"""The fewest: an MPC key needs at least two parties (``2 <= min_signers``)."""


@dataclass(frozen=True, slots=True)
class CosignerDirectory:
    """The co-signers the admin quorum approved, by party id."""

    members: tuple[tuple[int, PublicIdentity], ...]

    def __post_init__(self) -> None:
        parties = [p for p, _ in self.members]
        if len(set(parties)) != len(parties):
            raise MalformedBundleError("a party is listed twice", path="cosigners.members")
        keys = [i.signing_key for _, i in self.members]
        if len(set(keys)) != len(keys):
            raise MalformedBundleError(
                "two parties share one signing key", path="cosigners.members"
            )
        if not MIN_DIRECTORY_MEMBERS <= len(parties) <= MAX_DIRECTORY_MEMBERS:
            raise MalformedBundleError(
                f"a directory names {MIN_DIRECTORY_MEMBERS} to {MAX_DIRECTORY_MEMBERS} co-signers",
                path="cosigners.members",
            )

    @classmethod
    def of(cls, identities: Mapping[int, PublicIdentity]) -> CosignerDirectory:
        """A directory of ``identities`` (party id to identity), sorted by party."""
        return cls(tuple(sorted(identities.items())))

    @property
    def parties(self) -> tuple[int, ...]:
        """The party ids, ascending."""
        return tuple(sorted(p for p, _ in self.members))

    def get(self, party: int) -> PublicIdentity | None:
        """The identity of ``party``, if it is listed."""
        for listed, identity in self.members:
            if listed == party:
                return identity
        return None

    def to_channel_directory(self) -> Directory:
        """The same identities as the channel's :class:`Directory` (sessions use it to
        verify and encrypt envelopes)."""
        return Directory.of(dict(self.members))

    def fingerprints(self) -> dict[int, str]:
        """Each party's identity fingerprint (what admins compare out of band)."""
        return {p: i.fingerprint() for p, i in sorted(self.members)}

    def to_document(self) -> dict[str, object]:
        """The canonical document inside a bundle payload."""
        return {
            "members": [
                {"party": party, **identity.to_json()} for party, identity in sorted(self.members)
            ]
        }


def parse_cosigner_directory(data: object, path: str = "cosigners") -> CosignerDirectory:
    """Read a directory document.

    Raises:
        MalformedBundleError: a missing or unknown field, a bad party id, an identity
            whose keys or binding do not check, a party or key listed twice, or a
            directory of fewer than two or more than :data:`MAX_DIRECTORY_MEMBERS`.
    """
    if not isinstance(data, Mapping) or set(data) != {"members"}:
        raise MalformedBundleError("expected {members: [...]}", path=path)
    members = data["members"]
    if not isinstance(members, list):
        raise MalformedBundleError("expected a list", path=f"{path}.members")
    if len(members) > MAX_DIRECTORY_MEMBERS:
        raise MalformedBundleError("too many co-signers", path=f"{path}.members")
    entries: list[tuple[int, PublicIdentity]] = []
    for index, entry in enumerate(members):
        where = f"{path}.members[{index}]"
        if not isinstance(entry, Mapping) or set(entry) != {
            "party",
            "signing_key",
            "encryption_key",
            "binding",
        }:
            raise MalformedBundleError(
                "expected {party, signing_key, encryption_key, binding}", path=where
            )
        party = entry["party"]
        if isinstance(party, bool) or not isinstance(party, int):
            raise MalformedBundleError("party must be an integer", path=f"{where}.party")
        if not 1 <= party <= MAX_PARTY_ID:
            raise MalformedBundleError(f"party must be 1 to {MAX_PARTY_ID}", path=f"{where}.party")
        try:
            identity = PublicIdentity.from_json(entry)
        except CryptoError as exc:
            raise MalformedBundleError(f"identity refused: {exc}", path=where) from None
        entries.append((party, identity))
    return CosignerDirectory(tuple(sorted(entries, key=lambda e: e[0])))
