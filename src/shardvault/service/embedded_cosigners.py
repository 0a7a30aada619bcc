"""The embedded default's co-signers: local processes the server starts, per workspace.

On one host (DESIGN.md "Scale"), ``shardvault server`` runs each workspace's co-signers
as separate ``shardvault cosigner run`` processes, each with its own data directory
(sealed identity, keyring, share store, passphrase file) under
``HOME/<workspace id>/party-<i>``, where ``HOME`` is the co-signer home, outside the
server's data directory (:mod:`shardvault.service.cosigner_home`). They connect out to
the server's relay for that workspace (``{coordinator}/cosigners/<workspace id>``),
exactly as remote co-signers would.

A workspace's co-signers are created the first time it needs them (its first key
generation), by ``shardvault cosigner init --generate-passphrase-file`` processes run
side by side: each makes its own random keyring passphrase, writes it to a new 0600 file
in its own directory, seals its keyring and prints only its public identity. Then
``shardvault cosigner pin --passphrase-file`` processes pin each other's identities. The
whole workspace directory is built under a staging name and renamed into place once
complete, so an interrupted creation leaves nothing half made. The co-signers pin the
admin set the workspace pinned with its first policy bundle, so a policy must be
proposed first; from then on they accept only bundles that admin set signs. Processes
that are not running (after a server restart, or one that died) are started again when
the workspace next needs them, with ``--passphrase-file``: the co-signer process reads
its own passphrase.

Security (what the embedded default is and is not): the three co-signers are separate
processes with separate share stores and keyrings, so no process ever holds more than one
share, and the server process never reads a passphrase, never passes one in an
environment or a command line, and keeps no co-signer file in its data directory. But
they share one host and one operator: the passphrase files are readable by the user who
runs the server, so whoever controls that user or that host can open every share. It is
a development mode, and says so (:data:`~shardvault.service.signer_mode.EMBEDDED_COSIGNERS`).
Production co-signers run on their own hosts, with attested unlock (``shardvault cosigner
init --unlock-mode attested``) and connect to this same relay route.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from shardvault.cosigner.config import LEGACY_CONFIG_FORMAT, read_json
from shardvault.cosigner.errors import CosignerError
from shardvault.cosigner.relay_core import RelayCore
from shardvault.cosigner.state import read_public_identity
from shardvault.crypto.channel import Directory, PublicIdentity
from shardvault.crypto.errors import CryptoError
from shardvault.service.signing import SigningError

_log = logging.getLogger("shardvault.embedded_cosigners")

PASSPHRASE_FILE = "passphrase"  # noqa: S105 (a file name)
"""The file in a co-signer's directory that holds its keyring passphrase (mode 0600).
Written by the co-signer's ``init`` and read only by the co-signer's own processes."""

COSIGNER_COMMAND = (sys.executable, "-m", "shardvault.cli.cosigner")
"""How the fleet runs ``shardvault cosigner``: the interpreter running the server, and
the co-signer commands' own module (a third of the start-up time of the whole command
line, which loads the server's database and chain code too)."""

_WORKSPACE = re.compile(r"[A-Za-z0-9._:-]{1,64}")

_STAGING_SUFFIX = "~creating"
"""A workspace's directory is built under ``<workspace id>~creating`` (``~`` is not a
workspace id character, so no workspace's directory has that name)."""

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

    ``home`` is the checked co-signer home
    (:func:`~shardvault.service.cosigner_home.prepare_cosigner_home`);
    ``coordinator_url`` is the server's base URL as the co-signers reach it (known once
    the server listens); ``test_only_primes`` (tests and demos only) names the TEST-ONLY
    fixture of published primes, passed to each co-signer as ``--unsafe-test-only-primes``.
    """

    def __init__(
        self,
        home: Path,
        admin_set: AdminSetLookup,
        coordinator_url: Callable[[], str],
        *,
        parties: int = 3,
        session_timeout: float = 600.0,
        poll_wait: float = 10.0,
        test_only_primes: Path | None = None,
        start_timeout: float = 60.0,
        create_timeout: float = 120.0,
    ) -> None:
        if not 2 <= parties <= 16:
            raise ValueError("an embedded workspace has 2 to 16 co-signers")
        self._root = Path(home)
        self._admin_set = admin_set
        self._coordinator_url = coordinator_url
        self._parties = tuple(range(1, parties + 1))
        self._session_timeout = session_timeout
        self._poll_wait = poll_wait
        self._test_only_primes = test_only_primes
        self._start_timeout = start_timeout
        self._create_timeout = create_timeout
        # ``_lock`` guards the tables below and is held only briefly (the relay routes'
        # lookups take it); a workspace's own lock is held while its co-signers are
        # created, which takes seconds.
        self._lock = threading.Lock()
        self._workspaces: dict[str, _Workspace] = {}
        self._opening: dict[str, threading.Lock] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"EmbeddedCosigners(home={str(self._root)!r}, parties={len(self._parties)})"

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
                directory that cannot be read, a co-signer that cannot be created, or a
                process that does not connect.
        """
        if not _WORKSPACE.fullmatch(workspace_id) or workspace_id in (".", ".."):
            raise CosignersUnavailable("malformed workspace id")
        with self._lock:
            if self._closed:
                raise CosignersUnavailable("the server is shutting down")
            opening = self._opening.setdefault(workspace_id, threading.Lock())
        with opening:
            with self._lock:
                entry = self._workspaces.get(workspace_id)
            if entry is None:
                entry = self._open(workspace_id)
            with self._lock:
                if self._closed:
                    raise CosignersUnavailable("the server is shutting down")
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
        if not directory.exists():
            self._create(workspace_id, directory)
        self._seal_legacy(directory)
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

    def _seal_legacy(self, directory: Path) -> None:
        """Have each co-signer whose configuration an earlier release wrote unsigned sign
        it (``cosigner seal-config`` in its own process, unlocking with its own
        passphrase file: the server reads no passphrase).

        Raises:
            CosignersUnavailable: a configuration that cannot be read or signed.
        """
        legacy = {}
        for party in self._parties:
            party_dir = directory / f"party-{party}"
            try:
                config = read_json(party_dir / "cosigner.json")
            except CosignerError as exc:
                raise CosignersUnavailable(f"co-signer {party}: {exc}") from None
            if isinstance(config, dict) and config.get("format") == LEGACY_CONFIG_FORMAT:
                legacy[party] = [
                    "seal-config", "--yes", "--data-dir", str(party_dir),
                    "--passphrase-file", str(party_dir / PASSPHRASE_FILE),
                ]  # fmt: skip
        if legacy:
            _run_everywhere(legacy, env=self._child_env(), timeout=self._create_timeout)
            _log.warning(
                "signed the unsigned configurations of co-signers %s in %s",
                sorted(legacy),
                directory,
            )

    # --- Creation (in the co-signers' own processes) ---------------------------------

    def _create(self, workspace_id: str, directory: Path) -> None:
        admins = self._admin_set(workspace_id)
        if admins is None:
            raise CosignersUnavailable(
                "the workspace has no admin set yet: propose its first policy (co-signers "
                "pin the admin set that signs it) before creating a vault"
            )
        started = time.monotonic()
        create_cosigners(
            directory,
            workspace_id,
            admins,
            self._parties,
            env=self._child_env(),
            timeout=self._create_timeout,
        )
        _log.info(
            "created %d co-signers for workspace %s in %.2f s",
            len(self._parties),
            workspace_id,
            time.monotonic() - started,
        )

    def _child_env(self) -> dict[str, str]:
        return dict(os.environ)

    # --- Processes -------------------------------------------------------------------

    def _start_missing(self, workspace_id: str, entry: _Workspace) -> list[int]:
        started = []
        for party in entry.parties:
            process = entry.processes.get(party)
            if process is not None and process.poll() is None:
                continue
            party_dir = entry.directory / f"party-{party}"
            # Only checked here: the co-signer process reads it (--passphrase-file).
            if not (party_dir / PASSPHRASE_FILE).is_file():
                raise CosignersUnavailable(
                    f"co-signer {party}: no {PASSPHRASE_FILE} file in {party_dir}"
                )
            old_log = entry.logs.pop(party, None)
            if old_log is not None:
                old_log.close()
            # Private like everything else in the co-signer's directory.
            log = os.fdopen(
                os.open(party_dir / "cosigner.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
                "ab",
            )
            command = [
                *COSIGNER_COMMAND,
                "run",
                "--id",
                str(party),
                "--data-dir",
                str(party_dir),
                "--coordinator",
                f"{self._coordinator_url()}/cosigners/{workspace_id}",
                "--passphrase-file",
                str(party_dir / PASSPHRASE_FILE),
                "--session-timeout",
                str(self._session_timeout),
                "--poll-wait",
                str(self._poll_wait),
                # Stop if the server dies without stopping us (SIGKILL, a crash): a
                # restarted server starts new co-signer processes for these directories.
                "--exit-with-parent",
            ]
            if self._test_only_primes is not None:
                command += ["--unsafe-test-only-primes", str(self._test_only_primes)]
            entry.processes[party] = subprocess.Popen(  # noqa: S603 (our own command)
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self._child_env()
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


def create_cosigners(
    directory: Path,
    workspace_id: str,
    admins: Mapping[str, object],
    parties: Sequence[int],
    *,
    env: Mapping[str, str],
    timeout: float,
) -> None:
    """Create the co-signers of ``workspace_id`` in ``directory`` (``party-<i>`` each),
    through their own ``cosigner init`` and ``cosigner pin`` processes (module
    docstring), or create nothing.

    Raises:
        CosignersUnavailable: a co-signer command failed or timed out, or a directory
            could not be made (``directory`` then does not exist).
    """
    staging = directory.with_name(directory.name + _STAGING_SUFFIX)
    # What an interrupted creation left: keyrings no vault ever used.
    shutil.rmtree(staging, ignore_errors=True)
    try:
        directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _private_directory(staging)
        party_dirs = {party: staging / f"party-{party}" for party in parties}
        for party_dir in party_dirs.values():
            _private_directory(party_dir)
        admins_file = staging / "admins.json"
        admins_file.write_text(json.dumps(dict(admins), sort_keys=True), "utf-8")
        created = _run_everywhere(
            {p: _init_arguments(p, d, workspace_id, admins_file) for p, d in party_dirs.items()},
            env,
            timeout,
        )
        identities = {party: _identity_of(party, created[party]) for party in party_dirs}
        directory_file = staging / "directory.json"
        directory_file.write_text(
            json.dumps({str(p): i.to_json() for p, i in identities.items()}), "utf-8"
        )
        _run_everywhere(
            {p: _pin_arguments(d, directory_file) for p, d in party_dirs.items()}, env, timeout
        )
        admins_file.unlink()
        directory_file.unlink()
        os.rename(staging, directory)
    except OSError as exc:
        raise CosignersUnavailable(f"cannot create the co-signers: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _run_everywhere(
    arguments: Mapping[int, list[str]], env: Mapping[str, str], timeout: float
) -> dict[int, object]:
    """Run one ``shardvault cosigner`` command per party, side by side; answers each
    party's JSON output.

    Raises:
        CosignersUnavailable: a command failed (its error line is in the message) or
            did not finish within ``timeout`` seconds.
    """
    processes = {
        party: subprocess.Popen(  # noqa: S603 (our own command)
            [*COSIGNER_COMMAND, *command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
        )
        for party, command in arguments.items()
    }
    deadline = time.monotonic() + timeout
    outputs: dict[int, object] = {}
    failures: list[str] = []
    try:
        for party, process in processes.items():
            try:
                out, err = process.communicate(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                failures.append(f"co-signer {party}: no answer in {timeout} s")
                continue
            if process.returncode != 0:
                lines = err.decode("utf-8", "replace").strip().splitlines()
                failures.append(f"co-signer {party}: {lines[-1] if lines else 'failed'}")
                continue
            try:
                outputs[party] = json.loads(out.decode("utf-8").strip().splitlines()[-1])
            except (ValueError, IndexError):
                failures.append(f"co-signer {party}: unreadable output")
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    if failures:
        raise CosignersUnavailable(f"cannot create the co-signers: {'; '.join(failures)}")
    return outputs


def _private_directory(path: Path) -> None:
    """Create a directory only its owner may enter (mode 0700 whatever the umask)."""
    path.mkdir(mode=0o700)
    path.chmod(0o700)


def _init_arguments(party: int, party_dir: Path, workspace_id: str, admins: Path) -> list[str]:
    """``cosigner init`` making its own passphrase file in its own directory."""
    return [
        "init", "--id", str(party), "--data-dir", str(party_dir), "--workspace", workspace_id,
        "--admins", str(admins), "--generate-passphrase-file", str(party_dir / PASSPHRASE_FILE),
    ]  # fmt: skip


def _pin_arguments(party_dir: Path, directory: Path) -> list[str]:
    """``cosigner pin`` unlocking with the co-signer's own passphrase file."""
    return [
        "pin", "--data-dir", str(party_dir), "--directory", str(directory),
        "--passphrase-file", str(party_dir / PASSPHRASE_FILE),
    ]  # fmt: skip


def _identity_of(party: int, output: object) -> PublicIdentity:
    """The public identity a co-signer's ``init`` printed.

    Raises:
        CosignersUnavailable: output that is not ``{"party": party, "identity": {...}}``.
    """
    if not isinstance(output, dict) or output.get("party") != party:
        raise CosignersUnavailable(f"co-signer {party}: unexpected init output")
    identity = output.get("identity")
    try:
        if not isinstance(identity, dict):
            raise TypeError("identity")
        return PublicIdentity.from_json(identity)
    except (CryptoError, TypeError) as exc:
        raise CosignersUnavailable(f"co-signer {party}: identity refused: {exc}") from None
