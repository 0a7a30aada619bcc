"""The caller's workspace, its users and its API keys."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from shardvault.api.deps import Mutation, authorized, get_platform, mutation, run_mutation
from shardvault.api.schemas import (
    ApiKeyOut,
    ApiKeyPage,
    CreateApiKeyIn,
    CreateUserIn,
    UserOut,
    UserPage,
    WorkspaceOut,
)
from shardvault.service import workspaces as svc
from shardvault.service.context import Principal
from shardvault.service.pagination import MAX_PAGE_SIZE
from shardvault.service.platform import Platform
from shardvault.service.rbac import Permission
from shardvault.service.uow import UnitOfWork
from shardvault.store.models import KeyAlgorithm, Role

router = APIRouter()

PlatformDep = Annotated[Platform, Depends(get_platform)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(max_length=200)]


@router.get("/workspace", response_model=WorkspaceOut, tags=["workspace"])
def get_workspace(
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(authorized(Permission.WORKSPACE_READ))],
) -> WorkspaceOut:
    """The workspace the calling API key belongs to."""
    with platform.unit_of_work(read_only=True) as uow:
        return WorkspaceOut.of(svc.get_workspace(uow, principal))


@router.post("/users", status_code=201, response_model=UserOut, tags=["users"])
def create_user(
    body: CreateUserIn,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.USERS_MANAGE))],
) -> Response:
    """Add a user (admins and owners; only owners may add owners)."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        user = svc.create_user(
            uow, change.principal, name=body.name, email=body.email, role=Role(body.role)
        )
        return 201, UserOut.of(user).model_dump(mode="json")

    return run_mutation(platform, change, operation)


@router.get("/users", response_model=UserPage, tags=["users"])
def list_users(
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(authorized(Permission.USERS_READ))],
    limit: Limit = 50,
    cursor: Cursor = None,
) -> UserPage:
    """The workspace's users, a page at a time (pass ``next_cursor`` back as ``cursor``)."""
    with platform.unit_of_work(read_only=True) as uow:
        page = svc.list_users(uow, principal, limit=limit, cursor=cursor)
    return UserPage(data=[UserOut.of(u) for u in page.items], next_cursor=page.next_cursor)


@router.get("/users/{user_id}", response_model=UserOut, tags=["users"])
def get_user(
    user_id: str,
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(authorized(Permission.USERS_READ))],
) -> UserOut:
    """One user of the workspace."""
    with platform.unit_of_work(read_only=True) as uow:
        return UserOut.of(svc.get_user(uow, principal, user_id))


@router.post("/users/{user_id}/disable", response_model=UserOut, tags=["users"])
def disable_user(
    user_id: str,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.USERS_MANAGE))],
) -> Response:
    """Disable a user and revoke all their API keys."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        user = svc.disable_user(uow, change.principal, user_id)
        return 200, UserOut.of(user).model_dump(mode="json")

    return run_mutation(platform, change, operation)


@router.post("/api-keys", status_code=201, response_model=ApiKeyOut, tags=["api-keys"])
def create_api_key(
    body: CreateApiKeyIn,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.API_KEYS_MANAGE))],
) -> Response:
    """Register a public key (Ed25519 or P-256 PEM) for a user; the private key stays
    with the client. The key's role defaults to the user's and may only be narrower."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        key = svc.create_api_key(
            uow,
            change.principal,
            user_id=body.user_id,
            name=body.name,
            algorithm=KeyAlgorithm(body.algorithm),
            public_key_pem=body.public_key_pem,
            role=Role(body.role) if body.role is not None else None,
        )
        return 201, ApiKeyOut.of(key).model_dump(mode="json")

    return run_mutation(platform, change, operation)


@router.get("/api-keys", response_model=ApiKeyPage, tags=["api-keys"])
def list_api_keys(
    platform: PlatformDep,
    principal: Annotated[Principal, Depends(authorized(Permission.API_KEYS_READ))],
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ApiKeyPage:
    """The workspace's API keys, a page at a time."""
    with platform.unit_of_work(read_only=True) as uow:
        page = svc.list_api_keys(uow, principal, limit=limit, cursor=cursor)
    return ApiKeyPage(data=[ApiKeyOut.of(k) for k in page.items], next_cursor=page.next_cursor)


@router.post("/api-keys/{key_id}/revoke", response_model=ApiKeyOut, tags=["api-keys"])
def revoke_api_key(
    key_id: str,
    platform: PlatformDep,
    change: Annotated[Mutation, Depends(mutation(Permission.API_KEYS_MANAGE))],
) -> Response:
    """Revoke an API key; the last active owner key cannot be revoked."""

    def operation(uow: UnitOfWork) -> tuple[int, dict[str, object]]:
        key = svc.revoke_api_key(uow, change.principal, key_id)
        return 200, ApiKeyOut.of(key).model_dump(mode="json")

    return run_mutation(platform, change, operation)
