"""Remote co-signers: pairing tokens, pairing, the paired list with live status.

``POST /cosigners/pair`` carries no API key: the co-signer proves the one-time pairing
token and its identity key instead (docs/cosigner.md, "Pairing"). Everything else is an
ordinary signed API request.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from shardvault.api.deps import Mutation, authorized, get_platform, mutation, run_mutation
from shardvault.service import cosigners as svc
from shardvault.service.context import Principal
from shardvault.service.platform import Platform
from shardvault.service.policies import active_policy
from shardvault.service.rbac import Permission
from shardvault.service.uow import UnitOfWork

router = APIRouter(prefix="/cosigners", tags=["cosigners"])

PlatformDep = Annotated[Platform, Depends(get_platform)]


class PairingTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    party: int = Field(ge=1, le=65535, description="The party id the token pairs.")


class PairingTokenOut(BaseModel):
    token: str = Field(description="Shown once: give it to the co-signer's operator.")
    party: int
    expires_at: datetime


class PairIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pairing: dict[str, object] = Field(
        description="{format, workspace, party, identity, token, timestamp, version, label, "
        "details}, signed by the co-signer's identity key."
    )
    signature: str = Field(min_length=128, max_length=128)


class PairOut(BaseModel):
    workspace_id: str
    party: int
    fingerprint: str


class CosignerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    party: int
    label: str
    fingerprint: str
    identity: dict[str, str]
    version: str
    details: dict[str, object]
    paired_at: datetime
    in_signed_directory: bool = Field(
        description="Whether the active policy's co-signer directory, signed by the admin "
        "quorum, lists this co-signer under this identity."
    )
    status: dict[str, object] = Field(
        description="Live status from the relay: connected, last_contact, reported version, "
        "unlock and attestation, policy version (empty when never seen)."
    )


class CosignerList(BaseModel):
    data: list[CosignerOut]


@router.post("/pairing-tokens", status_code=201, response_model=PairingTokenOut)
def create_pairing_token(
    body: PairingTokenIn,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.POLICIES_MANAGE))],
) -> Response:
    """A one-time token (30 minutes) that pairs one co-signer as ``party``."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        view = svc.create_pairing_token(uow, change.principal, party=body.party)
        return 201, PairingTokenOut(
            token=view.token, party=view.party, expires_at=view.expires_at
        ).model_dump(mode="json")

    return run_mutation(platform, change, operation)


@router.post("/pair", status_code=201, response_model=PairOut)
async def pair(body: PairIn, platform: PlatformDep) -> JSONResponse:
    """Pair a co-signer: the one-time token and the identity key's signature over the
    document, no API key. The admins must still sign a directory that lists it."""

    def operation() -> PairOut:
        with platform.unit_of_work() as uow:
            view, workspace_id = svc.pair(uow, document=body.pairing, signature=body.signature)
        return PairOut(workspace_id=workspace_id, party=view.party, fingerprint=view.fingerprint)

    out = await run_in_threadpool(operation)
    return JSONResponse(out.model_dump(mode="json"), status_code=201)


@router.get("", response_model=CosignerList)
def list_cosigners(
    request: Request,
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(authorized(Permission.POLICIES_READ))],
) -> CosignerList:
    """The workspace's paired co-signers: fingerprints, whether the signed directory lists
    each, and each one's liveness, version, attestation and last contact."""
    status = getattr(request.app.state, "cosigner_status", None)
    with platform.unit_of_work(read_only=True) as uow:
        bundle = active_policy(uow, principal.workspace_id)
        views = svc.list_cosigners(
            uow,
            principal,
            signed=bundle.cosigners if bundle is not None else None,
            status=status,
        )
    return CosignerList(data=[CosignerOut.model_validate(v) for v in views])


class UnpairOut(BaseModel):
    party: int
    unpaired: bool


@router.delete("/{party}", response_model=UnpairOut)
def unpair(
    party: int,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.POLICIES_MANAGE))],
) -> Response:
    """Forget a paired co-signer (a signed directory keeps listing it until the admins
    sign one without it)."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        svc.unpair(uow, change.principal, party)
        return 200, {"party": party, "unpaired": True}

    return run_mutation(platform, change, operation)
