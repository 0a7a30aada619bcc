"""The body-limit middleware on its own, driven with hand-made ASGI messages: what it
reads, what it hands the application, and when it answers in the application's place.
(tests/api/test_body_limit.py runs it in the API behind a real server.)"""

import asyncio
from collections.abc import Iterable
from typing import Any

import pytest
from starlette.responses import PlainTextResponse

from shardvault.body_limit import BodyLimitMiddleware, BodyLimits


class Harness:
    """A middleware around a recording application, fed scripted ``receive`` messages."""

    def __init__(self, limits: BodyLimits) -> None:
        self.app_calls = 0
        self.app_messages: list[dict[str, Any]] = []
        self.refused_limits: list[int] = []
        self.sent: list[dict[str, Any]] = []
        self.received = 0
        self.middleware = BodyLimitMiddleware(self.app, limits=limits, refuse=self.refuse)

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        self.app_calls += 1
        while True:
            message = await receive()
            self.app_messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        await PlainTextResponse("ok", headers={"connection": "keep-alive"})(scope, receive, send)

    async def refuse(self, scope: Any, limit: int) -> Any:
        self.refused_limits.append(limit)
        return PlainTextResponse("too large", status_code=413, headers={"Connection": "keep-alive"})

    def run(
        self,
        messages: Iterable[dict[str, Any]],
        *,
        path: str = "/v1/users",
        headers: Iterable[tuple[bytes, bytes]] = (),
        scope_type: str = "http",
        root_path: str = "",
    ) -> None:
        script = iter(messages)

        async def receive() -> dict[str, Any]:
            self.received += 1
            # After the script, the server reports a disconnect (as uvicorn does).
            return next(script, {"type": "http.disconnect"})

        async def send(message: dict[str, Any]) -> None:
            self.sent.append(message)

        scope = {
            "type": scope_type,
            "method": "POST",
            "path": path,
            "root_path": root_path,
            "headers": list(headers),
        }
        asyncio.run(self.middleware(scope, receive, send))

    @property
    def status(self) -> int | None:
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        return starts[0]["status"] if starts else None

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        return [(bytes(k).lower(), bytes(v)) for k, v in start["headers"]]


def body(data: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.request", "body": data, "more_body": more}


def length(n: int | str) -> tuple[bytes, bytes]:
    return (b"content-length", str(n).encode())


def test_limits_by_path_prefix_longest_first() -> None:
    limits = BodyLimits(100, (("/cosigners/", 1000), ("/cosigners/big/", 5000)))
    assert limits.for_path("/v1/users") == 100
    assert limits.for_path("/cosigners") == 100
    assert limits.for_path("/cosigners/w/v1/relay/1/poll") == 1000
    assert limits.for_path("/cosigners/big/x") == 5000
    reversed_order = BodyLimits(100, (("/cosigners/big/", 5000), ("/cosigners/", 1000)))
    assert reversed_order.for_path("/cosigners/big/x") == 5000


@pytest.mark.parametrize(
    "bad",
    [
        {"default": -1},
        {"default": 10**18},
        {"default": 1, "prefixes": (("/x", -5),)},
        {"default": 1, "prefixes": (("x/", 5),)},
    ],
)
def test_nonsense_limits_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="body limit"):
        BodyLimits(**bad)


def test_a_body_within_the_limit_reaches_the_app_whole() -> None:
    h = Harness(BodyLimits(10))
    h.run([body(b"abc", more=True), body(b"defg", more=True), body(b"hij")])
    assert h.app_calls == 1
    assert h.app_messages == [body(b"abcdefghij")]
    assert h.status == 200
    assert h.refused_limits == []
    # The application's own headers are left as they are.
    assert (b"connection", b"keep-alive") in h.response_headers()


def test_after_the_body_the_app_hears_the_server() -> None:
    """A route that waits for the client to go away (a long poll) still hears it."""
    h = Harness(BodyLimits(10))
    seen: list[dict[str, Any]] = []

    async def waiting_app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())
        seen.append(await receive())

    h.middleware = BodyLimitMiddleware(waiting_app, limits=BodyLimits(10), refuse=h.refuse)
    h.run([body(b"abc")])
    assert seen == [body(b"abc"), {"type": "http.disconnect"}]


def test_a_declared_length_over_the_limit_is_refused_without_reading() -> None:
    h = Harness(BodyLimits(10))
    h.run([body(b"x" * 11)], headers=[length(11)])
    assert h.received == 0
    assert h.app_calls == 0
    assert h.refused_limits == [10]
    assert h.status == 413
    headers = h.response_headers()
    assert (b"connection", b"close") in headers
    assert (b"connection", b"keep-alive") not in headers


def test_an_absurd_declared_length_is_refused_without_parsing() -> None:
    h = Harness(BodyLimits(10))
    h.run([], headers=[length("9" * 5000)])
    assert (h.received, h.app_calls, h.status) == (0, 0, 413)


def test_exactly_the_limit_is_accepted() -> None:
    h = Harness(BodyLimits(10))
    h.run([body(b"x" * 6, more=True), body(b"y" * 4)], headers=[length(10)])
    assert h.app_messages == [body(b"x" * 6 + b"y" * 4)]
    assert h.status == 200


def test_an_unbounded_body_is_refused_at_the_message_that_crosses_the_limit() -> None:
    """Chunked (no length): the messages are counted as they come, and none after the
    one that crosses the limit is asked for."""
    h = Harness(BodyLimits(250))
    endless = (body(b"z" * 100, more=True) for _ in range(10_000))
    h.run(endless)
    assert h.received == 3
    assert h.app_calls == 0
    assert h.refused_limits == [250]
    assert (h.status, (b"connection", b"close") in h.response_headers()) == (413, True)


def test_a_body_longer_than_declared_is_still_counted() -> None:
    """A server that let a body run past its Content-Length (or a malformed length it
    passed on) is bounded by the count all the same."""
    for declared in (length(5), length("five")):
        h = Harness(BodyLimits(10))
        h.run([body(b"x" * 8, more=True), body(b"x" * 8)], headers=[declared])
        assert (h.received, h.app_calls, h.status) == (2, 0, 413)


def test_the_path_chooses_the_limit() -> None:
    limits = BodyLimits(10, (("/cosigners/", 100),))
    relay = Harness(limits)
    relay.run([body(b"x" * 50)], path="/cosigners/w/v1/relay/1/send", headers=[length(50)])
    assert relay.status == 200
    api = Harness(limits)
    api.run([body(b"x" * 50)], path="/v1/users", headers=[length(50)])
    assert (api.status, api.refused_limits) == (413, [10])


def test_the_path_is_matched_without_the_root_path() -> None:
    """Behind a proxy that mounts the server under /sv, the relay is still the relay."""
    limits = BodyLimits(10, (("/cosigners/", 100),))
    relay = Harness(limits)
    relay.run(
        [body(b"x" * 50)],
        path="/sv/cosigners/w/v1/relay/1/send",
        root_path="/sv",
        headers=[length(50)],
    )
    assert relay.status == 200


def test_a_client_gone_mid_body_gets_no_answer_and_the_app_is_not_run() -> None:
    h = Harness(BodyLimits(100))
    h.run([body(b"x" * 10, more=True), {"type": "http.disconnect"}])
    assert (h.app_calls, h.sent) == (0, [])


def test_other_scopes_pass_through() -> None:
    h = Harness(BodyLimits(0))
    calls: list[str] = []

    async def lifespan_app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])

    h.middleware = BodyLimitMiddleware(lifespan_app, limits=BodyLimits(0), refuse=h.refuse)
    h.run([], scope_type="lifespan")
    assert calls == ["lifespan"]
    assert h.received == 0
