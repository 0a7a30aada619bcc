"""``shardvault server`` options for the transaction pipeline, and its worker threads.

Two signing backends:

* ``--signer cosigners`` (the default): each workspace's key shares live on three
  co-signer processes the server starts on demand (one share store, keyring and
  passphrase file each, under ``COSIGNER_HOME/<workspace>/party-<i>``, outside the data
  directory: ``--cosigner-home``, by default ``<DATA_DIR>-cosigners``), which connect out
  to this server's relay at ``/cosigners/<workspace>/v1/relay/...`` and check every
  request themselves (:mod:`shardvault.service.embedded_cosigners`,
  :mod:`shardvault.service.cosigner_home`, :mod:`shardvault.service.cosigner_backend`).
  ECDSA presignatures are pooled in the background (``--presignature-pool`` per address
  that has signed).
* ``--signer local-ceremony``: every party in the server process, shares in
  ``DATA_DIR/custody`` sealed with ``SHARDVAULT_KEYRING_PASSPHRASE``. Without the
  passphrase the server runs without a signing backend: vault creation answers 503 and
  submitted transactions wait in the queue.

Both are development modes (one host holds every share): the server logs a warning at
start and ``GET /v1/health`` reports the mode (:mod:`shardvault.service.signer_mode`).

Where networks' nodes may be (``rpc_url``, checked when a network is registered and at
every connection to it): public addresses, this host (``--rpc-loopback``, the default,
for a development chain) and the networks of ``--allow-rpc-network``; never link-local
or cloud metadata addresses.
"""

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from shardvault.cli._output import fail

if TYPE_CHECKING:
    from fastapi import APIRouter

    from shardvault.service.cosigners import StatusLookup
    from shardvault.service.destinations import DestinationPolicy
    from shardvault.service.pipeline import PipelineRuntime, PipelineWorker
    from shardvault.service.platform import Platform
    from shardvault.service.signer_mode import SignerMode

F = TypeVar("F", bound=Callable[..., Any])

PASSPHRASE_ENV = "SHARDVAULT_KEYRING_PASSPHRASE"  # noqa: S105 (a variable name)
"""The environment variable holding the local keyring's passphrase."""

STALL_AFTER_S = 15.0
"""Seconds a co-signer of a signing quorum may be out of touch before its session is
aborted and another quorum signs: long enough for a co-signer busy with a burst's
presignatures (it polls between batches), short enough that a transfer waits a quarter
of a minute, not half of one. The worker keeps its claim on the transfer meanwhile
(:mod:`shardvault.service.work_lease`)."""

MAX_UNCONFIRMED_S = 6 * 3600.0
"""The pipeline runtime's default limit on waiting for confirmations (``--max-unconfirmed``)."""

PRESIGNATURE_POOL = 8
"""Presignatures kept ready per (key, address) that has signed (in memory only)."""

SIGNERS = ("cosigners", "remote", "local-ceremony")
"""``cosigners``: co-signer processes this server starts on its own host (development);
``remote``: paired co-signers on their own hosts that connect in (production);
``local-ceremony``: every party inside this process (development)."""

DEVELOPMENT_SIGNERS = ("cosigners", "local-ceremony")
"""The signers that put every share on the server's host (refused in production)."""


def pipeline_options(function: F) -> F:
    """Add the pipeline's options to a command."""
    function = click.option(
        "--unsafe-test-only-primes",
        "test_only_primes",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        envvar="SHARDVAULT_UNSAFE_TEST_ONLY_PRIMES",
        show_envvar=True,
        help="TEST ONLY: published safe primes for ECDSA key generation (insecure keys).",
    )(function)
    function = click.option(
        "--pipeline-workers",
        type=click.IntRange(1, 64),
        default=4,
        show_default=True,
        help="Pipeline worker threads (transactions advanced concurrently).",
    )(function)
    function = click.option(
        "--pipeline-batch",
        # service.pipeline's DEFAULT_BATCH_SIZE and MAX_BATCH_SIZE (not imported here:
        # the command line loads the pipeline only for the commands that run it).
        type=click.IntRange(1, 256),
        default=32,
        show_default=True,
        help="Transfers a pipeline worker claims at once (a burst's share one evaluation "
        "commit and one round of signing requests).",
    )(function)
    function = click.option(
        "--max-unconfirmed",
        envvar="SHARDVAULT_MAX_UNCONFIRMED",
        type=click.FloatRange(0, 30 * 86400),
        default=MAX_UNCONFIRMED_S,
        show_default=True,
        help="Seconds a broadcast transaction may stay unconfirmed (the node holding it "
        "but mining nothing) before it ends failed; 0 watches it for ever. A transaction "
        "the chain drops is sent again instead, never re-signed.",
    )(function)
    function = click.option(
        "--presignature-pool",
        type=click.IntRange(0, 10_000),
        default=PRESIGNATURE_POOL,
        show_default=True,
        help="ECDSA presignatures kept ready per address that has signed.",
    )(function)
    function = click.option(
        "--cosigner-home",
        "cosigner_home_option",
        envvar="SHARDVAULT_COSIGNER_HOME",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="With --signer cosigners: where the co-signers' directories live, outside "
        "the data directory [default: DATA_DIR-cosigners].",
    )(function)
    function = click.option(
        "--signer",
        type=click.Choice(SIGNERS),
        default="cosigners",
        show_default=True,
        help="Where keys are generated and used: cosigners (processes this server starts "
        "on its own host: development), remote (paired co-signers on their own hosts), or "
        "local-ceremony (every party inside this process: development).",
    )(function)
    function = click.option(
        "--cosigner-stall-after",
        type=click.FloatRange(1.0, 3600.0),
        default=STALL_AFTER_S,
        show_default=True,
        help="Seconds a co-signer of a signing quorum may stay out of touch before its "
        "session is aborted and another quorum signs.",
    )(function)
    return click.option(
        "--pipeline/--no-pipeline",
        "run_pipeline",
        default=True,
        show_default=True,
        help="Sign and send transactions in this process.",
    )(function)


def node_options(function: F) -> F:
    """Add ``--allow-rpc-network`` and ``--rpc-loopback/--no-rpc-loopback``."""
    function = click.option(
        "--rpc-loopback/--no-rpc-loopback",
        "rpc_loopback",
        default=True,
        show_default=True,
        help="Allow networks whose node is on this host (127.0.0.0/8, ::1), such as a "
        "development chain.",
    )(function)
    return click.option(
        "--allow-rpc-network",
        "allow_rpc_networks",
        multiple=True,
        envvar="SHARDVAULT_RPC_ALLOW_NETWORKS",
        help="Allow networks whose node is in this non-public network (CIDR; repeatable), "
        "e.g. 10.0.0.0/8 for a node in the operator's network. Public addresses are always "
        "allowed; link-local and cloud metadata addresses never are.",
    )(function)


def node_policy(allow_rpc_networks: Iterable[str], rpc_loopback: bool) -> "DestinationPolicy":
    """The SSRF guard of networks' nodes from :func:`node_options`' values.

    Raises:
        ValidationError: a value is not a network.
    """
    from shardvault.service.destinations import DestinationPolicy, parse_networks

    values = [part for value in allow_rpc_networks for part in value.replace(",", " ").split()]
    networks = parse_networks(values, field="--allow-rpc-network")
    return DestinationPolicy.for_rpc_nodes(networks, loopback=rpc_loopback)


@dataclass
class PipelineSetup:
    """The runtime, what it is (for the start-up warning and the health route), the
    routes it adds (the co-signers' relay) and what to stop."""

    runtime: "PipelineRuntime | None"
    mode: "SignerMode | None" = None
    routers: list["APIRouter"] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)
    # Run as the HTTP server begins to shut down (before it waits for open requests).
    on_shutdown: list[Callable[[], None]] = field(default_factory=list)
    # Each workspace's co-signers' live status (GET /v1/cosigners).
    status: "StatusLookup | None" = None

    def shutting_down(self) -> None:
        for hook in self.on_shutdown:
            hook()

    def close(self) -> None:
        for close in reversed(self.closers):
            close()


def cosigner_home(data_dir: Path, option: Path | None) -> Path:
    """The checked co-signer home (created 0700), with any co-signer directories of the
    old layout (``DATA_DIR/cosigners``) moved into it; exits with the reason when it is
    refused."""
    from shardvault.service.cosigner_home import CosignerHomeRefused, prepare_cosigner_home

    try:
        return prepare_cosigner_home(data_dir, option).path
    except CosignerHomeRefused as exc:
        fail(str(exc))


def open_pipeline(
    data_dir: Path,
    test_only_primes: Path | None,
    *,
    signer: str = "local-ceremony",
    platform: "Platform | None" = None,
    coordinator_url: Callable[[], str] | None = None,
    presignature_pool: int = PRESIGNATURE_POOL,
    stall_after: float = STALL_AFTER_S,
    home: Path | None = None,
    rpc_policy: "DestinationPolicy | None" = None,
) -> PipelineSetup:
    """The pipeline runtime of ``signer`` (module docstring); ``home`` is the checked
    co-signer home (:func:`cosigner_home`) the co-signer backend needs; nodes are reached
    where ``rpc_policy`` allows (default: public addresses and this host)."""
    from shardvault.service.destinations import DestinationPolicy

    policy = rpc_policy or DestinationPolicy.for_rpc_nodes()
    if signer == "remote":
        if platform is None:
            raise ValueError("the remote co-signer backend needs the platform")
        return _remote(platform, presignature_pool, stall_after, policy)
    if signer == "cosigners":
        if platform is None or coordinator_url is None or home is None:
            raise ValueError(
                "the co-signer backend needs the platform, the server's URL and a home"
            )
        return _cosigners(
            home, test_only_primes, platform, coordinator_url, presignature_pool, stall_after,
            policy,
        )  # fmt: skip
    from shardvault.service.signer_mode import LOCAL_CEREMONY

    runtime = _local_ceremony(data_dir, test_only_primes, presignature_pool, policy)
    return PipelineSetup(runtime, mode=LOCAL_CEREMONY if runtime is not None else None)


AUX_SETS_ENV = "SHARDVAULT_AUX_SETS"
"""Prepared auxiliary-info sets the co-signer backend keeps per (workspace, party set)
(docs/cosigner.md, "Prepared aux info"); default :data:`AUX_SETS_DEFAULT`, 0 turns it
off. Each co-signer holds at most its ``--aux-pool-max`` (default 4) per party set."""

AUX_SETS_DEFAULT = 2


def aux_sets_target() -> int:
    """The target of :data:`AUX_SETS_ENV` (a bad value is refused at start-up)."""
    raw = os.environ.get(AUX_SETS_ENV, str(AUX_SETS_DEFAULT))
    try:
        target = int(raw)
    except ValueError:
        raise click.BadParameter(f"{AUX_SETS_ENV} must be a number from 0 to 64") from None
    if not 0 <= target <= 64:
        raise click.BadParameter(f"{AUX_SETS_ENV} must be a number from 0 to 64")
    return target


def _cosigners(
    home: Path,
    test_only_primes: Path | None,
    platform: "Platform",
    coordinator_url: Callable[[], str],
    presignature_pool: int,
    stall_after: float,
    rpc_policy: "DestinationPolicy",
) -> PipelineSetup:
    from shardvault.cosigner.relay_app import relay_hub_router
    from shardvault.service.cosigner_backend import CosignerBackend
    from shardvault.service.embedded_cosigners import EmbeddedCosigners
    from shardvault.service.pipeline import PipelineRuntime
    from shardvault.service.policies import pinned_admin_set
    from shardvault.service.signer_mode import EMBEDDED_COSIGNERS

    def admin_set(workspace_id: str) -> dict[str, object] | None:
        with platform.unit_of_work(read_only=True) as uow:
            return pinned_admin_set(uow, workspace_id)

    policy_chain, policy_version = _policy_lookups(platform)

    primes = test_only_primes.resolve() if test_only_primes is not None else None
    fleet = EmbeddedCosigners(home, admin_set, coordinator_url, test_only_primes=primes)
    backend = CosignerBackend(
        fleet.relay,
        policy_chain,
        policy_version=policy_version,
        presignature_pool=presignature_pool,
        stall_after=stall_after,
        parties=fleet.parties,
        aux_sets=aux_sets_target(),
    )

    def status(workspace_id: str) -> dict[int, dict[str, object]]:
        relay = fleet.lookup(workspace_id)
        return {} if relay is None else relay.liveness()

    return PipelineSetup(
        PipelineRuntime(backend, rpc_policy=rpc_policy),
        mode=EMBEDDED_COSIGNERS,
        routers=[relay_hub_router(fleet.lookup)],
        closers=[backend.close, fleet.close],  # closed in reverse: relays first
        # The co-signers' long polls would hold the HTTP server's shutdown for their
        # wait, and be cancelled (an error in the log) when its grace period ends.
        on_shutdown=[fleet.wake_polls],
        status=status,
    )


def _policy_lookups(
    platform: "Platform",
) -> tuple[Callable[[str], list[dict[str, object]]], Callable[[str], int | None]]:
    """The workspace's activated bundles, and its active version, read from the store."""
    from shardvault.service.policies import activated_bundles, active_version

    def policy_chain(workspace_id: str) -> list[dict[str, object]]:
        with platform.unit_of_work(read_only=True) as uow:
            return activated_bundles(uow, workspace_id)

    def policy_version(workspace_id: str) -> int | None:
        with platform.unit_of_work(read_only=True) as uow:
            return active_version(uow, workspace_id)

    return policy_chain, policy_version


def _remote(
    platform: "Platform",
    presignature_pool: int,
    stall_after: float,
    rpc_policy: "DestinationPolicy",
) -> PipelineSetup:
    """Paired co-signers on their own hosts (:mod:`shardvault.service.remote_cosigners`):
    nothing is started here, and no share or unlock secret is on this host."""
    from shardvault.cosigner.relay_app import relay_hub_router
    from shardvault.service.cosigner_backend import CosignerBackend
    from shardvault.service.cosigners import paired_identities
    from shardvault.service.pipeline import PipelineRuntime
    from shardvault.service.remote_cosigners import RemoteCosigners

    def identities(workspace_id: str) -> dict[int, Any]:
        with platform.unit_of_work(read_only=True) as uow:
            return paired_identities(uow, workspace_id)

    from shardvault.service.signer_mode import REMOTE_COSIGNERS

    fleet = RemoteCosigners(identities)
    policy_chain, policy_version = _policy_lookups(platform)
    backend = CosignerBackend(
        fleet.relay,
        policy_chain,
        policy_version=policy_version,
        presignature_pool=presignature_pool,
        stall_after=stall_after,
        # Each workspace has as many co-signers as its signed directory lists.
        parties=None,
        aux_sets=aux_sets_target(),
    )
    return PipelineSetup(
        PipelineRuntime(backend, rpc_policy=rpc_policy),
        mode=REMOTE_COSIGNERS,
        routers=[relay_hub_router(fleet.lookup)],
        closers=[backend.close, fleet.close],
        on_shutdown=[fleet.wake_polls],
        status=fleet.status,
    )


def _local_ceremony(
    data_dir: Path,
    test_only_primes: Path | None,
    presignature_pool: int,
    rpc_policy: "DestinationPolicy",
) -> "PipelineRuntime | None":
    passphrase = os.environ.get(PASSPHRASE_ENV)
    if not passphrase:
        return None
    from shardvault.custody import LocalShareStore, SecretBytes, ShareCustody
    from shardvault.custody.backends.local import LocalBackend
    from shardvault.service.pipeline import PipelineRuntime
    from shardvault.service.signing import LocalCeremonyBackend

    keyring = data_dir / "custody" / "keyring"
    secret = SecretBytes(passphrase.encode())
    existing = sorted(keyring.glob("*.key")) if keyring.exists() else []
    if existing:
        kek = LocalBackend(keyring, secret, existing[0].stem)
    else:
        kek = LocalBackend.initialize(keyring, secret)
    custody = ShareCustody(kek, LocalShareStore(data_dir / "custody" / "shares"))
    signer = LocalCeremonyBackend(
        custody, test_only_primes=test_only_primes, presignature_pool=presignature_pool
    )
    return PipelineRuntime(signer, rpc_policy=rpc_policy)


class WorkerThread:
    """:class:`PipelineWorker` s running in daemon threads until :meth:`close`."""

    def __init__(self, workers: "list[PipelineWorker]") -> None:
        self._workers = workers
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=worker.run, args=(self._stop,), name=f"pipeline-worker-{i}", daemon=True
            )
            for i, worker in enumerate(workers)
        ]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        if self._workers:
            close = getattr(self._workers[0].runtime.backend, "close", None)
            if callable(close):
                close()


def start_worker(
    platform: "Platform", runtime: "PipelineRuntime", count: int, batch_size: int
) -> WorkerThread:
    """Start ``count`` pipeline workers for this server, each claiming up to
    ``batch_size`` items at once."""
    from shardvault.service.pipeline import PipelineWorker

    return WorkerThread(
        [PipelineWorker(platform, runtime, batch_size=batch_size) for _ in range(count)]
    )
