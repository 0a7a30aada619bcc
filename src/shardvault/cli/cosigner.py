"""``shardvault cosigner``: set up and run a co-signer node.

``init`` creates a data directory (passphrase-sealed keyring, sealed identity keys, the
pinned workspace and admin set, in a configuration signed by the node's identity) and
prints the node's public identity and its fingerprint; ``pin`` pins the peers' public
identities (it unlocks the identity to sign the configuration again); ``identity``
prints this node's public identity and fingerprint; ``seal-config`` shows and signs a
configuration written, unsigned, by an earlier release; ``configure`` sets or removes
the customer callback (signing the configuration again); ``pair`` registers the node
with a server (docs/cosigner.md, "Pairing"); ``run`` connects out to a server's or a
coordinator's relay and serves sessions until SIGTERM or SIGINT. The passphrase comes
from the environment variable named by ``--passphrase-env`` or from the file named by
``--passphrase-file`` (:mod:`shardvault.cli._cosigner_secret`); ``init
--generate-passphrase-file`` makes a random one and writes it to a new 0600 file, so
that whoever starts the node never holds it.

``--unlock-mode attested`` (at ``init``) replaces the passphrase-sealed keyring with a
key-release service: every share's data key is released to this process only against a
fresh attestation document from the development enclave (``--release-url``,
``--release-key``, ``--dev-root-dir``, ``--role``); ``run`` then needs no passphrase.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import ssl
import sys
import time
from pathlib import Path
from types import FrameType
from typing import IO

import click

from shardvault.cli._cosigner_options import (
    attested_unlock,
    callback_options,
    callback_settings,
    unlock_option,
)
from shardvault.cli._cosigner_secret import (
    check_exclusive,
    generate_passphrase_file,
    passphrase_options,
)
from shardvault.cli._cosigner_secret import passphrase as read_passphrase
from shardvault.cli._output import emit_json, fail, fail_on
from shardvault.cli._profile import profile_option
from shardvault.cosigner.config import PRIVATE_FILE_MODE
from shardvault.cosigner.errors import CosignerError, LinkError
from shardvault.cosigner.state import (
    ConfigSummary,
    NodeState,
    configure_callback,
    init_node,
    open_node,
    pin_peers,
    read_public_identity,
    seal_config,
    unseal_identity,
)
from shardvault.cosigner.state import (
    unlock_mode as unlock_mode_of,
)
from shardvault.crypto.channel import PartyIdentity, PublicIdentity
from shardvault.crypto.errors import CryptoError
from shardvault.custody.backends.local import Argon2Cost
from shardvault.custody.errors import CustodyError
from shardvault.errors import ShardvaultError


@click.group(name="cosigner")
def group() -> None:
    """A co-signer node: holds key shares, checks every request, runs MPC sessions."""


def _load_json(path: Path) -> object:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        fail(f"cannot read JSON from {path}")


def _emit_identity(party: int, public: PublicIdentity, **extra: str) -> None:
    """Print a node's public identity and its fingerprint (what operators compare)."""
    emit_json(
        {"party": party, "identity": public.to_json(), "fingerprint": public.fingerprint(), **extra}
    )


@group.command(name="init")
@click.option("--id", "party", type=click.IntRange(1, 65535), required=True)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--workspace", required=True, help="The workspace whose policy this node pins.")
@click.option(
    "--admins",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help='JSON admin set: {"quorum": k, "members": [{"id", "algorithm", "public_key"}]}',
)
@passphrase_options
@click.option(
    "--generate-passphrase-file",
    "generated_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Make a random passphrase and write it to this new file (mode 0600); "
    "later commands read it with --passphrase-file.",
)
@click.option(
    "--dev-argon2", is_flag=True, help="Cheap Argon2 cost (tests and throw-away nodes only)."
)
@unlock_option
@click.option("--release-url", default=None, help="attested: the key-release service URL.")
@click.option(
    "--release-key", default=None, help="attested: the service's Ed25519 public key (hex)."
)
@click.option(
    "--dev-root-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="attested: the development root the development enclave signs with.",
)
@click.option("--role", default="cosigner", show_default=True, help="attested: PCR3's role.")
@click.option(
    "--recipient-per-unlock",
    is_flag=True,
    help="attested: a fresh RSA recipient key pair for every release (slower unlocks).",
)
@click.option(
    "--backend-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="backend: a YAML/JSON file naming the KMS or HSM that wraps this node's data "
    "keys ({type: pkcs11, library, token_label, pin_env[, key_id]} or {type: aws-kms, "
    "key_id, region[, endpoint_url]}); without key_id a new key is made in the HSM.",
)
@callback_options
def init(
    party: int,
    data_dir: Path,
    workspace: str,
    admins: Path,
    passphrase_env: str | None,
    passphrase_file: Path | None,
    generated_file: Path | None,
    dev_argon2: bool,
    unlock_mode: str | None,
    release_url: str | None,
    release_key: str | None,
    dev_root_dir: Path | None,
    role: str,
    recipient_per_unlock: bool,
    backend_config: Path | None,
    callback_url: str | None,
    callback_key: str | None,
    callback_timeout: float,
) -> None:
    """Create a co-signer data directory and print its public identity."""
    document = _load_json(admins)
    if not isinstance(document, dict):
        fail("the admin set must be a JSON object")
    callback = callback_settings(callback_url, callback_key, callback_timeout)
    cost = Argon2Cost(time_cost=1, memory_cost=8 * 1024, parallelism=1) if dev_argon2 else None
    if (unlock_mode == "backend") != (backend_config is not None):
        fail("--unlock-mode backend and --backend-config go together")
    if unlock_mode == "backend":
        assert backend_config is not None
        if generated_file is not None:
            fail("--unlock-mode backend takes no passphrase")
        from shardvault.cosigner.backend_unlock import BackendUnlock
        from shardvault.custody.config import load_config_file

        try:
            unlock = BackendUnlock.prepare(load_config_file(backend_config))
            public = init_node(
                data_dir, party, workspace, document, None, backend=unlock, callback=callback
            )
        except (CosignerError, CustodyError) as exc:
            fail_on(exc)
        _emit_identity(party, public, unlock="backend", key_id=str(unlock.backend["key_id"]))
        return
    if unlock_mode == "attested":
        if generated_file is not None:
            fail("--unlock-mode attested takes no passphrase")
        attested = attested_unlock(
            release_url, release_key, dev_root_dir, role, recipient_per_unlock
        )
        try:
            public = init_node(
                data_dir, party, workspace, document, None, attested=attested, callback=callback
            )
        except (CosignerError, CustodyError) as exc:
            fail_on(exc)
        _emit_identity(party, public, unlock="attested")
        return
    if generated_file is None:
        secret = read_passphrase(passphrase_env, passphrase_file)
    elif passphrase_env is not None or passphrase_file is not None:
        fail("--generate-passphrase-file excludes --passphrase-env and --passphrase-file")
    elif (Path(data_dir) / "cosigner.json").exists():
        # Checked before a secret is made that nothing would be sealed under.
        fail(f"{data_dir} already holds a co-signer")
    else:
        secret = generate_passphrase_file(generated_file)
    with secret as passphrase:
        try:
            public = init_node(
                data_dir, party, workspace, document, passphrase, cost=cost, callback=callback
            )
        except (CosignerError, CustodyError) as exc:
            if generated_file is not None:
                generated_file.unlink(missing_ok=True)
            fail_on(exc)
    _emit_identity(party, public)


@group.command(name="identity")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
def identity(data_dir: Path) -> None:
    """Print this node's public identity (to pin at peers and at the relay) and its
    fingerprint (to compare out of band with what the peers and the admins pin)."""
    try:
        party, public = read_public_identity(data_dir)
    except (CosignerError, CryptoError) as exc:
        fail_on(exc)
    _emit_identity(party, public)


def _unseal(
    data_dir: Path,
    passphrase_env: str | None,
    passphrase_file: Path | None,
    release_url: str | None,
) -> PartyIdentity:
    """This node's identity, unlocked as its data directory says (passphrase or
    attested), to sign its configuration."""
    try:
        mode = unlock_mode_of(data_dir)
        if mode in ("attested", "backend"):
            return unseal_identity(data_dir, None, release_url=release_url)
        with read_passphrase(passphrase_env, passphrase_file) as passphrase:
            return unseal_identity(data_dir, passphrase)
    except (CosignerError, CustodyError) as exc:
        fail_on(exc)


@group.command(name="pin")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--directory",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help='JSON {"<party>": {"signing_key", "encryption_key", "binding"}, ...}',
)
@passphrase_options
@click.option("--release-url", default=None, help="attested: override the configured service URL.")
def pin(
    data_dir: Path,
    directory: Path,
    passphrase_env: str | None,
    passphrase_file: Path | None,
    release_url: str | None,
) -> None:
    """Pin peer identities; a different key for an already pinned party is refused.

    Unlocks the node's identity to check the configuration's signature and sign it again.
    """
    document = _load_json(directory)
    if not isinstance(document, dict):
        fail("the directory must be a JSON object")
    try:
        peers = {int(p): PublicIdentity.from_json(entry) for p, entry in document.items()}
    except CryptoError as exc:
        fail_on(exc)
    except (ValueError, AttributeError):
        fail("directory keys must be party ids and values identity objects")
    identity = _unseal(data_dir, passphrase_env, passphrase_file, release_url)
    try:
        pin_peers(data_dir, peers, identity)
    except CosignerError as exc:
        fail_on(exc)
    emit_json({"pinned": sorted(peers)})


@group.command(name="configure")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@callback_options
@click.option(
    "--remove-callback", is_flag=True, help="Remove the customer callback (sign without asking)."
)
@passphrase_options
@click.option("--release-url", default=None, help="attested: override the configured service URL.")
def configure(
    data_dir: Path,
    callback_url: str | None,
    callback_key: str | None,
    callback_timeout: float,
    remove_callback: bool,
    passphrase_env: str | None,
    passphrase_file: Path | None,
    release_url: str | None,
) -> None:
    """Set or remove the customer callback; the configuration is signed again.

    A running co-signer reads it at its next start.
    """
    callback = callback_settings(callback_url, callback_key, callback_timeout)
    if (callback is not None) == remove_callback:
        fail("give --callback-url and --callback-key, or --remove-callback")
    identity = _unseal(data_dir, passphrase_env, passphrase_file, release_url)
    try:
        configure_callback(data_dir, identity, callback)
    except CosignerError as exc:
        fail_on(exc)
    emit_json({"callback": None if callback is None else callback.to_json()})


def _show(summary: ConfigSummary) -> None:
    """The configuration an operator is about to sign, on stderr."""
    admins = summary.admins.to_document()
    members = admins["members"]
    assert isinstance(members, list)
    lines = [
        f"co-signer {summary.party} of workspace {summary.workspace!r} ({summary.unlock} unlock)",
        f"admin set: quorum {admins['quorum']} of {len(members)}",
        *(f"  {m['id']}  {m['algorithm']}  {m['public_key']}" for m in members),
        "pinned identities (fingerprints):",
        *(
            f"  {party}  {fingerprint}" + ("  (this co-signer)" if party == summary.party else "")
            for party, fingerprint in sorted(summary.fingerprints.items())
        ),
        f"customer callback: {summary.callback_url or 'none'}",
    ]
    click.echo("\n".join(lines), err=True)


@group.command(name="seal-config")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@passphrase_options
@click.option("--release-url", default=None, help="attested: override the configured service URL.")
@click.option("--yes", is_flag=True, help="Sign without asking (the summary is still printed).")
def seal_config_command(
    data_dir: Path,
    passphrase_env: str | None,
    passphrase_file: Path | None,
    release_url: str | None,
    yes: bool,
) -> None:
    """Check and sign a configuration written, unsigned, by an earlier release.

    Unlocks the identity, shows the admin set and the fingerprints of the pinned
    identities, and signs the configuration once confirmed; then makes the data
    directory's files 0600 and its directories 0700. Compare what it shows with what
    you expect: the file was not protected before.
    """
    identity = _unseal(data_dir, passphrase_env, passphrase_file, release_url)

    def confirm(summary: ConfigSummary) -> bool:
        _show(summary)
        return yes or click.confirm("sign this configuration?", default=False, err=True)

    try:
        summary = seal_config(data_dir, identity, confirm)
    except CosignerError as exc:
        fail_on(exc)
    emit_json({"sealed": True, **summary.to_json()})


class _Stop(BaseException):
    """Raised from the signal handler to interrupt a long poll."""


def _open(
    data_dir: Path,
    passphrase_env: str | None,
    passphrase_file: Path | None,
    release_url: str | None = None,
) -> tuple[NodeState, str]:
    """Open the data directory in its configured unlock mode; exits on a refusal."""
    try:
        configured = unlock_mode_of(data_dir)
    except CosignerError as exc:
        fail_on(exc)
    if configured in ("attested", "backend"):
        try:
            return open_node(data_dir, None, release_url=release_url), configured
        except (CosignerError, CustodyError) as exc:
            fail_on(exc)
    with read_passphrase(passphrase_env, passphrase_file) as passphrase:
        try:
            return open_node(data_dir, passphrase), configured
        except (CosignerError, CustodyError) as exc:
            fail_on(exc)


def _tls(server_cert: Path | None) -> ssl.SSLContext | bool:
    """The TLS verification of the link: the pinned server certificate as the only trust
    anchor, or the system's CAs."""
    if server_cert is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(server_cert))
    except (OSError, ssl.SSLError):
        fail(f"cannot load the server certificate {server_cert}")


@group.command(name="pair")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--server", required=True, help="The server's base URL (https:// in production).")
@click.option(
    "--token",
    envvar="SHARDVAULT_PAIRING_TOKEN",
    required=True,
    help="The one-time pairing token an admin made (shardvault cosigners pairing-token).",
)
@click.option(
    "--server-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The server's TLS certificate (PEM), pinned as the only trust anchor.",
)
@click.option("--label", default="", help="A name for this co-signer (its host, say).")
@passphrase_options
def pair(
    data_dir: Path,
    server: str,
    token: str,
    server_cert: Path | None,
    label: str,
    passphrase_env: str | None,
    passphrase_file: Path | None,
) -> None:
    """Register this co-signer with a server and print its fingerprint.

    The identity key signs the registration (proof of possession). Read the printed
    fingerprint to the admins out of band: they sign a policy whose co-signer directory
    lists this fingerprint, and until then no peer accepts this co-signer in a session.
    """
    from shardvault import __version__
    from shardvault.cosigner.pairing import pairing_document
    from shardvault.sdk.cosigners import submit_pairing

    state, mode = _open(data_dir, passphrase_env, passphrase_file)
    try:
        document, signature = pairing_document(
            state.identity,
            workspace=state.workspace,
            token=token,
            timestamp=int(time.time()),
            version=__version__,
            label=label[:100],
            details={"unlock": mode, "attestation": _attestation(mode)},
        )
        fingerprint = state.identity.public.fingerprint()
    finally:
        state.close()
    try:
        answer = submit_pairing(server, document, signature, verify=_tls(server_cert))
    except ShardvaultError as exc:
        fail_on(exc)
    if answer.get("fingerprint") != fingerprint:
        fail("the server recorded another fingerprint than this co-signer's")
    emit_json(
        {
            "paired": True,
            "party": state.party,
            "workspace": state.workspace,
            "fingerprint": fingerprint,
            "server": server,
        }
    )


def _attestation(mode: str) -> str:
    """What a node reports as its attestation: the development enclave in ``attested``
    mode (no hardware isolation), none otherwise."""
    return "development" if mode == "attested" else "none"


def _production_refusals(
    coordinator: str, server_cert: Path | None, mode: str, test_only_primes: Path | None
) -> list[str]:
    """Why this node may not run in the production profile (empty: it may)."""
    from shardvault.cosigner.node import TEST_ONLY_PRIMES_ENV

    reasons = []
    if not coordinator.startswith("https://"):
        reasons.append("the server URL is not https")
    if server_cert is None:
        reasons.append("no --server-cert pins the server's TLS certificate")
    if test_only_primes is not None:
        reasons.append("--unsafe-test-only-primes (published test-only primes)")
    if os.environ.get(TEST_ONLY_PRIMES_ENV):
        reasons.append(f"{TEST_ONLY_PRIMES_ENV} is set (published test-only primes)")
    if mode == "attested":
        reasons.append("attested unlock here uses the development attestation root")
    return reasons


@group.command(name="run")
@click.option("--id", "party", type=click.IntRange(1, 65535), required=True)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--server",
    default=None,
    help="The server's base URL: the relay is {server}/cosigners/{workspace}.",
)
@click.option("--coordinator", default=None, help="Base URL of a relay (instead of --server).")
@click.option(
    "--server-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The server's TLS certificate (PEM), pinned as the only trust anchor.",
)
@profile_option(
    "production: https with a pinned certificate, no test-only primes, no "
    "development attestation, and sessions only with an admin-signed co-signer directory."
)
@passphrase_options
@click.option("--poll-wait", type=click.FloatRange(0.1, 30.0), default=10.0, show_default=True)
@click.option("--session-timeout", type=click.FloatRange(1.0), default=60.0, show_default=True)
@unlock_option
@click.option("--release-url", default=None, help="attested: override the configured service URL.")
@click.option(
    "--exit-with-parent",
    is_flag=True,
    help="Stop when the process that started this one is gone (embedded co-signers).",
)
@click.option(
    "--unsafe-test-only-primes",
    "test_only_primes",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TESTS AND DEMOS ONLY: take Paillier primes from this file of PUBLISHED primes "
    "(tests/fixtures/test_only_paillier.json) instead of searching; every ECDSA key made "
    "then is insecure. Refused by the production profile.",
)
@click.option(
    "--prime-pool-size",
    type=click.IntRange(0, 10_000),
    default=8,
    show_default=True,
    envvar="SHARDVAULT_PRIME_POOL_SIZE",
    help="Safe primes this co-signer keeps searched ahead, sealed in its custody; each "
    "ECDSA key it generates takes two (0: no pool, search during key generation). The "
    "server's embedded co-signers take it from the server's environment.",
)
@click.option(
    "--prime-pool-rate",
    type=click.FloatRange(0.1, 6000.0),
    default=12.0,
    show_default=True,
    envvar="SHARDVAULT_PRIME_POOL_RATE",
    help="Most prime searches started a minute while the pool fills (about 1 s of one "
    "core each on a quiet machine); the search runs in a separate process at idle "
    "priority.",
)
@click.option(
    "--prime-pool-workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    envvar="SHARDVAULT_PRIME_POOL_WORKERS",
    help="Prime searches that may run at once (worker processes).",
)
@click.option(
    "--aux-pool-max",
    type=click.IntRange(0, 64),
    default=4,
    show_default=True,
    envvar="SHARDVAULT_AUX_POOL_MAX",
    help="Most prepared auxiliary-info sets (aux_prepare) this co-signer holds or makes "
    "at once per party set; more are refused (0 refuses every aux_prepare).",
)
@click.option(
    "--no-record-sharing",
    "no_record_sharing",
    is_flag=True,
    hidden=True,
    help="Measurement only: skip the records round (replays and velocity then hold only "
    "within what this co-signer signed). Refused by the production profile.",
)
def run(
    party: int,
    data_dir: Path,
    server: str | None,
    coordinator: str | None,
    server_cert: Path | None,
    profile: str,
    passphrase_env: str | None,
    passphrase_file: Path | None,
    poll_wait: float,
    session_timeout: float,
    unlock_mode: str | None,
    release_url: str | None,
    exit_with_parent: bool,
    test_only_primes: Path | None,
    prime_pool_size: int,
    prime_pool_rate: float,
    prime_pool_workers: int,
    aux_pool_max: int,
    no_record_sharing: bool,
) -> None:
    """Connect out to COORDINATOR and serve sessions until SIGTERM or SIGINT.

    One process per data directory: a second ``run`` on the same directory is refused
    (two processes with one identity would split the relay's messages between them).

    From start-up a worker process fills the co-signer's pool of safe primes (sealed in
    its custody) at idle priority, so that an ECDSA key generation does not wait for a
    prime search; with --unsafe-test-only-primes the pool is filled from that file.
    """
    check_exclusive(passphrase_env, passphrase_file)
    # Imported here: the node's protocol code is what ``run`` alone needs, and the other
    # commands start faster without it (the embedded co-signers' init and pin).
    from shardvault.cosigner.link import HttpLink
    from shardvault.cosigner.node import TEST_ONLY_PRIMES_ENV, CosignerNode

    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    parent = os.getppid()
    if (server is None) == (coordinator is None):
        fail("give exactly one of --server and --coordinator")
    if profile != "production" and os.environ.get(TEST_ONLY_PRIMES_ENV) and not test_only_primes:
        # A co-signer never takes published primes from its environment: a variable left
        # set must not make every ECDSA key it generates readable by anyone.
        fail(
            f"{TEST_ONLY_PRIMES_ENV} is set; a co-signer uses published test-only primes "
            "only with --unsafe-test-only-primes FILE (unset it, or pass the flag)"
        )
    lock = _lock_data_dir(data_dir)
    try:
        configured = unlock_mode_of(data_dir)
    except CosignerError as exc:
        fail_on(exc)
    if unlock_mode is not None and unlock_mode != configured:
        fail(f"the data directory unlocks in {configured} mode, not {unlock_mode}")
    if profile == "production":
        target = server or coordinator or ""
        refusals = _production_refusals(target, server_cert, configured, test_only_primes)
        if no_record_sharing:
            refusals.append("--no-record-sharing drops the records round")
        if refusals:
            fail("the production profile refuses to run: " + "; ".join(refusals))
    state, _ = _open(data_dir, passphrase_env, passphrase_file, release_url)
    if state.party != party:
        state.close()
        fail(f"the data directory belongs to co-signer {state.party}, not {party}")
    if coordinator is None:
        coordinator = f"{str(server).rstrip('/')}/cosigners/{state.workspace}"
    link = HttpLink(coordinator, state.identity, timeout=10.0, verify=_tls(server_cert))
    if test_only_primes is not None:
        logging.getLogger("shardvault.cosigner").warning(
            "TEST ONLY: ECDSA keys use the published primes of %s and are insecure",
            test_only_primes,
        )
    from shardvault.cosigner.prime_pool import PoolSettings, PrimePool

    try:
        pool = PrimePool(
            state.custody,
            state.party,
            PoolSettings(
                size=prime_pool_size, rate_per_min=prime_pool_rate, workers=prime_pool_workers
            ),
            test_only_primes=test_only_primes,
        )
    except (ValueError, CosignerError, CustodyError) as exc:
        state.close()
        fail(f"cannot open the prime pool: {exc}")
    pool.start()
    from shardvault.cosigner.aux_pool import AuxPool, AuxPoolSettings

    aux_pool = AuxPool(
        state.custody,
        state.party,
        AuxPoolSettings(max_per_set=aux_pool_max),
        test_only=test_only_primes is not None,
    )
    node = CosignerNode(
        state,
        link,
        session_timeout=session_timeout,
        require_signed_directory=profile == "production",
        share_records=not no_record_sharing,
        test_only_primes=test_only_primes,
        prime_pool=pool,
        aux_pool=aux_pool,
    )
    from shardvault import __version__

    def report() -> None:
        head = state.chain.head
        link.status = {
            "version": __version__,
            "unlock": configured,
            "attestation": _attestation(configured),
            "policy_version": None if head is None else head.version,
            "profile": profile,
            "prime_pool": pool.status(),
            "aux_pool": aux_pool.status(),
        }

    stopping = False
    polling = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        # Interrupt a long poll at once; between polls the loop sees the flag.
        if polling:
            raise _Stop

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emit_json({"event": "started", "party": party, "coordinator": coordinator})
    sys.stdout.flush()
    try:
        while not stopping:
            if exit_with_parent and os.getppid() != parent:
                logging.getLogger("shardvault.cosigner").warning("parent gone: stopping")
                break
            report()
            try:
                polling = True
                items = link.poll(poll_wait)
                polling = False
            except LinkError as exc:
                polling = False
                logging.getLogger("shardvault.cosigner").warning("link: %s", exc)
                if not stopping:
                    time.sleep(1.0)
                continue
            out = node.handle(items)
            node.expire(out)
            if out:
                try:
                    link.send(out.envelopes, out.results, out.events)
                except LinkError as exc:
                    logging.getLogger("shardvault.cosigner").warning("link: %s", exc)
    except _Stop:
        pass
    finally:
        pool.close()
        link.close()
        state.close()
        lock.close()
    emit_json({"event": "stopped", "party": party})


def _lock_data_dir(data_dir: Path) -> IO[bytes]:
    """Hold an exclusive lock on the data directory for this process's life."""
    try:
        descriptor = os.open(
            Path(data_dir) / "run.lock", os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE
        )
        handle = os.fdopen(descriptor, "ab")
    except OSError as exc:
        fail(f"cannot open the data directory: {exc.strerror}")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        fail("another co-signer process is serving this data directory")
    return handle


if __name__ == "__main__":
    # ``python -m shardvault.cli.cosigner``: the co-signer commands without loading the
    # rest of the command line (how the server runs its embedded co-signers).
    group(prog_name="shardvault cosigner")
