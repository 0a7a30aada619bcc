"""The embedded default's co-signers: local processes the server starts, per workspace.

On one host (DESIGN.md "Scale"), ``shardvault server`` runs each workspace's co-signers
as separate ``shardvault cosigner run`` processes, each with its own data directory
(sealed identity, keyring, share store) under ``ROOT/<workspace id>/party-<i>``. They
connect out to the server's relay for that workspace
(``{coordinator}/cosigners/<workspace id>``), exactly as remote co-signers would.

A workspace's co-signers are created the first time it needs them (its first key
generation). They pin the admin set the workspace pinned with its first policy bundle, so
a policy must be proposed first; from then on they accept only bundles that admin set
signs. Processes that are not running (after a server restart, or one that died) are
started again when the workspace next needs them.

Security (what the embedded default is and is not): the three co-signers are separate
processes with separate share stores and keyrings, so no process ever holds more than one
share, but they share one host and one operator; each keyring's passphrase is a random
secret kept in ``ROOT/<workspace id>/party-<i>/passphrase`` (mode 0600), readable by the
user who runs the server. Production co-signers run on their own hosts, with attested
unlock (``shardvault cosigner init --unlock-mode attested``) and connect to this same
relay route.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from shardvault.cosigner.errors import CosignerError
from shardvault.cosigner.relay_core import RelayCore
from shardvault.cosigner.state import init_node, pin_peers, read_public_identity
from shardvault.crypto.channel import Directory, PublicIdentity
from shardvault.crypto.errors import CryptoError
from shardvault.custody.backends.local import Argon2Cost
from shardvault.custody.errors import CustodyError
from shardvault.custody.secret import SecretBytes
from shardvault.service.signing import SigningError

_log = logging.getLogger("shardvault.embedded_cosigners")

PASSPHRASE_ENV = "SHARDVAULT_EMBEDDED_COSIGNER_PASSPHRASE"  # noqa: S105 (a variable name)
"""The variable a started co-signer reads its keyring passphrase from."""

_WORKSPACE = re.compile(r"[A-Za-z0-9._:-]{1,64}")

AdminSetLookup = Callable[[str], Mapping[str, object] | None]
"""A workspace id to the admin set it pinned (``None``: no policy proposed yet)."""


class CosignersUnavailable(SigningError):
    """The workspace's co-signers cannot be created or started."""

    problem = "cosigners-unavailable"


@dataclass
class _Workspace:
    relay: RelayCore
    directory: Path
    parties: tuple[int, ...]
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[int, IO[bytes]] = field(default_factory=dict)


class EmbeddedCosigners:
    """Creates, starts and stops the co-signer processes of each workspace.

    ``coordinator_url`` is the server's base URL as the co-signers reach it (known once
    the server listens); ``env`` is added to each co-signer's environment (tests and
    demos pass the TEST-ONLY prime fixture here).
    """

    def __init__(
        self,
        root: Path,
        admin_set: AdminSetLookup,
        coordinator_url: Callable[[], str],
        *,
        parties: int = 3,
        session_timeout: float = 600.0,
        poll_wait: float = 10.0,
        argon2: Argon2Cost | None = None,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        if not 2 <= parties <= 16:
            raise ValueError("an embedded workspace has 2 to 16 co-signers")
        self._root = Path(root)
        self._admin_set = admin_set
        self._coordinator_url = coordinator_url
        self._parties = tuple(range(1, parties + 1))
        self._session_timeout = session_timeout
        self._poll_wait = poll_wait
        self._argon2 = argon2
        self._env = dict(env or {})
        self._start_timeout = start_timeout
        self._lock = threading.Lock()
        self._workspaces: dict[str, _Workspace] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"EmbeddedCosigners(root={str(self._root)!r}, parties={len(self._parties)})"

    @property
    def parties(self) -> int:
        """How many co-signers each workspace has."""
        return len(self._parties)

    # --- Lookup (the relay routes) ---------------------------------------------------

    def lookup(self, workspace_id: str) -> RelayCore | None:
        """The relay of a workspace whose co-signers this server started, else ``None``."""
        with self._lock:
            entry = self._workspaces.get(workspace_id)
            return None if entry is None else entry.relay

    # --- Start on demand -------------------------------------------------------------

    def relay(self, workspace_id: str) -> RelayCore:
        """The relay of ``workspace_id``'s co-signers, creating and starting them first
        when needed.

        Raises:
            CosignersUnavailable: no admin set pinned yet (no policy proposed), a data
                directory that cannot be read, or a process that does not connect.
        """
        if not _WORKSPACE.fullmatch(workspace_id):
            raise CosignersUnavailable("malformed workspace id")
        with self._lock:
            if self._closed:
                raise CosignersUnavailable("the server is shutting down")
            entry = self._workspaces.get(workspace_id)
            if entry is None:
                entry = self._open(workspace_id)
                self._workspaces[workspace_id] = entry
            started = self._start_missing(workspace_id, entry)
        if started:
            missing = entry.relay.wait_seen(started, self._start_timeout)
            if missing:
                raise CosignersUnavailable(
                    f"co-signers {missing} of the workspace did not connect "
                    f"(logs in {entry.directory})"
                )
        return entry.relay

    def _open(self, workspace_id: str) -> _Workspace:
        directory = self._root / workspace_id
        if not (directory / f"party-{self._parties[-1]}" / "cosigner.json").exists():
            self._create(workspace_id, directory)
        try:
            identities: dict[int, PublicIdentity] = {}
            for party in self._parties:
                found, identity = read_public_identity(directory / f"party-{party}")
                if found != party:
                    raise CosignersUnavailable(f"party-{party} holds co-signer {found}")
                identities[party] = identity
            relay = RelayCore(Directory.of(identities), keep_transcript=False)
        except (CosignerError, CryptoError) as exc:
            raise CosignersUnavailable(f"co-signer directories unreadable: {exc}") from None
        return _Workspace(relay, directory, self._parties)

    def _create(self, workspace_id: str, directory: Path) -> None:
        admins = self._admin_set(workspace_id)
        if admins is None:
            raise CosignersUnavailable(
                "the workspace has no admin set yet: propose its first policy (co-signers "
                "pin the admin set that signs it) before creating a vault"
            )
        directory.mkdir(parents=True, exist_ok=True)
        identities: dict[int, PublicIdentity] = {}
        try:
            for party in self._parties:
                party_dir = directory / f"party-{party}"
                party_dir.mkdir(mode=0o700, exist_ok=True)
                passphrase = secrets.token_urlsafe(32)
                secret_file = party_dir / "passphrase"
                descriptor = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(descriptor, "w") as handle:
                    handle.write(passphrase)
                with SecretBytes(passphrase.encode()) as sealed:
                    identities[party] = init_node(
                        party_dir, party, workspace_id, admins, sealed, cost=self._argon2
                    )
            for party in self._parties:
                pin_peers(directory / f"party-{party}", identities)
        except (CosignerError, CustodyError, OSError) as exc:
            raise CosignersUnavailable(f"cannot create the co-signers: {exc}") from None
        _log.info("created %d co-signers for workspace %s", len(self._parties), workspace_id)

    def _start_missing(self, workspace_id: str, entry: _Workspace) -> list[int]:
        started = []
        for party in entry.parties:
            process = entry.processes.get(party)
            if process is not None and process.poll() is None:
                continue
            party_dir = entry.directory / f"party-{party}"
            try:
                passphrase = (party_dir / "passphrase").read_text().strip()
            except OSError as exc:
                raise CosignersUnavailable(f"co-signer {party}: {exc.strerror}") from None
            env = {**os.environ, **self._env, PASSPHRASE_ENV: passphrase}
            old_log = entry.logs.pop(party, None)
            if old_log is not None:
                old_log.close()
            log = (party_dir / "cosigner.log").open("ab")
            command = [
                sys.executable,
                "-m",
                "shardvault.cli.main",
                "cosigner",
                "run",
                "--id",
                str(party),
                "--data-dir",
                str(party_dir),
                "--coordinator",
                f"{self._coordinator_url()}/cosigners/{workspace_id}",
                "--passphrase-env",
                PASSPHRASE_ENV,
                "--session-timeout",
                str(self._session_timeout),
                "--poll-wait",
                str(self._poll_wait),
                # Stop if the server dies without stopping us (SIGKILL, a crash): a
                # restarted server starts new co-signer processes for these directories.
                "--exit-with-parent",
            ]
            entry.processes[party] = subprocess.Popen(  # noqa: S603 (our own command)
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
            entry.logs[party] = log
            started.append(party)
        return started

    # --- Shutdown --------------------------------------------------------------------

    def wake_polls(self) -> None:
        """Close every relay, so that the co-signers' long polls return at once (the
        server is shutting down; :meth:`close` then stops the processes)."""
        with self._lock:
            entries = list(self._workspaces.values())
        for entry in entries:
            entry.relay.close()

    def close(self, timeout: float = 10.0) -> None:
        """Stop every co-signer this server started (SIGTERM, then SIGKILL)."""
        with self._lock:
            self._closed = True
            entries = list(self._workspaces.values())
        for entry in entries:
            entry.relay.close()
            for process in entry.processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
        for entry in entries:
            for process in entry.processes.values():
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=timeout)
            for log in entry.logs.values():
                log.close()
