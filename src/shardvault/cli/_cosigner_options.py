"""Options and their parsing shared by the ``shardvault cosigner`` commands: the
attested unlock, the customer callback, and the unlock mode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from shardvault.cli._output import fail, fail_on
from shardvault.cosigner.callback import DEFAULT_TIMEOUT, MAX_TIMEOUT, CallbackSettings
from shardvault.cosigner.errors import CosignerError
from shardvault.cosigner.state import UNLOCK_MODES, AttestedUnlock


def attested_unlock(
    release_url: str | None,
    release_key: str | None,
    dev_root_dir: Path | None,
    role: str,
    recipient_per_unlock: bool,
) -> AttestedUnlock:
    if not release_url or not release_key or dev_root_dir is None:
        fail("--unlock-mode attested needs --release-url, --release-key and --dev-root-dir")
    try:
        key = bytes.fromhex(release_key)
    except ValueError:
        fail("--release-key must be the release service's Ed25519 public key in hex")
    if len(key) != 32:
        fail("--release-key must be 32 bytes of hex")
    return AttestedUnlock(release_url, key, dev_root_dir.resolve(), role, recipient_per_unlock)


def callback_settings(url: str | None, key: str | None, timeout: float) -> CallbackSettings | None:
    """The callback settings given on the command line, if any."""
    if url is None and key is None:
        return None
    if not url or not key:
        fail("--callback-url and --callback-key go together")
    try:
        return CallbackSettings(url, bytes.fromhex(key), timeout)
    except ValueError:
        fail("--callback-key must be the customer's Ed25519 public key in hex")
    except CosignerError as exc:
        fail_on(exc)


def callback_options(command: Callable[..., None]) -> Callable[..., None]:
    """``--callback-url``, ``--callback-key`` and ``--callback-timeout``."""
    options = [
        click.option(
            "--callback-url",
            default=None,
            help="Customer callback: POST each checked signing request here (http or https); "
            "sign only on its signed approval.",
        ),
        click.option(
            "--callback-key",
            default=None,
            help="Customer callback: the Ed25519 public key (hex) its answers are signed with.",
        ),
        click.option(
            "--callback-timeout",
            type=click.FloatRange(0.1, MAX_TIMEOUT),
            default=DEFAULT_TIMEOUT,
            show_default=True,
            help="Customer callback: seconds to wait for an answer (the node waits meanwhile).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


unlock_option = click.option(
    "--unlock-mode",
    type=click.Choice(UNLOCK_MODES),
    default=None,
    help="passphrase: a local keyring sealed with a passphrase (default at init); "
    "attested: data keys released by a key-release service against attestation; "
    "backend: data keys wrapped by this host's KMS or HSM (--backend-config).",
)
