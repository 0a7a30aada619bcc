"""Policy versions: draft, dry run, propose as a bundle, sign, activate.

The life of a policy (docs/policy.md, "Policy bundles"):

1. ``create_draft``: a policy document (YAML or JSON), validated strictly;
2. ``dry_run``: evaluate the draft on a request without activating it;
3. ``propose``: wrap the draft, the working address book and the admin set into the next
   bundle of the workspace's chain (predecessor = the active bundle's hash). The first
   bundle pins the admin set that must sign it;
4. ``sign``: an admin's signature over the bundle's signed bytes, checked on arrival;
5. ``activate``: rebuild the workspace's :class:`~shardvault.policy.BundleChain` from the
   pinned admin set and every bundle activated so far, accept the new bundle (quorum,
   predecessor, version), and make it the active policy.

The transaction pipeline loads the active bundle with :func:`active_policy`; it never
evaluates a draft or a bundle that did not pass the chain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from shardvault.audit import JsonValue
from shardvault.policy import (
    AddressBook,
    BundleChain,
    BundleError,
    EvaluationContext,
    InitiatorKeys,
    Policy,
    PolicyBundle,
    PolicyError,
    new_bundle,
    parse_admin_set,
    parse_bundle,
    parse_initiator_keys,
    parse_policy,
    parse_prices,
    parse_registry,
    parse_request,
    parse_text,
    policy_to_document,
)
from shardvault.policy import (
    dry_run as policy_dry_run,
)
from shardvault.policy.fee_caps import refuse_unmatched_fee_caps
from shardvault.policy.keys import SignatureCheckFailed
from shardvault.policy.signed_inputs import refuse_unsigned_inputs
from shardvault.service.addressbook import working_address_book
from shardvault.service.asset_registry import registry_from_tables
from shardvault.service.context import Principal
from shardvault.service.cosigners import directory_for_bundle
from shardvault.service.errors import Conflict, NotFound, ValidationError
from shardvault.service.initiator_requests import initiator_keys
from shardvault.service.rbac import Permission, require
from shardvault.service.uow import UnitOfWork
from shardvault.store.models_vaults import PolicyStatus, PolicyVersion
from shardvault.store.repositories_vaults import PolicyRepository
from shardvault.store.types import utcnow


class PolicyRefused(ValidationError):
    """A policy document, request or signature that the policy package refused."""

    problem = "policy-refused"


class BundleRefused(Conflict):
    """A bundle the workspace's chain does not accept (quorum, predecessor, version)."""

    problem = "bundle-refused"


@dataclass(frozen=True, slots=True)
class PolicyView:
    id: str
    version: int
    status: str
    document: dict[str, object]
    bundle: dict[str, object] | None
    signing_message: str | None
    bundle_hash: str | None
    created_at: datetime
    activated_at: datetime | None

    @classmethod
    def of(cls, row: PolicyVersion) -> PolicyView:
        bundle = json.loads(row.bundle) if row.bundle else None
        message = None
        if row.bundle:
            message = parse_bundle(bundle).signing_message().hex()
        return cls(
            row.id,
            row.version,
            row.status.value,
            json.loads(row.document),
            bundle,
            message,
            row.bundle_hash,
            row.created_at,
            row.activated_at,
        )


def _refused(exc: PolicyError) -> PolicyRefused:
    # The path becomes the field, which the message already begins with.
    return PolicyRefused(exc.path or "policy", exc.reason)


def parse_document(document: object | None, text: str | None, fmt: str = "yaml") -> Policy:
    """A policy from a JSON object or from YAML/JSON text.

    Raises:
        PolicyRefused: the document is not a valid policy.
        ValidationError: neither or both forms given.
    """
    if (document is None) == (text is None):
        raise ValidationError("document", "give exactly one of document and text")
    try:
        data = document if text is None else parse_text(text, "json" if fmt == "json" else "yaml")
        return parse_policy(data)
    except PolicyError as exc:
        raise _refused(exc) from None


def create_draft(
    uow: UnitOfWork,
    principal: Principal,
    *,
    document: object | None = None,
    text: str | None = None,
    fmt: str = "yaml",
) -> PolicyView:
    """Store a validated policy document as a draft.

    Raises:
        Forbidden, PolicyRefused, ValidationError.
    """
    require(principal, Permission.POLICIES_MANAGE)
    policy = parse_document(document, text, fmt)
    row = PolicyRepository(uow.session, principal.workspace_id).add(
        PolicyVersion(
            version=policy.version,
            status=PolicyStatus.DRAFT,
            document=json.dumps(policy_to_document(policy), sort_keys=True),
            created_at=utcnow(),
        )
    )
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="policy.draft",
        resource_type="policy",
        resource_id=row.id,
        details={"version": policy.version, "rules": len(policy.rules)},
    )
    return PolicyView.of(row)


def _load(
    uow: UnitOfWork, principal: Principal, policy_id: str, *, lock: bool = False
) -> PolicyVersion:
    row = PolicyRepository(uow.session, principal.workspace_id).get(policy_id, lock=lock)
    if row is None:
        raise NotFound("policy", policy_id)
    return row


def get_policy(uow: UnitOfWork, principal: Principal, policy_id: str) -> PolicyView:
    require(principal, Permission.POLICIES_READ)
    return PolicyView.of(_load(uow, principal, policy_id))


def list_policies(uow: UnitOfWork, principal: Principal) -> list[PolicyView]:
    require(principal, Permission.POLICIES_READ)
    return [PolicyView.of(r) for r in PolicyRepository(uow.session, principal.workspace_id).list()]


def dry_run(
    uow: UnitOfWork,
    principal: Principal,
    policy_id: str,
    *,
    request: object,
    now: int,
    prices: dict[str, str] | None = None,
) -> dict[str, object]:
    """Evaluate a stored policy (any status) on a request, without approvals.

    Raises:
        Forbidden, NotFound, PolicyRefused (a malformed request or price).
    """
    require(principal, Permission.POLICIES_READ)
    row = _load(uow, principal, policy_id)
    try:
        policy = parse_policy(json.loads(row.document))
        parsed = parse_request(request)
        context = EvaluationContext(
            now=now,  # type: ignore[arg-type]
            prices=parse_prices(prices or {}),
            address_book=working_address_book(uow, principal.workspace_id),
        )
        return policy_dry_run(policy, parsed, context).to_json()
    except PolicyError as exc:
        raise _refused(exc) from None


def _chain(uow: UnitOfWork, workspace_id: str) -> BundleChain | None:
    """The workspace's chain rebuilt from its pinned admins and activated bundles."""
    repo = PolicyRepository(uow.session, workspace_id)
    pinned = repo.pinned_admins()
    if pinned is None:
        return None
    chain = BundleChain(workspace_id, parse_admin_set(json.loads(pinned.pinned_admins)))
    for row in repo.chain():
        assert row.bundle is not None
        chain.accept(parse_bundle(json.loads(row.bundle)), stored=True)
    return chain


def propose(
    uow: UnitOfWork,
    principal: Principal,
    policy_id: str,
    *,
    admins: object | None = None,
    cosigners: list[int] | None = None,
    initiators: object | None = None,
    initiators_from_api_keys: bool = False,
    assets: object | None = None,
) -> PolicyView:
    """Turn a draft into the next bundle of the workspace's chain.

    ``admins`` (``{quorum, members: [{id, algorithm, public_key}]}``) is required for the
    first bundle (it is pinned and must sign it) and, when given later, becomes the admin
    set for the bundle after this one.

    The bundle carries the co-signer directory of the paired co-signers ``cosigners``
    (party ids; every paired co-signer when ``None``), or, when the workspace paired
    none, the directory of the bundle before it, if any (docs/cosigner.md, "Pairing").

    It carries the initiator keys ``initiators`` (a section document, docs/policy.md
    "Signed inputs"), or with ``initiators_from_api_keys`` the workspace's API keys that
    may create transactions (:func:`.initiator_requests.initiator_keys`), or else those
    of the bundle before it, if any. It carries the asset registry ``assets`` (a
    registry document the admins wrote), or, when ``None``, the one built from the
    workspace's networks and assets with their static prices (:mod:`.asset_registry`;
    none while the workspace has no asset). A policy with a rule that decides on an
    unsigned input (the initiator with no initiator keys, source tags, a wallet that is
    not a derivation path, a value limit without a signed price for an asset it can see)
    is refused.

    Raises:
        Forbidden, NotFound, Conflict (not a draft, or the version does not follow the
        active one), PolicyRefused (a malformed admin set, address book, initiators
        section or registry, or a rule on an unsigned input), ValidationError (both
        ``initiators`` and ``initiators_from_api_keys``).
    """
    require(principal, Permission.POLICIES_MANAGE)
    repo = PolicyRepository(uow.session, principal.workspace_id)
    row = _load(uow, principal, policy_id, lock=True)
    if row.status is not PolicyStatus.DRAFT:
        raise Conflict(f"policy {policy_id!r} is {row.status.value}, not a draft")
    try:
        new_admins = parse_admin_set(admins) if admins is not None else None
        chain = _chain(uow, principal.workspace_id)
        if chain is None:
            if new_admins is None:
                raise ValidationError("admins", "the first bundle needs the admin set to pin")
            if repo.pinned_admins(lock=True) is None:
                repo.pin_admins(json.dumps(new_admins.to_document(), sort_keys=True))
            head: PolicyBundle | None = None
            next_admins = new_admins
        else:
            head = chain.head
            next_admins = new_admins or chain.admins
        if head is not None and row.version != head.version + 1:
            raise Conflict(f"the next policy version is {head.version + 1}, not {row.version}")
        book: AddressBook = working_address_book(uow, principal.workspace_id)
        directory = directory_for_bundle(uow, principal.workspace_id, cosigners)
        if directory is None and head is not None:
            directory = head.cosigners
        if initiators is not None and initiators_from_api_keys:
            raise ValidationError(
                "initiators", "give the initiators section or initiators_from_api_keys, not both"
            )
        keys: InitiatorKeys | None
        if initiators_from_api_keys:
            keys = initiator_keys(uow, principal.workspace_id)
        elif initiators is not None:
            keys = parse_initiator_keys(initiators)
        else:
            keys = None if head is None else head.initiators
        registry = (
            parse_registry(assets)
            if assets is not None
            else registry_from_tables(uow, principal.workspace_id)
        )
        policy = parse_policy(json.loads(row.document))
        refuse_unsigned_inputs(policy, keys, registry)
        refuse_unmatched_fee_caps(policy.fee_caps, registry)
        bundle = new_bundle(
            principal.workspace_id,
            policy,
            book,
            next_admins,
            head,
            cosigners=directory,
            initiators=keys,
            assets=registry,
        )
    except PolicyError as exc:
        raise _refused(exc) from None
    row.status = PolicyStatus.PROPOSED
    row.bundle = json.dumps(bundle.to_json(), sort_keys=True)
    row.bundle_hash = bundle.hash().hex()
    row.admins = json.dumps(next_admins.to_document(), sort_keys=True)
    uow.session.flush()
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="policy.propose",
        resource_type="policy",
        resource_id=row.id,
        details={
            "version": row.version,
            "bundle_hash": row.bundle_hash,
            "cosigners": (
                {str(p): f for p, f in bundle.cosigners.fingerprints().items()}
                if bundle.cosigners is not None
                else None
            ),
            "initiators": None if keys is None else list[JsonValue](keys.listing()),
            "assets": (
                ", ".join(sorted(f"{n.name}/{a.id}" for n, a in bundle.assets.all_assets()))
                if bundle.assets is not None
                else None
            ),
        },
    )
    return PolicyView.of(row)


def sign(
    uow: UnitOfWork, principal: Principal, policy_id: str, *, signer: str, signature: str
) -> PolicyView:
    """Add an admin's signature to a proposed bundle; the signature is verified now.

    Raises:
        Forbidden, NotFound, Conflict (not proposed, already signed by this admin),
        PolicyRefused (unknown admin, bad signature).
    """
    require(principal, Permission.POLICIES_MANAGE)
    row = _load(uow, principal, policy_id, lock=True)
    if row.status is not PolicyStatus.PROPOSED or row.bundle is None:
        raise Conflict(f"policy {policy_id!r} is {row.status.value}, not proposed")
    chain = _chain(uow, principal.workspace_id)
    assert chain is not None  # proposing pinned the admin set
    admin = chain.admins.get(signer)
    if admin is None:
        raise PolicyRefused("signer", f"{signer!r} is not in the admin set that signs this bundle")
    try:
        raw = bytes.fromhex(signature)
    except ValueError:
        raise ValidationError("signature", "expected hex") from None
    bundle = parse_bundle(json.loads(row.bundle))
    if any(s.signer == signer for s in bundle.signatures):
        raise Conflict(f"{signer!r} already signed this bundle")
    try:
        admin.key.verify(bundle.signing_message(), raw)
    except (SignatureCheckFailed, PolicyError):
        raise PolicyRefused("signature", f"the signature of {signer!r} does not verify") from None
    row.bundle = json.dumps(bundle.with_signature(signer, raw).to_json(), sort_keys=True)
    uow.session.flush()
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="policy.sign",
        resource_type="policy",
        resource_id=row.id,
        details={"signer": signer, "version": row.version},
    )
    return PolicyView.of(row)


def activate(uow: UnitOfWork, principal: Principal, policy_id: str) -> PolicyView:
    """Make a proposed, signed bundle the active policy.

    Raises:
        Forbidden, NotFound, Conflict (not proposed), BundleRefused (the chain refuses
        it: quorum not met, stale predecessor, version).
    """
    require(principal, Permission.POLICIES_MANAGE)
    repo = PolicyRepository(uow.session, principal.workspace_id)
    # Lock the pinned row first: two activations of one workspace run one at a time.
    repo.pinned_admins(lock=True)
    row = _load(uow, principal, policy_id, lock=True)
    if row.status is not PolicyStatus.PROPOSED or row.bundle is None:
        raise Conflict(f"policy {policy_id!r} is {row.status.value}, not proposed")
    chain = _chain(uow, principal.workspace_id)
    assert chain is not None
    try:
        chain.accept(parse_bundle(json.loads(row.bundle)))
    except BundleError as exc:
        raise BundleRefused(str(exc)) from None
    previous = repo.active()
    if previous is not None:
        previous.status = PolicyStatus.SUPERSEDED
    row.status = PolicyStatus.ACTIVE
    row.activated_at = utcnow()
    uow.session.flush()
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="policy.activate",
        resource_type="policy",
        resource_id=row.id,
        details={
            "version": row.version,
            "bundle_hash": row.bundle_hash,
            "superseded": previous.id if previous is not None else None,
        },
    )
    return PolicyView.of(row)


def active_policy(uow: UnitOfWork, workspace_id: str) -> PolicyBundle | None:
    """The workspace's active bundle (verified by its chain when it was activated)."""
    row = PolicyRepository(uow.session, workspace_id).active()
    if row is None or row.bundle is None:
        return None
    return parse_bundle(json.loads(row.bundle))


def active_version(uow: UnitOfWork, workspace_id: str) -> int | None:
    """The version of the workspace's active bundle (``None``: no active policy)."""
    row = PolicyRepository(uow.session, workspace_id).active()
    return None if row is None else row.version


def activated_bundles(uow: UnitOfWork, workspace_id: str) -> list[dict[str, object]]:
    """Every bundle the workspace activated, oldest first, in transport form (what its
    co-signers verify, one after the other, against the admin set they pinned)."""
    rows = PolicyRepository(uow.session, workspace_id).chain()
    return [json.loads(row.bundle) for row in rows if row.bundle is not None]


def pinned_admin_set(uow: UnitOfWork, workspace_id: str) -> dict[str, object] | None:
    """The admin set the workspace pinned with its first bundle (``None``: none yet)."""
    pinned = PolicyRepository(uow.session, workspace_id).pinned_admins()
    if pinned is None:
        return None
    document = json.loads(pinned.pinned_admins)
    return document if isinstance(document, dict) else None
