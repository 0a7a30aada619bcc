"""The compromised server's REST API, as the SDK meets it: a plain HTTP server on
127.0.0.1 that answers every request with a handler (an :class:`httpx.Request` in, an
:class:`httpx.Response` out), such as the stubs of tests/approval_stub.py and
tests/address_stub.py. The SDK is pointed at its URL and talks to it over a socket, as
it talks to a real server; what the handler answers is whatever the server chose to
show."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

import httpx

Handler = Callable[[httpx.Request], httpx.Response]


class LoopbackApi:
    """Serves ``handle`` on an ephemeral loopback port until :meth:`close`."""

    def __init__(self, handle: Handler) -> None:
        self.requests: list[tuple[str, str]] = []
        """(method, path) of every request served, in order."""
        api = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = httpx.Request(
                    self.command,
                    f"{api.url}{self.path}",
                    headers=list(self.headers.items()),
                    content=self.rfile.read(length),
                )
                api.requests.append((self.command, request.url.path))
                response = handle(request)
                body = response.read()
                self.send_response(response.status_code)
                self.send_header("Content-Type", response.headers.get("content-type", ""))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the test reads :attr:`LoopbackApi.requests` instead."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
