"""The co-signer's side of pairing: the document it signs with its identity key.

``shardvault cosigner pair`` sends this document to the server
(``POST /v1/cosigners/pair``) with the one-time token an admin made; the signature proves
that the co-signer holds the identity key it registers. Pairing makes the server *relay*
for the co-signer; it does not make the other co-signers trust it: they accept a peer only
from the directory the admin quorum signs into a policy bundle, after comparing the
fingerprint this command prints on the co-signer's own host (docs/cosigner.md, "Pairing").
"""

from __future__ import annotations

from collections.abc import Mapping

from shardvault.crypto.channel import PartyIdentity
from shardvault.policy.bundle import canonical_json

PAIRING_FORMAT = "shardvault.cosigner-pairing/v1"
"""The ``format`` of the document a co-signer signs to pair."""

PAIRING_DOMAIN = b"shardvault/cosigner/pairing/v1\x00"
"""Prefix of the bytes a co-signer's identity key signs to pair."""


def pairing_message(document: Mapping[str, object]) -> bytes:
    """The bytes a co-signer signs to pair: the domain and the canonical document."""
    return PAIRING_DOMAIN + canonical_json(dict(document))


def pairing_document(
    identity: PartyIdentity,
    *,
    workspace: str,
    token: str,
    timestamp: int,
    version: str,
    label: str = "",
    details: Mapping[str, object] | None = None,
) -> tuple[dict[str, object], str]:
    """The pairing document of ``identity`` and its signature (hex).

    ``details`` says what the co-signer wants the server to show about it (unlock mode,
    attestation); it is informational, as is everything the server records.
    """
    document: dict[str, object] = {
        "format": PAIRING_FORMAT,
        "workspace": workspace,
        "party": int(identity.party),
        "identity": identity.public.to_json(),
        "token": token,
        "timestamp": timestamp,
        "version": version,
        "label": label,
        "details": dict(details or {}),
    }
    return document, identity.sign(pairing_message(document)).hex()
