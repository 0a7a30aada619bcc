"""A co-signer's data directory: configuration, sealed identity, shares, policy, history.

Layout of ``DATA_DIR``::

    cosigner.json        configuration: party id, workspace, pinned admin set, keyring
                         key id and cost, pinned directory of peer identities
    keyring/             the ``local`` custody backend's passphrase-sealed master key
    shares/              the custody share store (envelope-encrypted blobs only)
    policy/bundles.json  every policy bundle accepted, oldest first (re-verified at start)
    history.jsonl        the policy view of every request this co-signer signed

The identity (Ed25519 and X25519 secrets) and every key share are stored as custody
share blobs (AES-256-GCM under a data key wrapped by the backend, DESIGN.md invariant 2);
they are decrypted in memory only, when the node opens and for one operation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shardvault.cosigner.errors import ConfigurationError
from shardvault.crypto.channel import Directory, PartyIdentity, PublicIdentity
from shardvault.crypto.errors import CryptoError
from shardvault.crypto.rng import RandomSource, system_random
from shardvault.custody.backends.local import Argon2Cost, LocalBackend
from shardvault.custody.envelope import ShareAddress, ShareSlot
from shardvault.custody.errors import CustodyError
from shardvault.custody.secret import SecretBytes
from shardvault.custody.shares import ShareCustody
from shardvault.custody.sharestore.local import LocalShareStore
from shardvault.policy import (
    AdminSet,
    BundleChain,
    PastTransaction,
    PolicyBundle,
    PolicyError,
    TransactionRequest,
    parse_admin_set,
    parse_bundle,
    parse_history,
    request_to_json,
)

CONFIG_FORMAT = "shardvault.cosigner/v1"
"""The ``format`` value of ``cosigner.json``."""

IDENTITY_WORKSPACE = "_node"
"""The share-store workspace under which the node keeps its own identity."""


def identity_address(party: int) -> ShareAddress:
    """Where the node's sealed identity lives in its share store."""
    return ShareAddress(IDENTITY_WORKSPACE, "identity", "channel", str(party))


def _write_json(path: Path, document: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"{path} does not exist") from None
    except (OSError, ValueError):
        raise ConfigurationError(f"{path} cannot be read as JSON") from None


def init_node(
    data_dir: Path,
    party: int,
    workspace: str,
    admins: Mapping[str, object],
    passphrase: SecretBytes,
    *,
    cost: Argon2Cost | None = None,
    rng: RandomSource = system_random,
) -> PublicIdentity:
    """Create a co-signer data directory: keyring, sealed identity, configuration.

    Returns the public identity to pin in the peers' and the relay's directories.

    Raises:
        ConfigurationError: the directory already holds a co-signer, or the admin set is
            malformed.
    """
    data_dir = Path(data_dir)
    if (data_dir / "cosigner.json").exists():
        raise ConfigurationError(f"{data_dir} already holds a co-signer")
    try:
        parse_admin_set(admins)
        ShareAddress(workspace, "check", "check", str(party))
    except (PolicyError, ValueError) as exc:
        raise ConfigurationError(f"bad workspace or admin set: {exc}") from None
    cost = cost or Argon2Cost()
    backend = LocalBackend.initialize(data_dir / "keyring", passphrase, cost)
    custody = ShareCustody(backend, LocalShareStore(data_dir / "shares"))
    identity = PartyIdentity.generate(party, rng)
    with SecretBytes(identity.seeds()) as seeds:
        custody.store_share(ShareSlot(identity_address(party), 1), seeds, 0)
    backend.lock()
    _write_json(
        data_dir / "cosigner.json",
        {
            "format": CONFIG_FORMAT,
            "party": party,
            "workspace": workspace,
            "admins": dict(admins),
            "keyring": {
                "key_id": backend.kek_id,
                "argon2": {
                    "time_cost": cost.time_cost,
                    "memory_cost": cost.memory_cost,
                    "parallelism": cost.parallelism,
                },
            },
            "directory": {str(party): identity.public.to_json()},
        },
    )
    return identity.public


def pin_peers(data_dir: Path, peers: Mapping[int, PublicIdentity]) -> None:
    """Pin peer identities in the configuration; a different key for a pinned party is
    refused (key substitution).

    Raises:
        ConfigurationError: no co-signer here, or a substitution.
    """
    path = Path(data_dir) / "cosigner.json"
    config = _config(path)
    directory = _directory(config)
    try:
        for party, identity in peers.items():
            directory = directory.with_party(party, identity)
    except CryptoError as exc:
        raise ConfigurationError(f"cannot pin peer: {exc}") from None
    config["directory"] = {str(p): i.to_json() for p, i in sorted(directory.entries.items())}
    _write_json(path, config)


def _config(path: Path) -> dict[str, object]:
    config = _read_json(path)
    if not isinstance(config, dict) or config.get("format") != CONFIG_FORMAT:
        raise ConfigurationError(f"{path} is not a co-signer configuration")
    return config


def _directory(config: Mapping[str, object]) -> Directory:
    raw = config.get("directory")
    if not isinstance(raw, dict):
        raise ConfigurationError("configuration field 'directory' must be an object")
    try:
        return Directory.of({int(p): PublicIdentity.from_json(entry) for p, entry in raw.items()})
    except (CryptoError, ValueError, TypeError, AttributeError) as exc:
        raise ConfigurationError(f"directory entry refused: {exc}") from None


def read_public_identity(data_dir: Path) -> tuple[int, PublicIdentity]:
    """The party id and public identity of the co-signer in ``data_dir``.

    Raises:
        ConfigurationError: no co-signer here.
    """
    config = _config(Path(data_dir) / "cosigner.json")
    party = config.get("party")
    if not isinstance(party, int):
        raise ConfigurationError("configuration field 'party' must be an integer")
    return party, _directory(config).get(party)


@dataclass
class NodeState:
    """An opened co-signer: its custody, identity, pinned directory and policy chain.

    Security: ``identity`` holds the node's private identity keys; ``custody`` holds the
    unsealed key-encryption key. :meth:`close` locks the keyring.
    """

    data_dir: Path
    party: int
    workspace: str
    custody: ShareCustody
    identity: PartyIdentity
    directory: Directory
    chain: BundleChain
    history: list[PastTransaction]

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
        _write_json(
            self.data_dir / "policy" / "bundles.json",
            [b.to_json() for b in self.chain.bundles],
        )

    def record_signed(self, request: TransactionRequest) -> None:
        """Append a signed request to the history the policy's velocity limits read."""
        from shardvault.policy import Decision

        self.history.append(PastTransaction(request, Decision.ALLOW))
        line = json.dumps({**request_to_json(request), "decision": "allow"}, sort_keys=True)
        with open(self.data_dir / "history.jsonl", "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def close(self) -> None:
        """Lock the keyring (wipes the master key and passphrase held in memory)."""
        backend = self.custody.backend
        if isinstance(backend, LocalBackend):
            backend.lock()


def open_node(data_dir: Path, passphrase: SecretBytes) -> NodeState:
    """Open a co-signer data directory: unseal the identity, re-verify the policy chain.

    Raises:
        ConfigurationError: a missing or malformed file, or a stored bundle that no
            longer verifies against the pinned admin set.
        WrongPassphraseError (custody): the passphrase does not unseal the keyring.
    """
    data_dir = Path(data_dir)
    config = _config(data_dir / "cosigner.json")
    party, workspace = config.get("party"), config.get("workspace")
    keyring = config.get("keyring")
    if not isinstance(party, int) or not isinstance(workspace, str):
        raise ConfigurationError("configuration fields 'party' and 'workspace' are required")
    if not isinstance(keyring, dict) or not isinstance(keyring.get("key_id"), str):
        raise ConfigurationError("configuration field 'keyring.key_id' is required")
    raw_cost = keyring.get("argon2", {})
    try:
        cost = Argon2Cost(
            int(raw_cost["time_cost"]), int(raw_cost["memory_cost"]), int(raw_cost["parallelism"])
        )
        admins: AdminSet = parse_admin_set(config.get("admins"))
    except (KeyError, TypeError, ValueError, PolicyError) as exc:
        raise ConfigurationError(f"bad keyring cost or admin set: {exc}") from None
    directory = _directory(config)
    backend = LocalBackend(data_dir / "keyring", passphrase, keyring["key_id"], cost)
    custody = ShareCustody(backend, LocalShareStore(data_dir / "shares"))
    try:
        with custody.load_share(identity_address(party)) as opened:
            identity = PartyIdentity.from_seeds(party, opened.share.reveal())
    except CustodyError:
        backend.lock()
        raise
    if directory.entries.get(identity.party) != identity.public:
        backend.lock()
        raise ConfigurationError("the pinned directory does not hold this node's own identity")
    chain = BundleChain(workspace, admins)
    bundles_path = data_dir / "policy" / "bundles.json"
    if bundles_path.exists():
        stored = _read_json(bundles_path)
        try:
            if not isinstance(stored, list):
                raise ConfigurationError("policy/bundles.json must be a list")
            chain.accept_all([parse_bundle(b) for b in stored])
        except PolicyError as exc:
            backend.lock()
            raise ConfigurationError(f"stored policy bundle refused: {exc}") from None
    history: list[PastTransaction] = []
    history_path = data_dir / "history.jsonl"
    if history_path.exists():
        lines = [json.loads(x) for x in history_path.read_text("utf-8").splitlines() if x]
        try:
            history = list(parse_history(lines))
        except PolicyError as exc:
            backend.lock()
            raise ConfigurationError(f"history refused: {exc}") from None
    return NodeState(data_dir, party, workspace, custody, identity, directory, chain, history)
