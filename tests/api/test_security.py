"""Security of the API edge, on SQLite and PostgreSQL: every bad credential is refused
with problem+json, changes nothing, and leaves exactly one refusal in the audit log."""

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from httpx import Response
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, event, func, select, text

from shardvault.audit import verify_chain
from shardvault.audit.log import chain_of
from shardvault.sdk import ApiKeyCredentials, generate_key_pair
from shardvault.service.platform import Platform
from shardvault.store.database import READ_ONLY_OPTION
from shardvault.store.models import SYSTEM_CHAIN, AuditEvent
from tests.api.support import Tenant, refusals, writing_meanwhile

PROBLEM = "application/problem+json"

STATE_TABLES = ("workspaces", "users", "api_keys", "idempotency_records")
"""Tables no refused request may change (the audit tables gain exactly the refusal)."""


def snapshot(platform: Platform) -> dict[str, object]:
    """Every row of every table a request could change, plus the audit events' count."""
    state: dict[str, object] = {}
    with platform.database.engine.connect() as conn:
        for table in (*STATE_TABLES, "used_nonces"):
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()
            state[table] = sorted(repr(tuple(r)) for r in rows)
    return state


def event_count(platform: Platform) -> int:
    with platform.unit_of_work() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def signed_headers(
    creds: ApiKeyCredentials,
    method: str,
    uri: str,
    body: bytes = b"",
    *,
    idempotency_key: str | None = None,
    **sign: object,
) -> dict[str, str]:
    token = creds.sign_request(method, uri, body, **sign)  # type: ignore[arg-type]
    headers = {"X-API-Key": creds.api_key_id, "Authorization": f"Bearer {token}"}
    if body:
        headers["Content-Type"] = "application/json"
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return headers


def user_body(email: str = "val@acme.example", role: str = "viewer") -> bytes:
    return json.dumps({"name": "Val", "email": email, "role": role}).encode()


def assert_refused(
    response: Response,
    platform: Platform,
    before: Mapping[str, object],
    *,
    status: int,
    problem: str,
    chain: str,
    refusals_before: int,
    nonces_may_change: bool = False,
) -> None:
    """The response is a problem of that type; state is unchanged; one refusal was audited."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["type"] == f"urn:shardvault:problem:{problem}"
    assert body["status"] == status
    assert {"title", "detail", "instance"} <= body.keys()
    after = snapshot(platform)
    for table in STATE_TABLES:
        assert after[table] == before[table], f"{table} changed"
    if not nonces_may_change:
        assert after["used_nonces"] == before["used_nonces"]
    events = refusals(platform, chain)
    assert len(events) == refusals_before + 1
    details = json.loads(events[-1].details)
    assert (details["problem"], details["status"]) == (problem, status)
    with platform.unit_of_work() as uow:
        verify_chain(uow.session, chain, platform.keyring())


@pytest.fixture
def refuse(platform: Platform, http: httpx.Client, tenant: Tenant) -> Callable[..., Response]:
    """Send a request, then check it was refused as described (see assert_refused)."""

    def run(
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        status: int,
        problem: str,
        chain: str | None = None,
        nonces_may_change: bool = False,
    ) -> Response:
        target = chain or tenant.workspace_id
        before = snapshot(platform)
        count = len(refusals(platform, target))
        total = event_count(platform)
        response = http.request(method, path, headers=dict(headers), content=body)
        assert_refused(
            response,
            platform,
            before,
            status=status,
            problem=problem,
            chain=target,
            refusals_before=count,
            nonces_may_change=nonces_may_change,
        )
        assert event_count(platform) == total + 1
        return response

    return run


def test_a_correctly_signed_request_is_accepted(http: httpx.Client, tenant: Tenant) -> None:
    response = http.get(
        "/v1/workspace", headers=signed_headers(tenant.owner, "GET", "/v1/workspace")
    )
    assert response.status_code == 200
    assert response.json()["id"] == tenant.workspace_id


def test_replayed_jwt_is_refused(
    http: httpx.Client, tenant: Tenant, refuse: Callable[..., Response]
) -> None:
    body = user_body()
    headers = signed_headers(tenant.owner, "POST", "/v1/users", body, idempotency_key="k-1")
    assert http.post("/v1/users", headers=headers, content=body).status_code == 201
    refuse("POST", "/v1/users", headers, body, status=401, problem="replayed-request")


def test_wrong_body_hash_is_refused(tenant: Tenant, refuse: Callable[..., Response]) -> None:
    signed_for = user_body("val@acme.example", "viewer")
    sent = user_body("val@acme.example", "admin")
    headers = signed_headers(tenant.owner, "POST", "/v1/users", signed_for, idempotency_key="k-2")
    refuse("POST", "/v1/users", headers, sent, status=401, problem="request-mismatch")


def test_token_for_another_uri_is_refused(tenant: Tenant, refuse: Callable[..., Response]) -> None:
    headers = signed_headers(tenant.owner, "GET", "/v1/users?limit=1")
    refuse("GET", "/v1/users?limit=2", headers, status=401, problem="request-mismatch")


def test_token_for_another_method_is_refused_and_deletes_nothing(
    http: httpx.Client, tenant: Tenant, refuse: Callable[..., Response]
) -> None:
    """A token made to read a webhook endpoint, not yet used (its nonce is fresh), is
    sent as a DELETE of the same path: same uri, same empty body, so only the ``method``
    claim tells them apart. It is refused, the endpoint stays, and the token still reads."""
    body = json.dumps({"url": "https://hooks.acme.example/in"}).encode()
    created = http.post(
        "/v1/webhooks/endpoints",
        headers=signed_headers(
            tenant.owner, "POST", "/v1/webhooks/endpoints", body, idempotency_key="wh-1"
        ),
        content=body,
    )
    assert created.status_code == 201, created.text
    path = f"/v1/webhooks/endpoints/{created.json()['id']}"
    read_token = signed_headers(tenant.owner, "GET", path)
    response = refuse(
        "DELETE",
        path,
        {**read_token, "Idempotency-Key": "wh-delete"},
        status=401,
        problem="request-mismatch",
    )
    assert "method" in response.json()["detail"]
    still = http.get(path, headers=read_token)
    assert still.status_code == 200, still.text
    assert still.json()["url"] == "https://hooks.acme.example/in"


def test_expired_jwt_is_refused(tenant: Tenant, refuse: Callable[..., Response]) -> None:
    headers = signed_headers(tenant.owner, "GET", "/v1/workspace", now=time.time() - 120)
    refuse("GET", "/v1/workspace", headers, status=401, problem="token-expired")


def test_jwt_living_longer_than_30_seconds_is_refused(
    tenant: Tenant, refuse: Callable[..., Response]
) -> None:
    headers = signed_headers(tenant.owner, "GET", "/v1/workspace", lifetime_s=31)
    refuse("GET", "/v1/workspace", headers, status=401, problem="token-lifetime-too-long")


def _token(private_key: object, claims: Mapping[str, object], algorithm: str = "EdDSA") -> str:
    return jwt.encode(dict(claims), private_key, algorithm=algorithm)  # type: ignore[arg-type]


def _claims(creds: ApiKeyCredentials, uri: str, **changes: object) -> dict[str, object]:
    """The claims of a GET of ``uri`` with no body, with ``changes`` (``None`` drops one)."""
    now = int(time.time())
    claims: dict[str, object] = {
        "method": "GET",
        "uri": uri,
        "nonce": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 20,
        "sub": creds.api_key_id,
        "bodyHash": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@dataclass(frozen=True)
class _Offset:
    """A claim time given as seconds from when the test runs."""

    seconds: int

    def __add__(self, seconds: int) -> "_Offset":
        return _Offset(self.seconds + seconds)

    def __sub__(self, seconds: int) -> "_Offset":
        return _Offset(self.seconds - seconds)

    def at(self, now: int) -> int:
        return now + self.seconds


_FROM_NOW = _Offset(0)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"sub": "someone-else"}, "invalid-token"),
        ({"iat": _FROM_NOW + 600, "exp": _FROM_NOW + 620}, "invalid-token"),
        ({"nonce": None}, "invalid-token"),
        ({"bodyHash": None}, "invalid-token"),
        ({"nonce": "x" * 129}, "invalid-token"),
        ({"method": None}, "invalid-token"),
        ({"method": "DELETE"}, "request-mismatch"),
        ({"method": "get"}, "request-mismatch"),
        ({"exp": _FROM_NOW - 1000, "iat": _FROM_NOW - 1010}, "token-expired"),
    ],
)
def test_bad_claims_are_refused(
    tenant: Tenant, refuse: Callable[..., Response], changes: dict[str, object], problem: str
) -> None:
    # Times are offsets from the moment the test runs, not from collection: a long suite
    # would otherwise turn a token dated ten minutes ahead into an expired one.
    now = int(time.time())
    changes = {k: v.at(now) if isinstance(v, _Offset) else v for k, v in changes.items()}
    token = _token(tenant.owner.private_key, _claims(tenant.owner, "/v1/workspace", **changes))
    headers = {"X-API-Key": tenant.owner.api_key_id, "Authorization": f"Bearer {token}"}
    refuse("GET", "/v1/workspace", headers, status=401, problem=problem)


def test_unsigned_and_hmac_tokens_are_refused(
    tenant: Tenant, refuse: Callable[..., Response]
) -> None:
    claims = _claims(tenant.owner, "/v1/workspace")
    unsigned = jwt.encode(claims, None, algorithm="none")
    public_pem = tenant.owner.private_key.public_key().public_bytes_raw()  # type: ignore[union-attr]
    hmac_token = jwt.encode(claims, public_pem, algorithm="HS256")
    for token in (unsigned, hmac_token, "not-a-jwt", "a.b.c"):
        headers = {"X-API-Key": tenant.owner.api_key_id, "Authorization": f"Bearer {token}"}
        refuse("GET", "/v1/workspace", headers, status=401, problem="invalid-token")


def test_missing_credentials_are_refused(tenant: Tenant, refuse: Callable[..., Response]) -> None:
    refuse(
        "GET", "/v1/workspace", {}, status=401, problem="missing-credentials", chain=SYSTEM_CHAIN
    )
    refuse(
        "GET",
        "/v1/workspace",
        {"X-API-Key": tenant.owner.api_key_id, "Authorization": "Basic abc"},
        status=401,
        problem="missing-credentials",
        chain=SYSTEM_CHAIN,
    )


def test_unknown_key_is_refused_into_the_system_chain(
    tenant: Tenant, refuse: Callable[..., Response]
) -> None:
    stranger = ApiKeyCredentials.from_pem(str(uuid.uuid4()), generate_key_pair()[0])
    headers = signed_headers(stranger, "GET", "/v1/workspace")
    refuse(
        "GET", "/v1/workspace", headers, status=401, problem="unknown-api-key", chain=SYSTEM_CHAIN
    )


def test_key_of_another_workspace_cannot_be_used_without_its_private_key(
    tenant: Tenant, other_tenant: Tenant, refuse: Callable[..., Response]
) -> None:
    """Workspace acme's owner names globex's key id but can only sign with acme's key."""
    impostor = ApiKeyCredentials(other_tenant.owner.api_key_id, tenant.owner.private_key)
    headers = signed_headers(impostor, "GET", "/v1/workspace")
    refuse(
        "GET",
        "/v1/workspace",
        headers,
        status=401,
        problem="invalid-token",
        chain=other_tenant.workspace_id,
    )


def test_key_cannot_touch_another_workspaces_resources(
    http: httpx.Client,
    platform: Platform,
    tenant: Tenant,
    other_tenant: Tenant,
    refuse: Callable[..., Response],
) -> None:
    """acme's owner key tries to read globex's owner and revoke globex's owner key: both
    are "not found" (existence does not leak), globex is untouched, acme's chain records
    the refusals."""
    path = f"/v1/users/{other_tenant.owner_user_id}"
    refuse(
        "GET",
        path,
        signed_headers(tenant.owner, "GET", path),
        status=404,
        problem="not-found",
        nonces_may_change=True,
    )
    path = f"/v1/api-keys/{other_tenant.owner.api_key_id}/revoke"
    headers = signed_headers(tenant.owner, "POST", path, b"{}", idempotency_key="k-x")
    refuse("POST", path, headers, b"{}", status=404, problem="not-found", nonces_may_change=True)
    still = http.get(
        "/v1/workspace", headers=signed_headers(other_tenant.owner, "GET", "/v1/workspace")
    )
    assert still.status_code == 200
    assert still.json()["id"] == other_tenant.workspace_id
    assert refusals(platform, other_tenant.workspace_id) == []


def _viewer(http: httpx.Client, tenant: Tenant) -> ApiKeyCredentials:
    body = user_body("viewer@acme.example", "viewer")
    created = http.post(
        "/v1/users",
        headers=signed_headers(
            tenant.owner, "POST", "/v1/users", body, idempotency_key="mk-viewer"
        ),
        content=body,
    )
    assert created.status_code == 201, created.text
    private_pem, public_pem = generate_key_pair()
    key_body = json.dumps(
        {
            "user_id": created.json()["id"],
            "name": "viewer key",
            "algorithm": "EdDSA",
            "public_key_pem": public_pem,
        }
    ).encode()
    key = http.post(
        "/v1/api-keys",
        headers=signed_headers(
            tenant.owner, "POST", "/v1/api-keys", key_body, idempotency_key="mk-vk"
        ),
        content=key_body,
    )
    assert key.status_code == 201, key.text
    assert key.json()["role"] == "viewer"
    return ApiKeyCredentials.from_pem(key.json()["id"], private_pem)


def test_viewer_cannot_mutate(
    http: httpx.Client, tenant: Tenant, refuse: Callable[..., Response]
) -> None:
    viewer = _viewer(http, tenant)
    body = user_body("mallory@acme.example", "owner")
    headers = signed_headers(viewer, "POST", "/v1/users", body, idempotency_key="v-1")
    response = refuse(
        "POST", "/v1/users", headers, body, status=403, problem="forbidden", nonces_may_change=True
    )
    assert "viewer" in response.json()["detail"]
    path = f"/v1/api-keys/{tenant.owner.api_key_id}/revoke"
    headers = signed_headers(viewer, "POST", path, b"{}", idempotency_key="v-2")
    refuse("POST", path, headers, b"{}", status=403, problem="forbidden", nonces_may_change=True)
    # Reading is what a viewer may do; the audit trail is not.
    assert (
        http.get("/v1/users", headers=signed_headers(viewer, "GET", "/v1/users")).status_code == 200
    )
    refuse(
        "GET",
        "/v1/audit/events",
        signed_headers(viewer, "GET", "/v1/audit/events"),
        status=403,
        problem="forbidden",
        nonces_may_change=True,
    )


def test_revoked_key_is_refused(
    http: httpx.Client, tenant: Tenant, refuse: Callable[..., Response]
) -> None:
    viewer = _viewer(http, tenant)
    path = f"/v1/api-keys/{viewer.api_key_id}/revoke"
    revoked = http.post(
        path,
        headers=signed_headers(tenant.owner, "POST", path, b"{}", idempotency_key="r"),
        content=b"{}",
    )
    assert revoked.json()["status"] == "disabled"
    refuse(
        "GET",
        "/v1/users",
        signed_headers(viewer, "GET", "/v1/users"),
        status=401,
        problem="unknown-api-key",
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    position=st.integers(min_value=0, max_value=10_000),
    replacement=st.integers(min_value=0x21, max_value=0x7E),
)
def test_any_corrupted_token_is_refused_cleanly(
    http: httpx.Client, tenant: Tenant, position: int, replacement: int
) -> None:
    """Replacing any character of a valid token with another visible ASCII character never
    gets in and never crashes the server."""
    token = bytearray(tenant.owner.sign_request("GET", "/v1/workspace", b"").encode())
    index = position % len(token)
    assume(token[index] != replacement)
    token[index] = replacement
    headers = {"X-API-Key": tenant.owner.api_key_id.encode(), "Authorization": b"Bearer " + token}
    response = http.get("/v1/workspace", headers=headers)
    if response.status_code == 200:
        # Base64url has a few bits that decode to the same bytes; the token is then unchanged.
        return
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)


def test_es256_keys_work(http: httpx.Client, platform: Platform) -> None:
    from tests.api.support import bootstrap

    tenant = bootstrap(platform, "initech", algorithm="ES256")
    assert tenant.owner.algorithm == "ES256"
    ok = http.get("/v1/workspace", headers=signed_headers(tenant.owner, "GET", "/v1/workspace"))
    assert ok.status_code == 200
    # An EdDSA token for an ES256 key is refused even if it is well signed by some key.
    forged = _token(ed25519.Ed25519PrivateKey.generate(), _claims(tenant.owner, "/v1/workspace"))
    bad = http.get(
        "/v1/workspace",
        headers={"X-API-Key": tenant.owner.api_key_id, "Authorization": f"Bearer {forged}"},
    )
    assert bad.status_code == 401
    assert "ES256" in bad.json()["detail"]
    chain = chain_of(tenant.workspace_id)
    assert len(refusals(platform, chain)) == 1


def test_authentication_comes_before_body_validation(refuse: Callable[..., Response]) -> None:
    """An unauthenticated caller cannot probe the request schema."""
    refuse(
        "POST",
        "/v1/users",
        {"Content-Type": "application/json"},
        b'{"not": "a user"}',
        status=401,
        problem="missing-credentials",
        chain=SYSTEM_CHAIN,
    )


def test_oversized_bodies_are_refused_before_reading(
    tenant: Tenant, refuse: Callable[..., Response]
) -> None:
    """Refused before authentication (tests/api/test_body_limit.py has the details), so
    the refusal is recorded in the system chain even though the token is good."""
    body = b'{"name": "' + b"x" * (1 << 20) + b'"}'
    headers = signed_headers(tenant.owner, "POST", "/v1/users", body, idempotency_key="big")
    refuse(
        "POST",
        "/v1/users",
        headers,
        body,
        status=413,
        problem="body-too-large",
        chain=SYSTEM_CHAIN,
    )


def test_an_unreachable_database_is_a_503_problem() -> None:
    from shardvault.api import create_app
    from shardvault.audit import AuditSigner
    from shardvault.store import Database
    from tests.api.support import live_server

    database = Database("postgresql://postgres@127.0.0.1:1/none?connect_timeout=1")
    platform = Platform(database, AuditSigner.generate())
    creds = ApiKeyCredentials.from_pem("some-key", generate_key_pair()[0])
    try:
        with live_server(create_app(platform)) as url:
            response = httpx.get(
                f"{url}/v1/workspace", headers=signed_headers(creds, "GET", "/v1/workspace")
            )
    finally:
        database.dispose()
    assert response.status_code == 503
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["type"] == "urn:shardvault:problem:unavailable"
    assert "127.0.0.1" not in response.text


@pytest.mark.parametrize(
    ("skew", "outcome"),
    [
        (0, "ok"),
        (24, "ok"),  # exp = iat + 25, within the 5 s leeway until iat + 30
        (29, "ok"),
        (30, "token-expired"),
        (-5, "ok"),  # a client clock 5 s ahead is tolerated ...
        (-6, "invalid-token"),  # ... but not more
    ],
)
def test_time_is_checked_against_the_platforms_clock(
    platform: Platform, tenant: Tenant, skew: int, outcome: str
) -> None:
    """The server's clock is ``skew`` seconds after the token's ``iat``."""
    from shardvault.service.auth import Authenticator, SignedRequest
    from shardvault.service.errors import AuthenticationError

    issued = 1_800_000_000
    token = tenant.owner.sign_request("GET", "/v1/workspace", b"", now=issued)
    skewed = Platform(platform.database, platform.audit_signer, clock=lambda: issued + skew)
    request = SignedRequest(tenant.owner.api_key_id, f"Bearer {token}", "GET", "/v1/workspace", b"")
    if outcome == "ok":
        assert Authenticator(skewed).authenticate(request).workspace_id == tenant.workspace_id
    else:
        with pytest.raises(AuthenticationError) as caught:
            Authenticator(skewed).authenticate(request)
        assert caught.value.problem == outcome


def test_the_token_is_verified_without_holding_the_write_lock(
    platform: Platform, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsing the key and checking the signature happen on a read snapshot: on SQLite
    another writer can commit meanwhile (it would wait for the single write lock if the
    check ran inside the nonce's write transaction); then the nonce is consumed once."""
    from shardvault.service import auth
    from shardvault.service.auth import Authenticator, SignedRequest
    from shardvault.service.errors import AuthenticationError

    written: list[bool] = []
    parse = writing_meanwhile(platform, auth.parse_public_key, written)
    monkeypatch.setattr(auth, "parse_public_key", parse)
    token = tenant.owner.sign_request("GET", "/v1/workspace", b"")
    request = SignedRequest(tenant.owner.api_key_id, f"Bearer {token}", "GET", "/v1/workspace", b"")
    authenticator = Authenticator(platform)
    assert authenticator.authenticate(request).workspace_id == tenant.workspace_id
    assert written == [True]
    with pytest.raises(AuthenticationError) as caught:
        authenticator.authenticate(request)
    assert caught.value.problem == "replayed-request"


def test_a_read_route_reads_without_holding_the_write_lock(
    platform: Platform, tenant: Tenant, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GET routes read on a snapshot: a client polling a transaction's status does not
    queue the pipeline's writes behind its reads (on SQLite, one writer at a time)."""
    from shardvault.service import workspaces

    written: list[bool] = []
    get = writing_meanwhile(platform, workspaces.get_workspace, written)
    monkeypatch.setattr(workspaces, "get_workspace", get)
    response = http.get(
        "/v1/workspace", headers=signed_headers(tenant.owner, "GET", "/v1/workspace")
    )
    assert response.status_code == 200
    assert response.json()["id"] == tenant.workspace_id
    assert written == [True]


def test_refused_changes_cannot_be_replayed(
    http: httpx.Client, platform: Platform, tenant: Tenant, refuse: Callable[..., Response]
) -> None:
    """A change records its token's nonce in its own transaction, which a refusal rolls
    back: the nonce is then recorded on its own, so a refused request sent again is a
    replay, not a second try (the state it was refused on may have changed since)."""
    viewer = _viewer(http, tenant)
    forbidden_body = user_body("mallory@acme.example", "owner")
    forbidden = signed_headers(viewer, "POST", "/v1/users", forbidden_body, idempotency_key="rr-1")
    invalid_body = user_body("val@acme.example", "emperor")
    invalid = signed_headers(
        tenant.owner, "POST", "/v1/users", invalid_body, idempotency_key="rr-2"
    )
    path = f"/v1/transactions/{uuid.uuid4()}/cancel"
    missing = signed_headers(tenant.owner, "POST", path, b"{}", idempotency_key="rr-3")
    for method_path, headers, body, status, problem in (
        ("/v1/users", forbidden, forbidden_body, 403, "forbidden"),
        ("/v1/users", invalid, invalid_body, 400, "invalid-request"),
        (path, missing, b"{}", 404, "not-found"),
    ):
        refuse(
            "POST", method_path, headers, body, status=status, problem=problem,
            nonces_may_change=True,
        )  # fmt: skip
        refuse("POST", method_path, headers, body, status=401, problem="replayed-request")


def test_a_change_and_its_nonce_are_one_write_transaction(
    http: httpx.Client, platform: Platform, tenant: Tenant
) -> None:
    """A state-changing request writes once: its nonce with its change (SQLite has one
    writer, so a second transaction per request was a second wait for it)."""
    engine = platform.database.engine
    writes: list[str] = []

    def on_begin(conn: Connection) -> None:
        if not conn.get_execution_options().get(READ_ONLY_OPTION):
            writes.append("begin")

    body = user_body("wendy@acme.example", "viewer")
    headers = signed_headers(tenant.owner, "POST", "/v1/users", body, idempotency_key="one-write")
    event.listen(engine, "begin", on_begin)
    try:
        created = http.post("/v1/users", headers=headers, content=body)
    finally:
        event.remove(engine, "begin", on_begin)
    assert created.status_code == 201, created.text
    assert writes == ["begin"]
    with platform.database.engine.connect() as conn:
        token = headers["Authorization"].removeprefix("Bearer ")
        nonce = jwt.decode(token, options={"verify_signature": False})["nonce"]
        stored = conn.execute(
            text("SELECT count(*) FROM used_nonces WHERE nonce = :n"), {"n": nonce}
        ).scalar_one()
    assert stored == 1


def test_a_token_sent_twice_at_once_changes_once(
    http: httpx.Client, platform: Platform, tenant: Tenant
) -> None:
    """The same signed request twice at the same moment: both pass the checks on a
    snapshot, and the nonce, recorded in each one's write transaction, lets exactly one
    through; the other is refused as a replay and creates nothing."""
    body = user_body("twice@acme.example", "viewer")
    headers = signed_headers(tenant.owner, "POST", "/v1/users", body, idempotency_key="twice")
    start = threading.Barrier(2)

    def send() -> Response:
        start.wait(5)
        return http.post("/v1/users", headers=headers, content=body)

    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(r.status_code for r in pool.map(lambda _: send(), range(2)))
    assert statuses == [201, 401]
    with platform.database.engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM users WHERE email = 'twice@acme.example'")
        ).scalar_one()
    assert count == 1
