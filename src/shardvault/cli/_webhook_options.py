"""The webhook options of ``shardvault server`` and ``shardvault webhook dispatch``, and
opening the webhook key (a module of its own so that ``cli.server`` can use it without
importing the ``webhook`` command group, which imports ``cli.server``)."""

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from shardvault.cli._output import fail_on
from shardvault.errors import ShardvaultError

if TYPE_CHECKING:
    from shardvault.service.platform import Platform
    from shardvault.service.webhook_delivery import WebhookDispatcher, WebhookRuntime

F = TypeVar("F", bound=Callable[..., Any])

WEBHOOK_KEY_FILE = "webhook-signing.key"


def key_option(function: F) -> F:
    return click.option(
        "--webhook-key",
        "webhook_key",
        envvar="SHARDVAULT_WEBHOOK_KEY",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The webhook signing key file (default: DATA_DIR/webhook-signing.key, "
        "created 0600 on first use).",
    )(function)


def networks_option(name: str) -> Callable[[F], F]:
    return click.option(
        name,
        "allow_networks",
        multiple=True,
        envvar="SHARDVAULT_WEBHOOK_ALLOW_NETWORKS",
        help="Allow webhooks to this non-public network (CIDR; repeatable), e.g. "
        "127.0.0.0/8 for a receiver on this machine. Public addresses are always allowed.",
    )


def server_options(function: F) -> F:
    """Add ``--webhook-key``, ``--webhook-allow-network`` and ``--webhook-dispatcher`` to
    ``shardvault server``."""
    function = click.option(
        "--webhook-dispatcher/--no-webhook-dispatcher",
        "webhook_dispatcher",
        default=True,
        show_default=True,
        help="Deliver webhooks from this process.",
    )(function)
    function = networks_option("--webhook-allow-network")(function)
    return key_option(function)


def open_runtime(
    data_dir: Path, webhook_key: Path | None, allow_networks: Iterable[str]
) -> "WebhookRuntime":
    """Load (or create) the webhook key and build the policy; exits on a refused value."""
    from shardvault.service.destinations import DestinationPolicy, parse_networks
    from shardvault.service.webhook_delivery import WebhookRuntime, WebhookSigner

    try:
        signer = WebhookSigner.load_or_create(webhook_key or data_dir / WEBHOOK_KEY_FILE)
        networks = parse_networks(_split(allow_networks))
    except ShardvaultError as exc:
        fail_on(exc)
    return WebhookRuntime(signer=signer, policy=DestinationPolicy(networks))


def _split(values: Iterable[str]) -> list[str]:
    return [part for value in values for part in value.replace(",", " ").split()]


def start_dispatcher(platform: "Platform", runtime: "WebhookRuntime") -> "WebhookDispatcher":
    """Start a dispatcher thread on ``platform``'s database; the caller stops it."""
    from shardvault.service.webhook_delivery import WebhookDispatcher

    assert runtime.signer is not None
    dispatcher = WebhookDispatcher(platform.database, runtime.signer, runtime.policy)
    dispatcher.start()
    return dispatcher
