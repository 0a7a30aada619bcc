"""Signed policy bundles and the chain of them that co-signers hold.

A bundle is one version of a workspace's policy data: the policy document, the address
book and whitelists, and the admin set that will govern the next version, chained to its
predecessor by hash and signed by a quorum of the administrators' configuration keys
(Ed25519 or ECDSA P-256, see :mod:`.keys`). DESIGN.md "Security invariants" 4: policy
and configuration change only with the admin quorum's signatures; co-signers pin the
admin set and refuse anything else.

Encoding. The payload is the canonical JSON (keys sorted, no whitespace, ASCII only, no
floating-point numbers anywhere) of::

    {"format": "shardvault.policy-bundle/v1", "workspace": ..., "version": n,
     "predecessor": hex of the previous bundle's hash (32 zero bytes for the first),
     "policy": canonical policy document, "address_book": canonical address book,
     "admins": {"quorum": k, "members": [{"id", "algorithm", "public_key"}...]},
     "cosigners": {"members": [{"party", "signing_key", "encryption_key", "binding"}]},
     "initiators": {"members": [{"initiator": {"type", "id"}, "keys": [...]}]},
     "assets": canonical asset registry}

``cosigners`` (the co-signer directory, :mod:`.directory`), ``initiators`` (which API
key speaks for which initiator, :mod:`.initiators`) and ``assets`` (the asset registry,
:mod:`.registry`: networks, assets, decimals, static prices and price keys) are present
only in bundles that carry them, so a bundle without them keeps the payload, and the
hash, it always had.

Each admin signs ``BUNDLE_DOMAIN || payload``; the bundle's hash, which the next bundle
names as its predecessor, is SHA-256 of the same bytes. Signatures are not part of the
hash, so adding a signature never changes a bundle's identity.

Verification (:class:`BundleChain`): the bundle is for the pinned workspace; it extends
the head (its version is the head's plus one and its predecessor is the head's hash; an
older version is a replay); every signer is in the current admin set, signs once, and
verifies; at least ``quorum`` admins signed; no rule decides on an unsigned input
(:func:`~.signed_inputs.refuse_unsigned_inputs`: a rule that depends on the initiator
needs the ``initiators`` section, a value limit a signed price for every asset it can
see in the ``assets`` registry). Only then does the chain advance and the bundle's
admin set become the one that must sign the next bundle.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from shardvault.policy.directory import CosignerDirectory, parse_cosigner_directory
from shardvault.policy.errors import (
    BadBundleSignatureError,
    BrokenChainError,
    ConfigurationKeyError,
    DuplicateSignerError,
    MalformedBundleError,
    PolicyDocumentError,
    QuorumNotMetError,
    ReplayedBundleError,
    UnknownSignerError,
    WrongWorkspaceError,
)
from shardvault.policy.fee_caps import refuse_unmatched_fee_caps
from shardvault.policy.initiators import InitiatorKeys, parse_initiator_keys
from shardvault.policy.keys import PublicKey, SignatureCheckFailed
from shardvault.policy.load import (
    address_book_to_document,
    parse_address_book,
    parse_policy,
    policy_to_document,
)
from shardvault.policy.model import AddressBook, Policy
from shardvault.policy.registry import AssetRegistry, parse_registry
from shardvault.policy.signed_inputs import refuse_unsigned_inputs

BUNDLE_FORMAT = "shardvault.policy-bundle/v1"
"""The ``format`` value of bundle payloads."""

BUNDLE_DOMAIN = b"shardvault/policy/bundle/v1\x00"
"""Prefix of the signed bytes and of the hashed bytes of every bundle."""

GENESIS_PREDECESSOR = bytes(32)
"""The predecessor hash of a workspace's first bundle."""


def canonical_json(document: object) -> bytes:
    """Canonical JSON bytes: sorted keys, no whitespace, ASCII escapes."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


@dataclass(frozen=True, slots=True)
class Admin:
    """An administrator and their configuration key."""

    id: str
    key: PublicKey


@dataclass(frozen=True, slots=True)
class AdminSet:
    """The administrators whose quorum signs the next bundle."""

    admins: tuple[Admin, ...]
    quorum: int

    def __post_init__(self) -> None:
        ids = [a.id for a in self.admins]
        if len(set(ids)) != len(ids):
            raise MalformedBundleError("an admin id is listed twice", path="admins.members")
        keys = [a.key for a in self.admins]
        if len(set(keys)) != len(keys):
            raise MalformedBundleError("an admin key is listed twice", path="admins.members")
        if not 1 <= self.quorum <= len(self.admins):
            raise MalformedBundleError(
                f"quorum {self.quorum} is not between 1 and {len(self.admins)}",
                path="admins.quorum",
            )

    def get(self, admin_id: str) -> Admin | None:
        """The admin with ``admin_id``, if it is in the set."""
        for admin in self.admins:
            if admin.id == admin_id:
                return admin
        return None

    def to_document(self) -> dict[str, object]:
        """The canonical document of the set."""
        return {
            "quorum": self.quorum,
            "members": [
                {"id": a.id, "algorithm": a.key.algorithm.value, "public_key": a.key.hex()}
                for a in sorted(self.admins, key=lambda a: a.id)
            ],
        }


def parse_admin_set(data: object, path: str = "admins") -> AdminSet:
    """Read ``{"quorum": k, "members": [{"id", "algorithm", "public_key"}...]}``.

    Raises:
        MalformedBundleError: a missing or unknown field, a bad key, a bad quorum.
    """
    obj = _fields(data, path, {"quorum", "members"})
    members = obj["members"]
    if not isinstance(members, list) or not members:
        raise MalformedBundleError("expected a non-empty list", path=f"{path}.members")
    admins = []
    for i, item in enumerate(members):
        item_path = f"{path}.members[{i}]"
        fields = _fields(item, item_path, {"id", "algorithm", "public_key"})
        admin_id, algorithm, public = (
            fields["id"],
            fields["algorithm"],
            fields["public_key"],
        )
        if not (
            isinstance(admin_id, str)
            and isinstance(algorithm, str)
            and isinstance(public, str)
            and admin_id
        ):
            raise MalformedBundleError("id, algorithm and public_key are strings", path=item_path)
        try:
            key = PublicKey.parse(algorithm, public, path=item_path)
        except ConfigurationKeyError as exc:
            raise MalformedBundleError(exc.reason, path=exc.path) from None
        admins.append(Admin(admin_id, key))
    quorum = obj["quorum"]
    if isinstance(quorum, bool) or not isinstance(quorum, int):
        raise MalformedBundleError("expected an integer", path=f"{path}.quorum")
    return AdminSet(tuple(admins), quorum)


@dataclass(frozen=True, slots=True)
class BundleSignature:
    """One admin's signature over a bundle's signed bytes."""

    signer: str
    signature: bytes


@dataclass(frozen=True, slots=True)
class PolicyBundle:
    """One signed version of a workspace's policy data.

    ``admins`` is the admin set that governs the *next* bundle; this bundle itself is
    verified against the set in force before it. ``cosigners``, when present, is the
    co-signer directory the admins approved: the only parties a co-signer holding this
    bundle accepts in a session. ``initiators``, when present, says which API key speaks
    for which initiator: the only source of a request's initiator at a co-signer.
    ``assets``, when present, is the asset registry: what a payload's network, asset and
    decimals mean, and where prices come from.
    """

    workspace: str
    predecessor: bytes
    policy: Policy
    address_book: AddressBook
    admins: AdminSet
    signatures: tuple[BundleSignature, ...] = ()
    cosigners: CosignerDirectory | None = None
    initiators: InitiatorKeys | None = None
    assets: AssetRegistry | None = None

    @property
    def version(self) -> int:
        """The bundle's version: its policy's version."""
        return self.policy.version

    def payload(self) -> bytes:
        """The canonical payload bytes."""
        document: dict[str, object] = {
            "format": BUNDLE_FORMAT,
            "workspace": self.workspace,
            "version": self.version,
            "predecessor": self.predecessor.hex(),
            "policy": policy_to_document(self.policy),
            "address_book": address_book_to_document(self.address_book),
            "admins": self.admins.to_document(),
        }
        if self.cosigners is not None:
            document["cosigners"] = self.cosigners.to_document()
        if self.initiators is not None:
            document["initiators"] = self.initiators.to_document()
        if self.assets is not None:
            document["assets"] = self.assets.to_document()
        return canonical_json(document)

    def signing_message(self) -> bytes:
        """The bytes each admin signs."""
        return BUNDLE_DOMAIN + self.payload()

    def hash(self) -> bytes:
        """SHA-256 of the signed bytes: the bundle's identity in the chain."""
        return hashlib.sha256(self.signing_message()).digest()

    def with_signature(self, signer: str, signature: bytes) -> PolicyBundle:
        """A copy with one more signature appended."""
        return replace(self, signatures=(*self.signatures, BundleSignature(signer, signature)))

    def to_json(self) -> dict[str, object]:
        """The transport form: the payload as a document, and the signatures in hex."""
        payload = json.loads(self.payload())
        assert isinstance(payload, dict)
        return {
            "payload": payload,
            "signatures": [
                {"signer": s.signer, "signature": s.signature.hex()} for s in self.signatures
            ],
        }


def new_bundle(
    workspace: str,
    policy: Policy,
    address_book: AddressBook,
    admins: AdminSet,
    predecessor: PolicyBundle | None = None,
    cosigners: CosignerDirectory | None = None,
    initiators: InitiatorKeys | None = None,
    assets: AssetRegistry | None = None,
) -> PolicyBundle:
    """An unsigned bundle that follows ``predecessor`` (or starts the chain), carrying
    the co-signer directory ``cosigners``, the initiator keys ``initiators`` and the
    asset registry ``assets`` if given. (Whether its rules decide on unsigned inputs is
    checked when a holder accepts it, :meth:`BundleChain.accept`.)"""
    return PolicyBundle(
        workspace=workspace,
        predecessor=GENESIS_PREDECESSOR if predecessor is None else predecessor.hash(),
        policy=policy,
        address_book=address_book,
        admins=admins,
        cosigners=cosigners,
        initiators=initiators,
        assets=assets,
    )


def parse_bundle(data: object, path: str = "bundle") -> PolicyBundle:
    """Read a bundle's transport form.

    The payload is parsed into the model and re-encoded canonically; the signatures are
    checked later against those canonical bytes, so a payload given in another but
    equivalent form verifies, and one that differs in meaning does not.

    Raises:
        MalformedBundleError: the payload, a document inside it, or a signature entry is
            malformed.
    """
    obj = _fields(data, path, {"payload", "signatures"})
    payload = _fields(
        obj["payload"],
        f"{path}.payload",
        {"format", "workspace", "version", "predecessor", "policy", "address_book", "admins"},
        optional={"cosigners", "initiators", "assets"},
    )
    if payload["format"] != BUNDLE_FORMAT:
        raise MalformedBundleError(
            f"expected format {BUNDLE_FORMAT!r}", path=f"{path}.payload.format"
        )
    workspace = payload["workspace"]
    if not isinstance(workspace, str) or not workspace:
        raise MalformedBundleError("expected a workspace id", path=f"{path}.payload.workspace")
    predecessor = _hex(payload["predecessor"], f"{path}.payload.predecessor")
    if len(predecessor) != 32:
        raise MalformedBundleError("expected 32 bytes", path=f"{path}.payload.predecessor")
    try:
        policy = parse_policy(payload["policy"], path=f"{path}.payload.policy")
        book = parse_address_book(payload["address_book"], path=f"{path}.payload.address_book")
        assets = (
            parse_registry(payload["assets"], f"{path}.payload.assets")
            if "assets" in payload
            else None
        )
    except PolicyDocumentError as exc:
        raise MalformedBundleError(exc.reason, path=exc.path) from None
    if payload["version"] != policy.version:
        raise MalformedBundleError(
            "the bundle version is not its policy's version", path=f"{path}.payload.version"
        )
    admins = parse_admin_set(payload["admins"], f"{path}.payload.admins")
    cosigners = (
        parse_cosigner_directory(payload["cosigners"], f"{path}.payload.cosigners")
        if "cosigners" in payload
        else None
    )
    initiators = (
        parse_initiator_keys(payload["initiators"], f"{path}.payload.initiators")
        if "initiators" in payload
        else None
    )
    signatures_value = obj["signatures"]
    if not isinstance(signatures_value, list):
        raise MalformedBundleError("expected a list", path=f"{path}.signatures")
    signatures = []
    for i, item in enumerate(signatures_value):
        sig = _fields(item, f"{path}.signatures[{i}]", {"signer", "signature"})
        signer = sig["signer"]
        if not isinstance(signer, str) or not signer:
            raise MalformedBundleError(
                "expected an admin id", path=f"{path}.signatures[{i}].signer"
            )
        signatures.append(
            BundleSignature(signer, _hex(sig["signature"], f"{path}.signatures[{i}].signature"))
        )
    return PolicyBundle(
        workspace,
        predecessor,
        policy,
        book,
        admins,
        tuple(signatures),
        cosigners,
        initiators,
        assets,
    )


def verify_bundle_signatures(bundle: PolicyBundle, admins: AdminSet) -> tuple[str, ...]:
    """Check that a quorum of ``admins`` signed ``bundle`` and nobody else did.

    Returns the ids of the admins who signed.

    Raises:
        UnknownSignerError: a signer outside ``admins``.
        DuplicateSignerError: an admin who signed twice.
        BadBundleSignatureError: a signature that does not verify.
        QuorumNotMetError: fewer than ``admins.quorum`` admins signed.
    """
    message = bundle.signing_message()
    signed: list[str] = []
    for i, entry in enumerate(bundle.signatures):
        where = f"signatures[{i}]"
        admin = admins.get(entry.signer)
        if admin is None:
            raise UnknownSignerError(f"{entry.signer!r} is not in the admin set", path=where)
        if entry.signer in signed:
            raise DuplicateSignerError(f"{entry.signer!r} signed twice", path=where)
        try:
            admin.key.verify(message, entry.signature)
        except (SignatureCheckFailed, ConfigurationKeyError):
            raise BadBundleSignatureError(
                f"the signature of {entry.signer!r} does not verify", path=where
            ) from None
        signed.append(entry.signer)
    if len(signed) < admins.quorum:
        raise QuorumNotMetError(f"{len(signed)} admin signatures, the quorum is {admins.quorum}")
    return tuple(signed)


class BundleChain:
    """The chain of verified bundles a co-signer (or the server) holds.

    It starts from a pinned workspace id and admin set and accepts a bundle only if it
    extends the head and is signed by a quorum of the admin set in force. A refused
    bundle changes nothing.
    """

    def __init__(self, workspace: str, pinned_admins: AdminSet) -> None:
        self._workspace = workspace
        self._admins = pinned_admins
        self._bundles: list[PolicyBundle] = []
        self._head_hash = GENESIS_PREDECESSOR

    @property
    def admins(self) -> AdminSet:
        """The admin set that must sign the next bundle."""
        return self._admins

    @property
    def head(self) -> PolicyBundle | None:
        """The newest accepted bundle."""
        return self._bundles[-1] if self._bundles else None

    @property
    def head_hash(self) -> bytes:
        """The hash the next bundle must name as its predecessor."""
        return self._head_hash

    @property
    def bundles(self) -> tuple[PolicyBundle, ...]:
        """Every accepted bundle, oldest first."""
        return tuple(self._bundles)

    def accept(self, bundle: PolicyBundle, *, stored: bool = False) -> None:
        """Verify ``bundle`` and make it the head.

        ``stored``: the bundle was accepted before and is read back from storage (a
        chain rebuilt at start). Its chaining and signatures are verified again, but not
        :func:`refuse_unsigned_inputs`, which a bundle accepted by an earlier release may
        fail: refusing it would stop the holder from starting, and so from taking the
        bundle that replaces it. What such a bundle decides on the initiator is refused
        when a request is evaluated instead (``shardvault.cosigner.initiator``), and a
        value limit it holds without a signed price finds none and fails closed.

        Raises:
            WrongWorkspaceError: a bundle for another workspace.
            ReplayedBundleError: a version not newer than the head (an old bundle).
            BrokenChainError: a predecessor that is not the head's hash, or a version
                that skips ahead.
            UnknownSignerError, DuplicateSignerError, BadBundleSignatureError,
            QuorumNotMetError: see :func:`verify_bundle_signatures`.
            UnsignedInputError: a rule that decides on an unsigned input (not for a
                ``stored`` bundle).
            PolicyDocumentError: a fee cap the bundle's registry makes unenforceable
                (:func:`~.fee_caps.refuse_unmatched_fee_caps`; not for a ``stored`` one).
        """
        if bundle.workspace != self._workspace:
            raise WrongWorkspaceError(
                f"bundle is for workspace {bundle.workspace!r}, not {self._workspace!r}"
            )
        head = self.head
        if head is not None and bundle.version <= head.version:
            raise ReplayedBundleError(
                f"bundle version {bundle.version} is not newer than the head {head.version}"
            )
        if bundle.predecessor != self._head_hash:
            raise BrokenChainError(
                f"predecessor {bundle.predecessor.hex()[:16]}... is not the head's hash "
                f"{self._head_hash.hex()[:16]}..."
            )
        if head is not None and bundle.version != head.version + 1:
            raise BrokenChainError(
                f"bundle version {bundle.version} does not follow the head {head.version}"
            )
        verify_bundle_signatures(bundle, self._admins)
        if not stored:
            refuse_unsigned_inputs(bundle.policy, bundle.initiators, bundle.assets)
            refuse_unmatched_fee_caps(bundle.policy.fee_caps, bundle.assets)
        self._bundles.append(bundle)
        self._head_hash = bundle.hash()
        self._admins = bundle.admins

    def accept_all(self, bundles: Sequence[PolicyBundle], *, stored: bool = False) -> None:
        """Accept ``bundles`` in order (``stored`` as for :meth:`accept`); stops at the
        first refusal (raising its error), keeping those accepted before it."""
        for bundle in bundles:
            self.accept(bundle, stored=stored)


def _fields(
    value: object, path: str, names: set[str], optional: frozenset[str] | set[str] = frozenset()
) -> dict[str, object]:
    if not isinstance(value, Mapping):
        raise MalformedBundleError("expected an object", path=path)
    for key in value:
        if key not in names and key not in optional:
            raise MalformedBundleError(f"unknown field {key!r}", path=path)
    for key in sorted(names - set(value)):
        raise MalformedBundleError(f"missing field {key!r}", path=path)
    return dict(value)


def _hex(value: object, path: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedBundleError("expected hex", path=path)
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise MalformedBundleError("expected hex", path=path) from None
