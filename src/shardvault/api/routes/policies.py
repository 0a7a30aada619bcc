"""Policies: draft, dry run, propose as a bundle, sign, activate."""

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from shardvault.api.deps import Mutation, authorized, get_platform, mutation, run_mutation
from shardvault.api.schemas_vaults import (
    DryRunIn,
    PolicyIn,
    PolicyList,
    PolicyOut,
    PolicySignatureIn,
    ProposeIn,
)
from shardvault.service import policies as svc
from shardvault.service.context import Principal
from shardvault.service.platform import Platform
from shardvault.service.rbac import Permission
from shardvault.service.uow import UnitOfWork

router = APIRouter()

PlatformDep = Annotated[Platform, Depends(get_platform)]


def _out(view: svc.PolicyView) -> dict[str, object]:
    return PolicyOut.model_validate(view).model_dump(mode="json")


@router.post("/policies", status_code=201, response_model=PolicyOut, tags=["policies"])
def create_draft(
    body: PolicyIn,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.POLICIES_MANAGE))],
) -> Response:
    """Store a policy document (``document`` as JSON, or ``text`` as YAML/JSON) as a
    draft; it is validated strictly against the policy language."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = svc.create_draft(
            uow, change.principal, document=body.document, text=body.text, fmt=body.format
        )
        return 201, _out(view)

    return run_mutation(platform, change, operation)


@router.get("/policies", response_model=PolicyList, tags=["policies"])
def list_policies(
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(authorized(Permission.POLICIES_READ))],
) -> PolicyList:
    """Every policy version of the workspace."""
    with platform.unit_of_work(read_only=True) as uow:
        return PolicyList(
            data=[PolicyOut.model_validate(p) for p in svc.list_policies(uow, principal)]
        )


@router.get("/policies/{policy_id}", response_model=PolicyOut, tags=["policies"])
def get_policy(
    policy_id: str,
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(authorized(Permission.POLICIES_READ))],
) -> PolicyOut:
    """One policy version, with its bundle and the bytes admins sign once proposed."""
    with platform.unit_of_work(read_only=True) as uow:
        return PolicyOut.model_validate(svc.get_policy(uow, principal, policy_id))


@router.post("/policies/{policy_id}/dry-run", tags=["policies"])
def dry_run(
    policy_id: str,
    body: DryRunIn,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.POLICIES_READ))],
) -> Response:
    """Evaluate the policy on a request (docs/policy.md request form) without changing
    anything but the idempotency record (every POST takes an Idempotency-Key)."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        return 200, svc.dry_run(
            uow,
            change.principal,
            policy_id,
            request=body.request,
            now=body.now if body.now is not None else int(platform.clock()),
            prices=body.prices,
        )

    return run_mutation(platform, change, operation)


@router.post("/policies/{policy_id}/propose", response_model=PolicyOut, tags=["policies"])
def propose(
    policy_id: str,
    body: ProposeIn,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.POLICIES_MANAGE))],
) -> Response:
    """Turn a draft into the next bundle; the first bundle pins ``admins``. The bundle
    carries ``assets`` (an asset registry) or the one built from the workspace's tables."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = svc.propose(
            uow,
            change.principal,
            policy_id,
            admins=body.admins,
            cosigners=body.cosigners,
            initiators=body.initiators,
            initiators_from_api_keys=body.initiators_from_api_keys,
            assets=body.assets,
        )
        return 200, _out(view)

    return run_mutation(platform, change, operation)


@router.post("/policies/{policy_id}/signatures", response_model=PolicyOut, tags=["policies"])
def sign(
    policy_id: str,
    body: PolicySignatureIn,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.POLICIES_MANAGE))],
) -> Response:
    """Add an admin's signature over the bundle's ``signing_message``."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = svc.sign(
            uow, change.principal, policy_id, signer=body.signer, signature=body.signature
        )
        return 200, _out(view)

    return run_mutation(platform, change, operation)


@router.post("/policies/{policy_id}/activate", response_model=PolicyOut, tags=["policies"])
def activate(
    policy_id: str,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.POLICIES_MANAGE))],
) -> Response:
    """Make the signed bundle the active policy (the admin quorum must have signed)."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        return 200, _out(svc.activate(uow, change.principal, policy_id))

    return run_mutation(platform, change, operation)
