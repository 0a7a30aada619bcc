"""The server's embedded co-signers: private files, signed configurations, and an upgrade.

``EmbeddedCosigners`` has each co-signer of a workspace create its data directory and
pin its peers (signing its configuration again with its own identity) and starts three
``shardvault cosigner run`` processes against a relay served here by uvicorn on
127.0.0.1, as ``shardvault server`` serves it. Every file they write is 0600 and every
directory 0700. Data directories written by the previous release (unsigned
configuration) are signed, each by its own co-signer's process, when the workspace is
next opened, and the processes start.
"""

from __future__ import annotations

import json
import socket
import stat
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from shardvault.cosigner.relay_app import relay_hub_router
from shardvault.service.embedded_cosigners import EmbeddedCosigners
from tests.cosigner.support import ADMIN_SET

WORKSPACE = "ws-embedded"


class _Server:
    """The relay hub of ``cosigners`` served by uvicorn in a thread."""

    def __init__(self, cosigners: list[EmbeddedCosigners]) -> None:
        app = FastAPI()
        app.include_router(relay_hub_router(lambda w: cosigners[0].lookup(w)))
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "relay did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


def _cosigners(root: Path, holder: list[EmbeddedCosigners], url: str) -> EmbeddedCosigners:
    cosigners = EmbeddedCosigners(
        root,
        lambda workspace: ADMIN_SET,
        lambda: url,
        poll_wait=0.5,
        start_timeout=30,
    )
    holder[:] = [cosigners]
    return cosigners


@pytest.fixture
def served():
    holder: list[EmbeddedCosigners] = []
    server = _Server(holder)
    yield holder, server
    for cosigners in holder:
        cosigners.close()
    server.stop()


def _modes(directory: Path) -> dict[str, int]:
    return {
        path.relative_to(directory).as_posix(): stat.S_IMODE(path.stat().st_mode)
        for path in [directory, *directory.rglob("*")]
    }


def test_embedded_cosigners_write_private_files_and_start_after_an_upgrade(
    tmp_path, served
) -> None:
    holder, server = served
    cosigners = _cosigners(tmp_path, holder, server.url)
    relay = cosigners.relay(WORKSPACE)
    assert relay.wait_seen([1, 2, 3], 1) == []
    cosigners.close()
    workspace = tmp_path / WORKSPACE
    modes = _modes(workspace)
    for name in ("party-1/cosigner.json", "party-1/cosigner.log", "party-1/run.lock"):
        assert modes[name] == 0o600, name
    for name, mode in modes.items():
        path = workspace / name
        assert mode == (0o700 if path.is_dir() else 0o600), (name, oct(mode))
    # The previous release's data directories: no signature, format v1, mode 0644.
    for party in (1, 2, 3):
        path = workspace / f"party-{party}" / "cosigner.json"
        config = json.loads(path.read_text())
        del config["signature"]
        config["format"] = "shardvault.cosigner/v1"
        path.write_text(json.dumps(config))
        path.chmod(0o644)
    upgraded = _cosigners(tmp_path, holder, server.url)
    relay = upgraded.relay(WORKSPACE)
    assert relay.wait_seen([1, 2, 3], 1) == []
    for party in (1, 2, 3):
        path = workspace / f"party-{party}" / "cosigner.json"
        assert json.loads(path.read_text())["format"] == "shardvault.cosigner/v2"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
