"""The remote signer mode: co-signers on their own hosts, paired with each workspace.

``shardvault server --signer remote`` starts no co-signer. Each workspace's relay serves
the co-signers the workspace paired (:mod:`shardvault.service.cosigners`); they connect
out to ``{server}/cosigners/<workspace>`` over TLS and long-poll for work, exactly as the
embedded ones do. The relay authenticates their HTTP requests with the identities the
server recorded at pairing, but that record is only the server's word: the co-signers
accept one another in a session only from the directory the admin quorum signed into the
workspace's policy (docs/cosigner.md, "Pairing").

Relays are made when a workspace first needs one (a co-signer's poll, or a signature)
and re-read the workspace's pairings every ``refresh_s`` seconds, so a co-signer paired
or unpaired while the server runs is served or dropped without a restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shardvault.cosigner.relay_core import RelayCore
from shardvault.crypto.channel import Directory, PublicIdentity
from shardvault.service.signing import SigningError

IdentityLookup = Callable[[str], Mapping[int, PublicIdentity]]
"""A workspace id to the identities of its paired co-signers."""


class NoPairedCosigners(SigningError):
    """The workspace has fewer than two paired co-signers."""

    problem = "cosigners-unavailable"


@dataclass
class _Entry:
    relay: RelayCore
    identities: dict[int, PublicIdentity]
    read_at: float


class RemoteCosigners:
    """The relays of paired remote co-signers, one per workspace (module docstring)."""

    def __init__(
        self,
        identities: IdentityLookup,
        *,
        refresh_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._identities = identities
        self._refresh = refresh_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"RemoteCosigners(workspaces={len(self._entries)})"

    def _entry(self, workspace_id: str) -> _Entry | None:
        now = self._monotonic()
        with self._lock:
            entry = self._entries.get(workspace_id)
            if entry is not None and now - entry.read_at < self._refresh:
                return entry
        paired = dict(self._identities(workspace_id))
        with self._lock:
            entry = self._entries.get(workspace_id)
            if entry is None:
                if not paired:
                    return None
                entry = _Entry(RelayCore(Directory.of(paired), keep_transcript=False), paired, now)
                if self._closed:
                    entry.relay.close()
                self._entries[workspace_id] = entry
            elif paired != entry.identities:
                entry.relay.set_directory(Directory.of(paired))
                entry.identities = paired
            entry.read_at = now
            return entry

    def lookup(self, workspace_id: str) -> RelayCore | None:
        """The relay of ``workspace_id``'s paired co-signers (``None``: none paired); the
        relay routes call it for every co-signer request."""
        if not 1 <= len(workspace_id) <= 64:
            return None
        entry = self._entry(workspace_id)
        return None if entry is None else entry.relay

    def relay(self, workspace_id: str) -> RelayCore:
        """The relay signing goes through.

        Raises:
            NoPairedCosigners: fewer than two co-signers paired.
        """
        entry = self._entry(workspace_id)
        if entry is None or len(entry.identities) < 2:
            raise NoPairedCosigners(
                "the workspace has fewer than two paired co-signers: pair them "
                "(shardvault cosigner pair) and sign a policy that lists them"
            )
        return entry.relay

    def status(self, workspace_id: str) -> dict[int, dict[str, object]]:
        """Each paired co-signer's live status (``GET /v1/cosigners``)."""
        relay = self.lookup(workspace_id)
        return {} if relay is None else relay.liveness()

    def wake_polls(self) -> None:
        """Answer every waiting poll at once (the server is shutting down)."""
        with self._lock:
            self._closed = True
            entries = list(self._entries.values())
        for entry in entries:
            entry.relay.close()

    def close(self) -> None:
        self.wake_polls()
