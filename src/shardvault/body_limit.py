"""Request body limits, enforced while the body arrives: a pure ASGI middleware.

A framework reads a request's whole body before it runs the route (FastAPI parses a
declared body parameter before any dependency, authentication included), so a limit
checked by the route comes after the memory is spent. :class:`BodyLimitMiddleware` sits
in front of the application instead. It refuses at once a request whose
``Content-Length`` is over the limit, without reading any of its body; otherwise it
counts the bytes of the ``http.request`` messages as they arrive (chunked bodies, or a
client that sends more than it declared to a lenient server) and refuses as soon as the
count passes the limit, without reading the rest. Only a body within its limit reaches
the application, replayed from memory as one message, so no route, parser or
authentication ever runs on a body that is too large.

The limit depends on the path (:class:`BodyLimits`: a default, and larger or smaller
limits for path prefixes, longest prefix first): the co-signers' relay carries protocol
rounds far larger than any API request. The answer to a refused request is made by the
application's own error mapper (the ``refuse`` callback), and carries
``Connection: close``, so the server drops the unread rest of the body with the
connection rather than reading it.

This module belongs to no layer of DESIGN.md: the API application and the standalone
relay application (``shardvault.cosigner.relay_app``) both install it.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Refusal = Callable[[Scope, int], Awaitable[ASGIApp]]
"""Makes the answer to a request whose body is over ``limit`` bytes: an ASGI app (such
as a Starlette response) that the middleware runs in the application's place."""

_CONTENT_LENGTH = b"content-length"
_MAX_LENGTH_DIGITS = 18
"""A declared length of more digits than this is over any limit (and is not parsed)."""
_OVER_ANY_LIMIT = 1_000_000_000_000_000_000
"""10**18: more than any limit (:class:`BodyLimits` keeps them below it)."""


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """The largest request body accepted, in bytes, by path.

    ``prefixes`` pairs a path prefix (such as ``"/cosigners/"``) with its own limit; the
    longest prefix that the request's path starts with wins, and ``default`` applies to
    every other path. Prefixes are matched on the decoded path without the application's
    ``root_path``: the path the router matches routes on.
    """

    default: int
    prefixes: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        for limit in (self.default, *(limit for _, limit in self.prefixes)):
            if not 0 <= limit < _OVER_ANY_LIMIT:
                raise ValueError(f"a body limit must be 0 to 10**18 - 1 bytes, not {limit}")
        if any(not prefix.startswith("/") for prefix, _ in self.prefixes):
            raise ValueError("a body limit's path prefix must start with '/'")

    def for_path(self, path: str) -> int:
        """The limit of a request to ``path``."""
        chosen, chosen_length = self.default, -1
        for prefix, limit in self.prefixes:
            if path.startswith(prefix) and len(prefix) > chosen_length:
                chosen, chosen_length = limit, len(prefix)
        return chosen


class BodyLimitMiddleware:
    """Refuses HTTP requests whose body is over its path's limit before the wrapped
    application sees them (module docstring). Other scopes (lifespan, websockets) pass
    through untouched.

    Security: holds at most the limit of one request's body in memory per request (plus
    the one message that crossed it, which is dropped); the declared length is never
    trusted to be small, only to be large.
    """

    def __init__(self, app: ASGIApp, *, limits: BodyLimits, refuse: Refusal) -> None:
        self._app = app
        self._limits = limits
        self._refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self._limits.for_path(_route_path(scope))
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            # Nothing is read: with "Expect: 100-continue" the client is not even told
            # to start sending.
            await self._answer_refusal(scope, receive, send, limit)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away before its body was complete: nobody to answer.
                return
            chunk = message.get("body", b"")
            if len(body) + len(chunk) > limit:
                await self._answer_refusal(scope, receive, send, limit)
                return
            body += chunk
            if not message.get("more_body", False):
                break
        await self._app(scope, _Replay(bytes(body), receive), send)

    async def _answer_refusal(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = await self._refuse(scope, limit)

        async def send_closing(message: Message) -> None:
            # The rest of the body is not read: the connection cannot carry another
            # request, and the server closes it instead of reading on.
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"connection"
                ]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await response(scope, receive, send_closing)


class _Replay:
    """The ``receive`` of a request whose body was read: the body as one message, then
    whatever the server says next (a disconnect, for a route that waits for one)."""

    def __init__(self, body: bytes, receive: Receive) -> None:
        self._body: bytes | None = body
        self._receive = receive

    async def __call__(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        return await self._receive()


def _route_path(scope: Scope) -> str:
    """The path the router matches: without the ``root_path`` a proxy mounts the
    application under, which the server may include in ``path``."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):
        return path[len(root) :]
    return path


def _declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``, or ``None`` when it has none (or one the server
    let through that is not a number: the count of the bytes that arrive still holds)."""
    for name, value in scope.get("headers", ()):
        if name.lower() == _CONTENT_LENGTH:
            text = bytes(value).strip()
            if not text.isdigit():
                return None
            if len(text) > _MAX_LENGTH_DIGITS:
                return _OVER_ANY_LIMIT
            return int(text)
    return None
