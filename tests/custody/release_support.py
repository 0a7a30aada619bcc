"""Helpers for tests of the key-release service: a served, recording service on 127.0.0.1.

``ServedRelease`` runs the service's ASGI app under uvicorn in a thread, on a socket
bound to 127.0.0.1, and records every byte of every request and response that crosses
it, so tests can search that traffic for plaintext keys. ``stop()`` ends the server.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn

from shardvault.custody.attestation.devenclave import DevelopmentRoot, measure
from shardvault.custody.attestation.nitro import NitroVerifier, PcrPolicy
from shardvault.custody.backends.local import DEVELOPMENT_COST, LocalBackend
from shardvault.custody.release_service import KeyReleaseService, create_release_app
from shardvault.custody.secret import SecretBytes

PINNED_PCRS = (0, 1, 2, 3, 8)
"""The PCRs every test policy pins."""


def pinned_policy(root: DevelopmentRoot, role: str = "cosigner") -> PcrPolicy:
    """The PCR policy of the code installed here, measured in the test process."""
    pcrs = measure(role=role, root_der=root.der)
    return PcrPolicy(expected={i: pcrs[i] for i in PINNED_PCRS})


def local_service(
    directory: Path,
    root: DevelopmentRoot,
    *,
    role: str = "cosigner",
    nonce_ttl: float = 60.0,
    max_age: float = 60.0,
    policy: PcrPolicy | None = None,
) -> KeyReleaseService:
    """A release service over a fresh ``local`` keyring (cheap Argon2 cost), pinning
    ``policy`` (default: the measurements of the code installed here)."""
    backend = LocalBackend.initialize(
        directory, SecretBytes(b"release service passphrase"), DEVELOPMENT_COST
    )
    verifier = NitroVerifier(
        root.pem, allow_development_root=True, max_age=timedelta(seconds=max_age)
    )
    return KeyReleaseService(
        backend, verifier, policy or pinned_policy(root, role), nonce_ttl=nonce_ttl
    )


@dataclass
class Exchange:
    """One HTTP exchange as it crossed the service."""

    path: str
    request: bytes
    status: int
    response: bytes


class ServedRelease:
    """The release service served by uvicorn on 127.0.0.1, recording its traffic."""

    def __init__(self, service: KeyReleaseService) -> None:
        self.service = service
        self.exchanges: list[Exchange] = []
        inner = create_release_app(service)

        async def recording(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            request = bytearray()
            response = bytearray()
            status = [0]

            async def tap_receive() -> Any:
                message = await receive()
                request.extend(message.get("body", b""))
                return message

            async def tap_send(message: Any) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                    for name, value in message.get("headers", []):
                        response.extend(name + b": " + value + b"\n")
                else:
                    response.extend(message.get("body", b""))
                    if not message.get("more_body"):
                        # Recorded before the client can see the end of the answer, so
                        # a test reading the record after a call always finds it.
                        self.exchanges.append(
                            Exchange(scope["path"], bytes(request), status[0], bytes(response))
                        )
                await send(message)

            await inner(scope, tap_receive, tap_send)

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(recording, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "release service did not start"
            time.sleep(0.02)

    @property
    def traffic(self) -> bytes:
        """Every byte of every request and response so far."""
        return b"".join(e.request + e.response for e in self.exchanges)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
        self.service.close()
