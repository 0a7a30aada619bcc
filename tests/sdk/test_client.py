"""The SDK against a real server on loopback (SQLite and PostgreSQL): signed requests,
typed results, retries that reuse the idempotency key, and its local error handling."""

import asyncio
import os
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from shardvault.sdk import (
    ApiError,
    ApiKeyCredentials,
    AsyncShardvaultClient,
    CredentialsError,
    ShardvaultClient,
    TransportError,
    generate_key_pair,
    write_private_key,
)
from shardvault.sdk.custody import KEYGEN_TIMEOUT_S
from shardvault.service.platform import Platform
from shardvault.store.models import User
from tests.api.support import Tenant


class LoseFirstResponse(httpx.AsyncBaseTransport):
    """Forwards to the server but drops the first POST's response after the server has
    handled it, as a network failure would; counts what reached the server."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.posts: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST":
            self.posts.append(request)
            if len(self.posts) == 1:
                await response.aread()
                await response.aclose()
                raise httpx.ReadError("connection reset after the request was sent")
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class UnavailableOnce(httpx.AsyncBaseTransport):
    """Answers the first request with 503 (never forwarding it), then forwards."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls == 1:
            return httpx.Response(503, json={"type": "about:blank", "title": "busy"})
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _users(platform: Platform, email: str) -> int:
    with platform.unit_of_work() as uow:
        count = uow.session.scalar(
            select(func.count()).select_from(User).where(User.email == email)
        )
    return int(count or 0)


def test_async_client_flow(server_url: str, tenant: Tenant) -> None:
    async def flow() -> None:
        async with AsyncShardvaultClient(server_url, tenant.owner) as client:
            assert (await client.health()).status == "ok"
            assert (await client.get_workspace()).id == tenant.workspace_id
            user = await client.create_user(name="Ada", email="ada@acme.example", role="approver")
            listed = [u.id async for u in client.iter_users(page_size=1)]
            assert user.id in listed
            assert len(listed) == 2
            actions = [e.action async for e in client.iter_audit_events(page_size=2)]
            assert actions[-1] == "user.create"
            assert (await client.verify_audit()).valid

    asyncio.run(flow())


def test_a_lost_response_is_retried_with_the_same_key(
    server_url: str, tenant: Tenant, platform: Platform
) -> None:
    transport = LoseFirstResponse()

    async def create() -> str:
        async with AsyncShardvaultClient(
            server_url, tenant.owner, transport=transport, backoff_s=0.01
        ) as client:
            user = await client.create_user(name="Rita", email="rita@acme.example", role="viewer")
            return user.email

    assert asyncio.run(create()) == "rita@acme.example"
    assert len(transport.posts) == 2
    keys = {p.headers["Idempotency-Key"] for p in transport.posts}
    tokens = {p.headers["Authorization"] for p in transport.posts}
    assert len(keys) == 1  # The retry reused the key ...
    assert len(tokens) == 2  # ... with a freshly signed token (a new nonce).
    assert _users(platform, "rita@acme.example") == 1


def test_503_is_retried(server_url: str, tenant: Tenant) -> None:
    transport = UnavailableOnce()

    async def read() -> str:
        async with AsyncShardvaultClient(
            server_url, tenant.owner, transport=transport, backoff_s=0.01
        ) as client:
            return (await client.get_workspace()).id

    assert asyncio.run(read()) == tenant.workspace_id
    assert transport.calls == 2


def test_problems_become_typed_errors(server_url: str, tenant: Tenant) -> None:
    with ShardvaultClient(server_url, tenant.owner) as client:
        with pytest.raises(ApiError) as caught:
            client.get_user("no-such-user")
        assert (caught.value.status, caught.value.slug) == (404, "not-found")
        assert "no-such-user" in caught.value.detail
    stranger = ApiKeyCredentials.from_pem("no-such-key", generate_key_pair()[0])
    with ShardvaultClient(server_url, stranger) as client, pytest.raises(ApiError) as caught:
        client.get_workspace()
    assert (caught.value.status, caught.value.slug) == (401, "unknown-api-key")


def test_unreachable_server_is_a_transport_error(tenant: Tenant) -> None:
    with (
        ShardvaultClient(
            "http://127.0.0.1:9", tenant.owner, max_attempts=2, backoff_s=0.01
        ) as client,
        pytest.raises(TransportError),
    ):
        client.get_workspace()


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256"])
def test_tokens_verify_with_an_independent_jwt_library(algorithm: str) -> None:
    private_pem, public_pem = generate_key_pair(algorithm)  # type: ignore[arg-type]
    creds = ApiKeyCredentials.from_pem("key-1", private_pem)
    now = time.time()
    token = creds.sign_request("post", "/v1/users?limit=2", b'{"a":1}', now=now, nonce="n-1")
    public_key = serialization.load_pem_public_key(public_pem.encode())
    claims = jwt.decode(token, public_key, algorithms=[algorithm])  # type: ignore[arg-type]
    assert claims == {
        "method": "POST",
        "uri": "/v1/users?limit=2",
        "nonce": "n-1",
        "iat": int(now),
        "exp": int(now) + 25,
        "sub": "key-1",
        "bodyHash": "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862",
    }
    assert jwt.get_unverified_header(token)["alg"] == algorithm


def test_key_files(tmp_path: Path) -> None:
    private_pem, _ = generate_key_pair()
    path = tmp_path / "owner.pem"
    write_private_key(path, private_pem)
    assert os.stat(path).st_mode & 0o777 == 0o600
    with pytest.raises(CredentialsError):
        write_private_key(path, private_pem)
    creds = ApiKeyCredentials.from_file("key-9", path)
    assert "PRIVATE" not in repr(creds)
    assert "key-9" in repr(creds)
    with pytest.raises(CredentialsError):
        ApiKeyCredentials.from_file("k", tmp_path / "missing.pem")


def test_unsupported_private_keys_are_refused() -> None:
    secp256k1 = ec.generate_private_key(ec.SECP256K1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(CredentialsError, match="neither"):
        ApiKeyCredentials.from_pem("k", secp256k1)
    with pytest.raises(CredentialsError):
        ApiKeyCredentials.from_pem(
            "k", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
        )


def test_vault_creation_waits_for_key_generation_not_the_default_timeout(
    tenant: Tenant,
) -> None:
    """Key generation runs inside POST /v1/vaults: the SDK gives that call its own long
    timeout (a timeout and retry would start a second key generation)."""
    seen: list[tuple[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.extensions["timeout"]["read"]))
        return httpx.Response(503, json={"title": "no backend", "status": 503})

    client = AsyncShardvaultClient(
        "http://sdk.test",
        tenant.owner,
        transport=httpx.MockTransport(handler),
        max_attempts=1,
        timeout_s=5.0,
    )

    async def calls() -> None:
        async with client:
            with pytest.raises(ApiError):
                await client.create_vault(name="slow")
            with pytest.raises(ApiError):
                await client.list_vaults()

    asyncio.run(calls())
    assert seen == [("/v1/vaults", KEYGEN_TIMEOUT_S), ("/v1/vaults", 5.0)]
