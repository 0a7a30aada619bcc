"""Where a ``shardvault cosigner`` command gets its keyring passphrase.

Either from an environment variable (``--passphrase-env``, by default
``SHARDVAULT_COSIGNER_PASSPHRASE``) or from a file that only this user can read
(``--passphrase-file``); never both. ``init --generate-passphrase-file`` makes the secret
itself: random, written once to a new 0600 file, so that whoever starts the co-signer
(``shardvault server``'s embedded co-signers) never sees it.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from shardvault.cli._output import fail
from shardvault.custody.secret import SecretBytes

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_ENV = "SHARDVAULT_COSIGNER_PASSPHRASE"
"""The variable read when neither ``--passphrase-env`` nor ``--passphrase-file`` is given."""

GENERATED_BYTES = 32
"""Random bytes in a generated passphrase (sent as 43 URL-safe base64 characters)."""

MAX_FILE_BYTES = 4096
"""The largest passphrase file read (a passphrase, not a document)."""


def passphrase_options(function: F) -> F:
    """Add ``--passphrase-env`` and ``--passphrase-file`` to a command."""
    function = click.option(
        "--passphrase-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Read the keyring passphrase from this file (only its owner may read it: "
        "mode 0600 or 0400).",
    )(function)
    return click.option(
        "--passphrase-env",
        default=None,
        help=f"The environment variable holding the keyring passphrase [default: {DEFAULT_ENV}].",
    )(function)


def check_exclusive(env: str | None, file: Path | None) -> None:
    """Exit when both ``--passphrase-env`` and ``--passphrase-file`` are given."""
    if env is not None and file is not None:
        fail("--passphrase-env and --passphrase-file exclude each other")


def given_passphrase(env: str | None, file: Path | None) -> SecretBytes | None:
    """The passphrase from ``--passphrase-file`` or an explicit ``--passphrase-env``, or
    ``None`` when neither option was given (exits on a refusal)."""
    check_exclusive(env, file)
    if file is not None:
        return _read_file(file)
    if env is not None:
        return _read_env(env)
    return None


def passphrase(env: str | None, file: Path | None) -> SecretBytes:
    """The passphrase from either option, else from :data:`DEFAULT_ENV` (exits on a
    refusal)."""
    given = given_passphrase(env, file)
    return given if given is not None else _read_env(DEFAULT_ENV)


def _read_env(name: str) -> SecretBytes:
    value = os.environ.get(name)
    if not value:
        fail(f"environment variable {name} is not set")
    return SecretBytes(value.encode("utf-8"))


def _read_file(path: Path) -> SecretBytes:
    """Read a passphrase file: a regular file that neither its group nor others can
    read or write; one trailing line break is not part of the passphrase."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        fail(f"cannot open the passphrase file {path}: {exc.strerror}")
    with os.fdopen(descriptor, "rb") as handle:
        found = os.fstat(handle.fileno())
        if not stat.S_ISREG(found.st_mode):
            fail(f"the passphrase file {path} is not a regular file")
        if found.st_mode & 0o077:
            fail(
                f"the passphrase file {path} is open to other users "
                f"(mode {stat.S_IMODE(found.st_mode):04o}): chmod 600 {path}"
            )
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        fail(f"the passphrase file {path} is larger than {MAX_FILE_BYTES} bytes")
    if raw.endswith(b"\n"):
        raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
    if not raw:
        fail(f"the passphrase file {path} is empty")
    return SecretBytes(raw)


def generate_passphrase_file(path: Path) -> SecretBytes:
    """Write a new random passphrase to ``path`` (created 0600; an existing file is
    refused, since a keyring may be sealed under it) and answer it.

    Security: the passphrase is made in this process and leaves it only in that file.
    """
    value = secrets.token_urlsafe(GENERATED_BYTES).encode("ascii")
    try:
        descriptor = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
    except FileExistsError:
        fail(f"{path} already exists: a generated passphrase never replaces a file")
    except OSError as exc:
        fail(f"cannot create the passphrase file {path}: {exc.strerror}")
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(value)
        handle.flush()
        os.fsync(handle.fileno())
    return SecretBytes(value)
