"""Request bodies over the limit, against a real uvicorn server on 127.0.0.1: a declared
400 MiB body and a chunked body that never ends are both answered 413 (problem+json)
after the server has read at most a little over the limit, before any route or
authentication runs, and the server's memory does not grow with what the client sends.
The co-signers' relay routes keep their own, larger limit."""

import json
import select
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from shardvault.api import create_app
from shardvault.api.app import MAX_BODY_BYTES
from shardvault.cosigner.relay_app import MAX_BODY_BYTES as RELAY_MAX_BODY_BYTES
from shardvault.cosigner.relay_app import relay_hub_router
from shardvault.service.platform import Platform
from shardvault.store.models import SYSTEM_CHAIN
from tests.api.support import SwitchableApp, Tenant, refusals

CHUNK = b"x" * (64 * 1024)
SLACK = 512 * 1024
"""How far past the limit the server may have read: the one message that crossed it
(uvicorn hands over at most what it buffered, 64 KiB plus one socket read)."""

MIB = 1 << 20


class CountingApp:
    """Wraps the application and counts the body bytes it takes from the server."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.received = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def counted() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


@pytest.fixture
def served(
    platform: Platform, _loopback: tuple[SwitchableApp, str]
) -> Iterator[tuple[CountingApp, str]]:
    """The API (with relay routes mounted, as ``shardvault server`` has them) behind a
    byte counter, served on loopback."""
    switch, url = _loopback
    counting = CountingApp(create_app(platform, extra_routers=[relay_hub_router(lambda _: None)]))
    switch.target = counting
    try:
        yield counting, url
    finally:
        switch.target = None


def resident_mib() -> float:
    """This process's resident memory (the server runs in one of its threads)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def send_raw(url: str, head: bytes, chunks: Iterator[bytes]) -> tuple[bytes, int]:
    """Send ``head`` then ``chunks`` until the server answers (or stops reading); return
    the server's answer and how many body bytes were sent."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    sent = 0
    answer = bytearray()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head)
        for chunk in chunks:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            sent += len(chunk)
        try:
            while data := sock.recv(65536):
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    return bytes(answer), sent


def parse_answer(answer: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return status, headers, json.loads(body) if body else {}


def assert_body_too_large(answer: bytes, limit: int) -> None:
    status, headers, problem = parse_answer(answer)
    assert status == 413, answer[:500]
    assert headers["content-type"].startswith("application/problem+json")
    assert headers["connection"] == "close"
    assert problem["type"] == "urn:shardvault:problem:body-too-large"
    assert str(limit) in problem["detail"]


def test_a_declared_400_mib_body_is_refused_before_any_of_it_is_read(
    served: tuple[CountingApp, str], tenant: Tenant
) -> None:
    counting, url = served
    declared = 400 * MIB
    head = (
        b"POST /v1/users HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"X-API-Key: " + tenant.owner.api_key_id.encode() + b"\r\n"
        b"Content-Length: " + str(declared).encode() + b"\r\n\r\n"
    )
    before = resident_mib()
    answer, sent = send_raw(url, head, (CHUNK for _ in range(declared // len(CHUNK))))
    assert_body_too_large(answer, MAX_BODY_BYTES)
    assert counting.received == 0
    assert sent < declared
    assert resident_mib() - before < 32


def test_a_chunked_body_that_never_ends_is_refused_just_past_the_limit(
    served: tuple[CountingApp, str],
) -> None:
    counting, url = served
    head = (
        b"POST /v1/users HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    framed = b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n"
    before = resident_mib()
    # At most 64 MiB, and never the final empty chunk: the body has no end.
    answer, sent = send_raw(url, head, (framed for _ in range(1024)))
    assert_body_too_large(answer, MAX_BODY_BYTES)
    assert MAX_BODY_BYTES < counting.received <= MAX_BODY_BYTES + SLACK
    assert sent < 64 * MIB
    assert resident_mib() - before < 32


def test_a_body_at_the_limit_reaches_the_route_and_one_byte_more_does_not(
    served: tuple[CountingApp, str], platform: Platform, tenant: Tenant
) -> None:
    """At the limit the request is authenticated and validated as usual (here refused
    for its content); one byte more is a 413 recorded in the audit log, and no route
    saw it (an authentication failure would have been recorded instead)."""
    counting, url = served
    prefix, suffix = b'{"name": "', b'", "email": "a@acme.example", "role": "viewer"}'
    at_limit = prefix + b"x" * (MAX_BODY_BYTES - len(prefix) - len(suffix)) + suffix
    assert len(at_limit) == MAX_BODY_BYTES
    headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=url, timeout=30) as http:
        ok = http.post("/v1/users", content=at_limit, headers=headers)
        assert (ok.status_code, ok.json()["type"]) == (
            401,
            "urn:shardvault:problem:missing-credentials",
        )
    assert counting.received == MAX_BODY_BYTES
    before = len(refusals(platform, SYSTEM_CHAIN))
    over = at_limit + b" "
    answer, _ = send_raw(
        url,
        b"POST /v1/users HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(over)).encode() + b"\r\n\r\n",
        iter([over]),
    )
    assert_body_too_large(answer, MAX_BODY_BYTES)
    events = refusals(platform, SYSTEM_CHAIN)
    assert len(events) == before + 1
    assert json.loads(events[-1].details)["problem"] == "body-too-large"


def test_the_relay_routes_keep_their_larger_limit(served: tuple[CountingApp, str]) -> None:
    """2 MiB is over the API's limit but within the relay's: under /cosigners/ it reaches
    the route (no relay serves this workspace: 404); over the relay's limit it does not."""
    counting, url = served
    body = b"{" + b" " * (2 * MIB) + b"}"
    with httpx.Client(base_url=url, timeout=30) as http:
        relayed = http.post("/cosigners/nobody/v1/relay/1/poll", content=body)
        assert relayed.status_code == 404
        assert counting.received == len(body)
    answer, _ = send_raw(
        url,
        b"POST /cosigners/nobody/v1/relay/1/poll HTTP/1.1\r\nHost: test\r\n"
        b"Content-Length: " + str(RELAY_MAX_BODY_BYTES + 1).encode() + b"\r\n\r\n",
        iter([CHUNK]),
    )
    assert_body_too_large(answer, RELAY_MAX_BODY_BYTES)
    answer, _ = send_raw(
        url,
        b"POST /v1/users HTTP/1.1\r\nHost: test\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n",
        iter([body]),
    )
    assert_body_too_large(answer, MAX_BODY_BYTES)
