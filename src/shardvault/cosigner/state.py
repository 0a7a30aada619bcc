"""A co-signer's data directory: configuration, sealed identity, shares, policy, history.

Layout of ``DATA_DIR``::

    cosigner.json        configuration: party id, workspace, pinned admin set, keyring
                         key id and cost (or the attested unlock), pinned directory of
                         peer identities, optional customer callback; signed by the
                         node's own identity key (:mod:`.config`)
    keyring/             the ``local`` custody backend's passphrase-sealed master key
                         (``passphrase`` unlock mode only)
    shares/              the custody share store (envelope-encrypted blobs only)
    policy/bundles.json  every policy bundle accepted, oldest first (re-verified at start)
    signed.jsonl         the signed, hash-chained record of every signature started,
                         which refuses a second signature of one approval and holds
                         what velocity limits sum (:mod:`.signed_record`; verified at
                         start)
    records/             the copies of the peers' records, received within signing
                         quorums, and what each peer holds of ours (:mod:`.peer_records`)
    history.jsonl        the velocity history written by releases before the record
                         carried requests (read, never written now)
    public_keys.jsonl    the public part of every key held (root key, chain code,
                         thresholds), signed; what address attestations derive from
                         (:mod:`.public_keys`; verified at start)

Every file here is created 0600 and every directory 0700; :func:`open_node` refuses a
``cosigner.json`` or keyring file that group or others can access, and a configuration
whose signature does not verify under the unsealed identity.

The identity (Ed25519 and X25519 secrets) and every key share are stored as custody
share blobs (AES-256-GCM under a data key wrapped by the backend, DESIGN.md invariant 2);
they are decrypted in memory only, when the node opens and for one operation.

Two unlock modes (``cosigner.json`` field ``unlock.mode``):

- ``passphrase`` (the default): the data keys are wrapped by a ``local`` keyring in
  ``keyring/``, sealed under a passphrase;
- ``attested``: the data keys are wrapped by a key-release service's backend (``local``,
  ``pkcs11``, ``aws-kms``) and released to this process only against a fresh attestation
  document for each blob (:class:`~shardvault.custody.attested.AttestedShareCustody`).
  The attester is the development enclave (the process measures its own installed code,
  and signs documents under a development root); there is no keyring here.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from shardvault.cosigner.backend_unlock import BackendUnlock
from shardvault.cosigner.callback import CallbackClient, CallbackSettings
from shardvault.cosigner.config import (
    CONFIG_FORMAT,
    LEGACY_CONFIG_FORMAT,
    PRIVATE_DIR_MODE,
    PRIVATE_FILE_MODE,
    check_private_file,
    make_private_dir,
    read_json,
    sign_config,
    verify_config,
    write_private_json,
)
from shardvault.cosigner.errors import ConfigurationError
from shardvault.cosigner.peer_records import PeerRecords
from shardvault.cosigner.public_keys import PublicKeys
from shardvault.cosigner.signed_record import SignedRecord
from shardvault.crypto.channel import Directory, PartyIdentity, PublicIdentity
from shardvault.crypto.errors import CryptoError
from shardvault.crypto.rng import RandomSource, system_random
from shardvault.custody.attestation.devenclave import DevelopmentEnclave, DevelopmentRoot
from shardvault.custody.attested import AttestedShareCustody
from shardvault.custody.backends.local import Argon2Cost, LocalBackend
from shardvault.custody.envelope import ShareAddress, ShareSlot
from shardvault.custody.release_service import HttpReleaseClient
from shardvault.custody.secret import SecretBytes
from shardvault.custody.shares import ShareCustody
from shardvault.custody.sharestore.local import LocalShareStore
from shardvault.policy import (
    AdminSet,
    BundleChain,
    PastTransaction,
    PolicyBundle,
    PolicyError,
    parse_admin_set,
    parse_bundle,
    parse_history,
)

CONFIG_FILE = "cosigner.json"
"""The configuration file's name in the data directory."""

IDENTITY_WORKSPACE = "_node"
"""The share-store workspace under which the node keeps its own identity."""


UNLOCK_MODES = ("passphrase", "attested", "backend")
"""The ways a node unlocks its data keys (see the module docstring)."""


@dataclass(frozen=True)
class AttestedUnlock:
    """How a node in ``attested`` mode reaches its key-release service and attests.

    ``release_url`` is the service's base URL, ``release_public_key`` the Ed25519 key that
    signs its responses (pinned here at ``init``), ``dev_root_dir`` the directory of the
    development root (``root.pem`` and ``root-key.pem``) the development enclave signs
    with, ``role`` what PCR3 measures, and ``recipient_per_unlock`` whether every release
    gets a fresh recipient key pair (else one per process start).
    """

    release_url: str
    release_public_key: bytes
    dev_root_dir: Path
    role: str = "cosigner"
    recipient_per_unlock: bool = False

    def to_json(self) -> dict[str, object]:
        """The ``unlock`` section of ``cosigner.json``."""
        return {
            "mode": "attested",
            "release_url": self.release_url,
            "release_public_key": self.release_public_key.hex(),
            "enclave": {
                "type": "development",
                "root_dir": str(self.dev_root_dir),
                "role": self.role,
            },
            "recipient_per_unlock": self.recipient_per_unlock,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> AttestedUnlock:
        """Read an ``unlock`` section.

        Raises: ConfigurationError.
        """
        enclave = raw.get("enclave")
        url, key = raw.get("release_url"), raw.get("release_public_key")
        if not isinstance(enclave, dict) or enclave.get("type") != "development":
            raise ConfigurationError("unlock.enclave must be {type: development, root_dir, role}")
        root_dir, role = enclave.get("root_dir"), enclave.get("role", "cosigner")
        if not isinstance(url, str) or not isinstance(key, str):
            raise ConfigurationError("unlock needs release_url and release_public_key strings")
        if not isinstance(root_dir, str) or not isinstance(role, str):
            raise ConfigurationError("unlock.enclave needs root_dir and role strings")
        try:
            public_key = bytes.fromhex(key)
        except ValueError:
            raise ConfigurationError("unlock.release_public_key must be hex") from None
        if len(public_key) != 32:
            raise ConfigurationError("unlock.release_public_key must be 32 bytes")
        per_unlock = raw.get("recipient_per_unlock", False)
        if not isinstance(per_unlock, bool):
            raise ConfigurationError("unlock.recipient_per_unlock must be a boolean")
        return cls(url, public_key, Path(root_dir), role, per_unlock)

    def custody(self, data_dir: Path, release_url: str | None = None) -> AttestedShareCustody:
        """The attested custody of this node: a development enclave made in this process
        (fresh recipient key pair, measurements of the code running now) and a client of
        the release service.

        Raises: ConfigurationError (no development root).
        """
        enclave = DevelopmentEnclave(DevelopmentRoot.load(self.dev_root_dir), role=self.role)
        client = HttpReleaseClient(release_url or self.release_url, self.release_public_key)
        return AttestedShareCustody(
            LocalShareStore(Path(data_dir) / "shares"),
            client,
            enclave,
            recipient_per_unlock=self.recipient_per_unlock,
        )


NodeCustody = ShareCustody | AttestedShareCustody
"""Either custody a node may run with."""


def _close_custody(custody: NodeCustody) -> None:
    """Lock the keyring, close the release-service client, or the KMS/HSM session."""
    if isinstance(custody, AttestedShareCustody):
        custody.close()
    elif isinstance(custody.backend, LocalBackend):
        custody.backend.lock()
    else:
        custody.backend.close()


def identity_address(party: int) -> ShareAddress:
    """Where the node's sealed identity lives in its share store."""
    return ShareAddress(IDENTITY_WORKSPACE, "identity", "channel", str(party))


def _legacy_refusal(data_dir: Path) -> ConfigurationError:
    path = data_dir / CONFIG_FILE
    return ConfigurationError(
        f"{path} has no configuration signature (written by an earlier release): check "
        f"and sign it with `shardvault cosigner seal-config --data-dir {data_dir}`"
    )


def _config(path: Path) -> dict[str, object]:
    """The configuration, read *unverified* (either format): only for what is needed
    before the identity is unsealed, or what is published anyway."""
    config = read_json(path)
    if not isinstance(config, dict) or config.get("format") not in (
        CONFIG_FORMAT,
        LEGACY_CONFIG_FORMAT,
    ):
        raise ConfigurationError(f"{path} is not a co-signer configuration")
    return config


def _signed_config(data_dir: Path, identity: PartyIdentity) -> dict[str, object]:
    """The configuration, verified under ``identity``.

    Raises:
        ConfigurationError: an unsigned configuration of an earlier release, a signature
            that does not verify, or a configuration of another party.
    """
    path = data_dir / CONFIG_FILE
    config = _config(path)
    if config.get("format") == LEGACY_CONFIG_FORMAT:
        raise _legacy_refusal(data_dir)
    verify_config(path, config, identity.public)
    if config.get("party") != identity.party:
        raise ConfigurationError(f"{path} belongs to another party than this identity")
    return config


def _party(config: Mapping[str, object]) -> int:
    party = config.get("party")
    if not isinstance(party, int) or isinstance(party, bool):
        raise ConfigurationError("configuration field 'party' must be an integer")
    return party


def _directory(config: Mapping[str, object]) -> Directory:
    raw = config.get("directory")
    if not isinstance(raw, dict):
        raise ConfigurationError("configuration field 'directory' must be an object")
    try:
        return Directory.of({int(p): PublicIdentity.from_json(entry) for p, entry in raw.items()})
    except (CryptoError, ValueError, TypeError, AttributeError) as exc:
        raise ConfigurationError(f"directory entry refused: {exc}") from None


def _admins(config: Mapping[str, object]) -> AdminSet:
    try:
        return parse_admin_set(config.get("admins"))
    except (KeyError, TypeError, ValueError, PolicyError) as exc:
        raise ConfigurationError(f"bad admin set: {exc}") from None


def _callback(config: Mapping[str, object]) -> CallbackSettings | None:
    raw = config.get("callback")
    return None if raw is None else CallbackSettings.from_json(raw)


def init_node(
    data_dir: Path,
    party: int,
    workspace: str,
    admins: Mapping[str, object],
    passphrase: SecretBytes | None,
    *,
    cost: Argon2Cost | None = None,
    rng: RandomSource = system_random,
    attested: AttestedUnlock | None = None,
    backend: BackendUnlock | None = None,
    callback: CallbackSettings | None = None,
) -> PublicIdentity:
    """Create a co-signer data directory: keyring, sealed identity, signed configuration.

    With ``attested``, there is no keyring: the identity is sealed under a data key the
    release service generates for this process's attestation, and ``passphrase`` is
    not used; with ``backend``, under a key in the node's KMS or HSM
    (:mod:`.backend_unlock`), no passphrase either. With ``callback``, every signature
    waits for the customer's approval (:mod:`.callback`).

    Returns the public identity to pin in the peers' and the relay's directories.

    Raises:
        ConfigurationError: the directory already holds a co-signer, the admin set is
            malformed, or no passphrase in ``passphrase`` mode.
        AttestationError (custody): the release service refused this process.
    """
    data_dir = Path(data_dir)
    if (data_dir / CONFIG_FILE).exists():
        raise ConfigurationError(f"{data_dir} already holds a co-signer")
    try:
        parse_admin_set(admins)
        ShareAddress(workspace, "check", "check", str(party))
    except (PolicyError, ValueError) as exc:
        raise ConfigurationError(f"bad workspace or admin set: {exc}") from None
    cost = cost or Argon2Cost()
    custody: NodeCustody
    unlock: dict[str, object]
    if attested is None and backend is None and passphrase is None:
        raise ConfigurationError("passphrase unlock mode needs a passphrase")
    make_private_dir(data_dir)
    make_private_dir(data_dir / "shares")
    if attested is not None:
        custody = attested.custody(data_dir)
        unlock = {"unlock": attested.to_json()}
    elif backend is not None:
        custody = backend.custody(data_dir)
        unlock = {"unlock": backend.to_json()}
    else:
        assert passphrase is not None
        make_private_dir(data_dir / "keyring")
        keyring = LocalBackend.initialize(data_dir / "keyring", passphrase, cost)
        custody = ShareCustody(keyring, LocalShareStore(data_dir / "shares"))
        unlock = {
            "keyring": {
                "key_id": keyring.kek_id,
                "argon2": {
                    "time_cost": cost.time_cost,
                    "memory_cost": cost.memory_cost,
                    "parallelism": cost.parallelism,
                },
            }
        }
    identity = PartyIdentity.generate(party, rng)
    try:
        with SecretBytes(identity.seeds()) as seeds:
            custody.store_share(ShareSlot(identity_address(party), 1), seeds, 0)
    finally:
        _close_custody(custody)
    config: dict[str, object] = {
        "format": CONFIG_FORMAT,
        "party": party,
        "workspace": workspace,
        "admins": dict(admins),
        **unlock,
        "directory": {str(party): identity.public.to_json()},
    }
    if callback is not None:
        config["callback"] = callback.to_json()
    write_private_json(data_dir / CONFIG_FILE, sign_config(config, identity))
    return identity.public


def unseal_identity(
    data_dir: Path, passphrase: SecretBytes | None, *, release_url: str | None = None
) -> PartyIdentity:
    """Unseal this node's identity keys, which sign its configuration, and lock the
    keyring again (or close the release client).

    The unlock settings are read from the configuration before it can be verified (the
    identity that verifies it is what they unlock); a changed setting can only make the
    unsealing fail, or unseal another identity, under which the configuration does not
    verify. The caller holds the returned identity's secrets: drop it when done.

    Raises:
        ConfigurationError: no co-signer here, or malformed unlock settings.
        WrongPassphraseError, AttestationError (custody): the keys do not unlock.
    """
    data_dir = Path(data_dir)
    config = _config(data_dir / CONFIG_FILE)
    party = _party(config)
    custody = _open_custody(data_dir, config, passphrase, release_url)
    try:
        with custody.load_share(identity_address(party)) as opened:
            return PartyIdentity.from_seeds(party, opened.share.reveal())
    finally:
        _close_custody(custody)


def _rewrite_config(
    data_dir: Path, identity: PartyIdentity, change: Callable[[dict[str, object]], None]
) -> None:
    """Verify the configuration, apply ``change`` to it and write it signed again; a
    configuration that does not verify is never re-signed."""
    data_dir = Path(data_dir)
    config = _signed_config(data_dir, identity)
    change(config)
    write_private_json(data_dir / CONFIG_FILE, sign_config(config, identity))


def pin_peers(data_dir: Path, peers: Mapping[int, PublicIdentity], identity: PartyIdentity) -> None:
    """Pin peer identities in the configuration and sign it again with ``identity``
    (the node's own, from :func:`unseal_identity`); a different key for a pinned party
    is refused (key substitution).

    Raises:
        ConfigurationError: no co-signer here, a configuration that does not verify
            under ``identity`` (or an unsigned one), or a substitution.
    """

    def pin(config: dict[str, object]) -> None:
        directory = _directory(config)
        try:
            for party, peer in peers.items():
                directory = directory.with_party(party, peer)
        except CryptoError as exc:
            raise ConfigurationError(f"cannot pin peer: {exc}") from None
        config["directory"] = {str(p): i.to_json() for p, i in sorted(directory.entries.items())}

    _rewrite_config(data_dir, identity, pin)


def configure_callback(
    data_dir: Path, identity: PartyIdentity, callback: CallbackSettings | None
) -> None:
    """Set (or, with ``None``, remove) the customer callback and sign the configuration
    again with ``identity``.

    Raises:
        ConfigurationError: no co-signer here, or a configuration that does not verify
            under ``identity`` (or an unsigned one).
    """

    def configure(config: dict[str, object]) -> None:
        if callback is None:
            config.pop("callback", None)
        else:
            config["callback"] = callback.to_json()

    _rewrite_config(data_dir, identity, configure)


@dataclass(frozen=True)
class ConfigSummary:
    """What an operator checks before signing a configuration (``seal-config``): the
    admin set and the fingerprints of the pinned identities."""

    party: int
    workspace: str
    admins: AdminSet
    fingerprints: dict[int, str]
    unlock: str
    callback_url: str | None

    def to_json(self) -> dict[str, object]:
        """The summary as printed by the command line."""
        return {
            "party": self.party,
            "workspace": self.workspace,
            "admins": self.admins.to_document(),
            "directory": {str(p): f for p, f in sorted(self.fingerprints.items())},
            "unlock": self.unlock,
            "callback": self.callback_url,
        }


def _summary(config: Mapping[str, object], identity: PartyIdentity) -> ConfigSummary:
    """Parse every section of a configuration, as :func:`open_node` would.

    Raises:
        ConfigurationError: a section that does not parse, or a directory that does not
            hold this node's own identity.
    """
    workspace = config.get("workspace")
    if not isinstance(workspace, str):
        raise ConfigurationError("configuration field 'workspace' is required")
    directory = _directory(config)
    if directory.entries.get(identity.party) != identity.public:
        raise ConfigurationError("the pinned directory does not hold this node's own identity")
    unlock = config.get("unlock")
    if isinstance(unlock, dict):
        AttestedUnlock.from_json(unlock)
    elif not isinstance(config.get("keyring"), dict):
        raise ConfigurationError("configuration field 'keyring' is required")
    callback = _callback(config)
    return ConfigSummary(
        party=identity.party,
        workspace=workspace,
        admins=_admins(config),
        fingerprints={int(p): i.fingerprint() for p, i in directory.entries.items()},
        unlock="attested" if isinstance(unlock, dict) else "passphrase",
        callback_url=None if callback is None else callback.url,
    )


def seal_config(
    data_dir: Path,
    identity: PartyIdentity,
    confirm: Callable[[ConfigSummary], bool] | None = None,
) -> ConfigSummary:
    """Sign an unsigned configuration written by an earlier release, once
    ``confirm(summary)`` (the operator, comparing the admin set and the fingerprints
    with what they expect) says yes; then make every file of the data directory 0600
    and every directory 0700.

    The file could have been changed before this release protected it, which is why a
    person must check what is signed: the signature only protects it from now on.

    Raises:
        ConfigurationError: not an unsigned configuration of an earlier release (a
            signed one is never re-signed here), a section that does not parse, another
            party's configuration, or ``confirm`` said no.
    """
    data_dir = Path(data_dir)
    path = data_dir / CONFIG_FILE
    config = _config(path)
    if config.get("format") != LEGACY_CONFIG_FORMAT:
        raise ConfigurationError(
            f"{path} is already in the signed format; seal-config signs only an unsigned "
            "configuration of an earlier release"
        )
    if _party(config) != identity.party:
        raise ConfigurationError(f"{path} belongs to another party than this identity")
    summary = _summary(config, identity)
    if confirm is not None and not confirm(summary):
        raise ConfigurationError("not confirmed: the configuration was not signed")
    write_private_json(path, sign_config(config, identity))
    _make_private(data_dir)
    return summary


def _make_private(data_dir: Path) -> None:
    """Remove group and other access from every directory and file under ``data_dir``
    (symbolic links are left alone)."""
    for root, directories, files in os.walk(data_dir):
        os.chmod(root, PRIVATE_DIR_MODE)
        for name in files:
            path = Path(root) / name
            if stat.S_ISREG(os.lstat(path).st_mode):
                os.chmod(path, PRIVATE_FILE_MODE)
        directories[:] = [d for d in directories if not (Path(root) / d).is_symlink()]


def read_public_identity(data_dir: Path) -> tuple[int, PublicIdentity]:
    """The party id and public identity of the co-signer in ``data_dir``.

    Read *unverified* (no secret is unsealed here, so the signature cannot be checked):
    fit for publishing the identity, whose fingerprint the operator compares on the
    co-signer's host; anything a decision rests on comes from :func:`open_node`.

    Raises:
        ConfigurationError: no co-signer here.
    """
    config = _config(Path(data_dir) / CONFIG_FILE)
    party = _party(config)
    return party, _directory(config).get(party)


@dataclass
class NodeState:
    """An opened co-signer: its custody, identity, pinned directory and policy chain.

    Security: ``identity`` holds the node's private identity keys; ``custody`` holds the
    unsealed key-encryption key (``passphrase`` mode) or the enclave's recipient key
    (``attested`` mode). :meth:`close` locks the keyring or closes the release client.
    """

    data_dir: Path
    party: int
    workspace: str
    custody: NodeCustody
    identity: PartyIdentity
    directory: Directory
    chain: BundleChain
    history: list[PastTransaction]
    """Velocity history of earlier releases (``history.jsonl``); the record holds the rest."""
    record: SignedRecord
    peers: PeerRecords
    public_keys: PublicKeys
    callback: CallbackClient | None = None

    def __repr__(self) -> str:
        return f"NodeState(party={self.party}, workspace={self.workspace!r}, <redacted>)"

    def share_address(self, vault: str, key_id: str) -> ShareAddress:
        """Where this party's share of ``key_id`` in ``vault`` lives.

        Raises:
            ValueError: an identifier with characters the store does not allow.
        """
        return ShareAddress(self.workspace, vault, key_id, str(self.party))

    def accept_bundle(self, bundle: PolicyBundle) -> None:
        """Verify ``bundle`` against the chain (pinned admins) and persist the chain.

        Raises: the policy package's bundle errors; nothing changes on a refusal.
        """
        self.chain.accept(bundle)
        write_private_json(
            self.data_dir / "policy" / "bundles.json",
            [b.to_json() for b in self.chain.bundles],
        )

    def close(self) -> None:
        """Lock the keyring (wipes the master key and passphrase held in memory), or
        close the release-service client; close the callback client."""
        if self.callback is not None:
            self.callback.close()
        _close_custody(self.custody)


def unlock_mode(data_dir: Path) -> str:
    """The unlock mode (``passphrase`` or ``attested``) of the co-signer in ``data_dir``,
    read unverified (it decides how to unseal the identity that verifies the file).

    Raises:
        ConfigurationError: no co-signer here.
    """
    config = _config(Path(data_dir) / CONFIG_FILE)
    unlock = config.get("unlock")
    return str(unlock.get("mode")) if isinstance(unlock, dict) else "passphrase"


def _open_custody(
    data_dir: Path,
    config: Mapping[str, object],
    passphrase: SecretBytes | None,
    release_url: str | None,
) -> NodeCustody:
    unlock = config.get("unlock")
    if isinstance(unlock, dict):
        if unlock.get("mode") == "backend":
            return BackendUnlock.from_json(unlock).custody(data_dir)
        if unlock.get("mode") != "attested":
            raise ConfigurationError(f"unknown unlock mode {unlock.get('mode')!r}")
        return AttestedUnlock.from_json(unlock).custody(data_dir, release_url)
    keyring = config.get("keyring")
    if not isinstance(keyring, dict) or not isinstance(keyring.get("key_id"), str):
        raise ConfigurationError("configuration field 'keyring.key_id' is required")
    raw_cost = keyring.get("argon2", {})
    try:
        cost = Argon2Cost(
            int(raw_cost["time_cost"]), int(raw_cost["memory_cost"]), int(raw_cost["parallelism"])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"bad keyring cost: {exc}") from None
    if passphrase is None:
        raise ConfigurationError("this co-signer unlocks with a passphrase; none was given")
    backend = LocalBackend(data_dir / "keyring", passphrase, keyring["key_id"], cost)
    return ShareCustody(backend, LocalShareStore(data_dir / "shares"))


def _check_private_files(data_dir: Path) -> None:
    """Refuse a configuration or keyring file that group or others can access.

    Raises:
        ConfigurationError: naming the file and its mode.
    """
    check_private_file(data_dir / CONFIG_FILE)
    keyring = data_dir / "keyring"
    if keyring.is_dir():
        for path in sorted(keyring.iterdir()):
            if path.is_file():
                check_private_file(path)


def open_node(
    data_dir: Path, passphrase: SecretBytes | None, *, release_url: str | None = None
) -> NodeState:
    """Open a co-signer data directory: check the files' modes, unseal the identity,
    verify the configuration's signature under it, re-verify the policy chain.

    In ``attested`` mode the identity is opened through the release service (a fresh
    attestation), ``passphrase`` is not used, and ``release_url`` may override the
    configured service address.

    Raises:
        ConfigurationError: a missing or malformed file; an unsigned configuration of
            an earlier release (the message names ``seal-config``); a configuration
            whose signature does not verify; ``cosigner.json`` or a keyring file that
            group or others can access; a stored bundle that no longer verifies
            against the pinned admin set; or a record of signed transactions that
            does not verify (an edited entry, a broken hash chain, a mode other than
            0600: :meth:`.SignedRecord.open`).
        WrongPassphraseError (custody): the passphrase does not unseal the keyring.
        AttestationError (custody): the release service refused this process's
            attestation (``reason`` names the check, e.g. ``pcr-mismatch``).
    """
    data_dir = Path(data_dir)
    unverified = _config(data_dir / CONFIG_FILE)
    if unverified.get("format") == LEGACY_CONFIG_FORMAT:
        raise _legacy_refusal(data_dir)
    _check_private_files(data_dir)
    party = _party(unverified)
    custody = _open_custody(data_dir, unverified, passphrase, release_url)
    try:
        with custody.load_share(identity_address(party)) as opened:
            identity = PartyIdentity.from_seeds(party, opened.share.reveal())
        # From here on, only the verified configuration counts.
        config = _signed_config(data_dir, identity)
        workspace = config.get("workspace")
        if not isinstance(workspace, str):
            raise ConfigurationError("configuration field 'workspace' is required")
        admins = _admins(config)
        directory = _directory(config)
        if directory.entries.get(identity.party) != identity.public:
            raise ConfigurationError("the pinned directory does not hold this node's own identity")
        settings = _callback(config)
        chain = BundleChain(workspace, admins)
        bundles_path = data_dir / "policy" / "bundles.json"
        if bundles_path.exists():
            stored = read_json(bundles_path)
            try:
                if not isinstance(stored, list):
                    raise ConfigurationError("policy/bundles.json must be a list")
                chain.accept_all([parse_bundle(b) for b in stored], stored=True)
            except PolicyError as exc:
                raise ConfigurationError(f"stored policy bundle refused: {exc}") from None
        history: list[PastTransaction] = []
        history_path = data_dir / "history.jsonl"
        if history_path.exists():
            try:
                lines = [json.loads(x) for x in history_path.read_text("utf-8").splitlines() if x]
                history = list(parse_history(lines))
            except ValueError:
                raise ConfigurationError(f"{history_path} cannot be read as JSON lines") from None
            except PolicyError as exc:
                raise ConfigurationError(f"history refused: {exc}") from None
        record = SignedRecord.open(data_dir, identity.public, party)
        peers = PeerRecords.open(data_dir)
        public_keys = PublicKeys.open(data_dir, identity.public)
    except BaseException:
        _close_custody(custody)
        raise
    callback = None if settings is None else CallbackClient(settings, identity, workspace)
    return NodeState(
        data_dir,
        party,
        workspace,
        custody,
        identity,
        directory,
        chain,
        history,
        record,
        peers,
        public_keys,
        callback,
    )
