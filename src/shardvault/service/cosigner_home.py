"""Where the embedded co-signers keep their data: a directory of their own, outside the
server's data directory.

``shardvault server`` (``--signer cosigners``) gives each workspace's co-signers one
directory each, ``HOME/<workspace id>/party-<i>`` (every level mode 0700), holding that
co-signer's sealed keyring, identity, shares and the passphrase file that only the
co-signer process reads. ``HOME`` is ``--cosigner-home`` (``SHARDVAULT_COSIGNER_HOME``),
by default the data directory's sibling ``<DATA_DIR>-cosigners``. It may not be inside
the data directory, nor hold it: whoever is given the server's data directory (a backup,
a support bundle, a volume mounted into another container) must get no co-signer secret.

Earlier releases kept these directories in ``DATA_DIR/cosigners/<workspace id>``.
:func:`prepare_cosigner_home` moves them to ``HOME`` with one ``rename`` each (atomic
on one file system); when that cannot be done safely it refuses, and says how to move
them by hand.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path

from shardvault.service.errors import ServiceError

_log = logging.getLogger("shardvault.embedded_cosigners")

LEGACY_DIRECTORY = "cosigners"
"""The directory under the server's data directory that earlier releases used."""

HOME_SUFFIX = "-cosigners"
"""The default home is the data directory's path with this appended."""


class CosignerHomeRefused(ServiceError):
    """The co-signer home is unsafe or unusable, or the old layout cannot be moved."""

    problem = "cosigner-home-refused"


@dataclass(frozen=True, slots=True)
class CosignerHome:
    """A checked co-signer home and the workspaces moved into it from the old layout."""

    path: Path
    moved: tuple[str, ...] = ()


def default_cosigner_home(data_dir: Path) -> Path:
    """``<DATA_DIR>-cosigners``, beside the data directory.

    Raises:
        CosignerHomeRefused: a data directory that has no name (the file system root).
    """
    resolved = Path(data_dir).expanduser().resolve()
    if not resolved.name:
        raise CosignerHomeRefused(f"no default co-signer home beside {resolved}")
    return resolved.with_name(resolved.name + HOME_SUFFIX)


def prepare_cosigner_home(data_dir: Path, home: Path | None) -> CosignerHome:
    """Check (or create, mode 0700) the co-signer home, then move any co-signer
    directories of the old layout into it.

    ``home`` ``None`` means :func:`default_cosigner_home`.

    Raises:
        CosignerHomeRefused: the home is the data directory, inside it or around it; it
            is not a directory or is open to other users; or the old layout is found and
            cannot be moved (the message says how to move it by hand).
    """
    data = Path(data_dir).expanduser().resolve()
    path = default_cosigner_home(data) if home is None else Path(home).expanduser().resolve()
    if path == data or path.is_relative_to(data):
        raise CosignerHomeRefused(
            f"the co-signer home {path} is inside the server's data directory {data}: "
            "anyone who can read the data directory would open every key share"
        )
    if data.is_relative_to(path):
        raise CosignerHomeRefused(
            f"the server's data directory {data} is inside the co-signer home {path}: "
            "choose a co-signer home apart from it"
        )
    _make_private_directory(path)
    return CosignerHome(path, _move_legacy(data, path))


def _make_private_directory(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    except OSError as exc:
        raise CosignerHomeRefused(
            f"cannot create the co-signer home {path}: {exc.strerror}"
        ) from None
    else:
        # mkdir's mode passes through the umask; this directory is the owner's alone.
        path.chmod(0o700)
        _log.info("created the co-signer home %s", path)
    found = path.stat()
    if not stat.S_ISDIR(found.st_mode):
        raise CosignerHomeRefused(f"the co-signer home {path} is not a directory")
    if found.st_mode & 0o077:
        raise CosignerHomeRefused(
            f"the co-signer home {path} is open to other users "
            f"(mode {stat.S_IMODE(found.st_mode):04o}): chmod 700 {shlex.quote(str(path))}"
        )


def _move_legacy(data: Path, home: Path) -> tuple[str, ...]:
    """Move ``DATA_DIR/cosigners/<workspace>`` to ``HOME/<workspace>``, every one or none
    (each move is one ``rename``; all are checked first)."""
    legacy = data / LEGACY_DIRECTORY
    if not legacy.is_dir():
        return ()
    workspaces = sorted(p for p in legacy.iterdir() if p.is_dir() and not p.is_symlink())
    for workspace in workspaces:
        _check_movable(workspace, home / workspace.name, legacy, home)
    moved = []
    for workspace in workspaces:
        target = home / workspace.name
        try:
            os.rename(workspace, target)
        except OSError as exc:
            raise _refusal(legacy, home, exc.strerror or str(exc)) from None
        _make_owner_only(target)
        moved.append(workspace.name)
        _log.warning(
            "moved the co-signers of workspace %s out of the server's data directory, "
            "from %s to %s",
            workspace.name,
            workspace,
            target,
        )
    try:
        legacy.rmdir()
    except OSError:
        _log.warning("%s still holds files that are not co-signer directories", legacy)
    return tuple(moved)


def _check_movable(workspace: Path, target: Path, legacy: Path, home: Path) -> None:
    if target.exists() or target.is_symlink():
        raise _refusal(legacy, home, f"{target} already exists")
    if os.stat(workspace).st_dev != os.stat(home).st_dev:
        raise _refusal(legacy, home, "they are on different file systems")
    for lock in workspace.glob("party-*/run.lock"):
        if _held(lock):
            raise _refusal(
                legacy, home, f"a co-signer process still serves {lock.parent} (stop it first)"
            )


def _held(lock: Path) -> bool:
    """Whether a ``cosigner run`` process holds this lock (it does while it runs)."""
    try:
        with lock.open("ab") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    return True
                raise
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    except OSError:
        return True
    return False


def _make_owner_only(workspace: Path) -> None:
    """Earlier releases made the workspace directory with the default mode."""
    workspace.chmod(0o700)
    for party in workspace.glob("party-*"):
        if party.is_dir() and not party.is_symlink():
            party.chmod(0o700)
            secret = party / "passphrase"
            if secret.is_file() and not secret.is_symlink():
                secret.chmod(0o600)


def _refusal(legacy: Path, home: Path, reason: str) -> CosignerHomeRefused:
    source, target = shlex.quote(str(legacy)), shlex.quote(str(home))
    return CosignerHomeRefused(
        f"co-signer directories from an earlier release are in {legacy}, inside the "
        f"server's data directory, and cannot be moved to the co-signer home {home}: "
        f"{reason}. With the server and its co-signers stopped, move them by hand: "
        f"mkdir -p -m 700 {target} && mv {source}/* {target}/ && rmdir {source} "
        f"&& chmod -R go-rwx {target}"
    )
