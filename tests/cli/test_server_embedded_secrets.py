"""``shardvault server`` with its embedded co-signers keeps every co-signer secret out of
the server's hands (DESIGN.md invariant 10, as far as one host allows) and says that one
host holds every share.

A real server process creates a workspace's co-signers (their first vault: a FROST
Ed25519 key generation). Then: no file under the server's data directory, nothing the
server logged, and neither the server's nor any co-signer's environment or command line
holds a co-signer's passphrase (searched raw, as hex, as base64 and as the random bytes
it encodes); the passphrase files are 0600, in 0700 directories outside the data
directory; the start-up log warns and ``/v1/health`` reports a single-host,
development-only signer.
"""

from __future__ import annotations

import base64
import json
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shardvault.cli.main import cli
from shardvault.sdk import ApiKeyCredentials, ShardvaultClient
from shardvault.sdk.custody import sign_bundle
from tests.cli.process_support import cosigner_pids

WARNING = "development only: one host holds every key share of every workspace;"

POLICY = {
    "format": "shardvault.policy/v1",
    "version": 1,
    "reference_currency": "USD",
    "rules": [
        {"name": "key-generation", "when": {"operation": ["key_generation"]}, "action": "allow"}
    ],
}


def _forms(passphrase: bytes) -> list[bytes]:
    """Every encoding of a passphrase searched for: itself, hex, base64, and the random
    bytes its URL-safe base64 encodes (with their hex)."""
    random = base64.urlsafe_b64decode(passphrase + b"=" * (-len(passphrase) % 4))
    forms = [passphrase, random]
    for value in (passphrase, random):
        forms += [
            value.hex().encode(),
            value.hex().upper().encode(),
            base64.b64encode(value).rstrip(b"="),
            base64.urlsafe_b64encode(value).rstrip(b"="),
        ]
    return forms


def _process_text(pid: int) -> bytes:
    """What another user of the host may see of a process (its command line) and what
    the same user may (its environment)."""
    proc = Path("/proc") / str(pid)
    return (proc / "environ").read_bytes() + b"\0" + (proc / "cmdline").read_bytes()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, dict[str, str]]]:
    data = tmp_path / "data"
    created = CliRunner().invoke(
        cli,
        ["init", "--name", "acme", "--owner-name", "Olivia", "--owner-email", "o@acme.example",
         "--key-out", str(tmp_path / "owner.pem"), "--data-dir", str(data), "--json"],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "shardvault.cli.main", "server", "--port", "0",
             "--data-dir", str(data), "--json"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
        )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, (tmp_path / "server.log").read_text()
        yield process, str(json.loads(line)["url"]), json.loads(created.stdout)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.mark.slow
def test_embedded_cosigners_keep_their_passphrases_from_the_server(
    tmp_path: Path, server: tuple[subprocess.Popen[bytes], str, dict[str, str]]
) -> None:
    process, url, owner = server
    data, home = tmp_path / "data", tmp_path / "data-cosigners"

    health = httpx.get(f"{url}/v1/health").json()
    assert health["status"] == "ok"
    signer = health["signer"]
    assert (signer["mode"], signer["single_host"], signer["development_only"]) == (
        "embedded-cosigners",
        True,
        True,
    )
    assert signer["warning"].startswith(WARNING)

    admin = Ed25519PrivateKey.generate()
    members = [
        {
            "id": "admin",
            "algorithm": "ed25519",
            "public_key": admin.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex(),
        }
    ]
    credentials = ApiKeyCredentials.from_file(owner["api_key_id"], tmp_path / "owner.pem")
    with ShardvaultClient(url, credentials) as client:
        policy = client.create_policy(document=POLICY)
        proposed = client.propose_policy(policy.id, admins={"quorum": 1, "members": members})
        assert proposed.signing_message is not None
        client.sign_policy(
            policy.id, signer="admin", signature=sign_bundle(admin, proposed.signing_message)
        )
        client.activate_policy(policy.id)
        vault = client.create_vault(name="ops", schemes=["eddsa-ed25519"])
        assert vault.keys[0].min_signers == 2

    # The layout: 0700 directories outside the data directory, 0600 passphrase files.
    workspace = home / owner["workspace_id"]
    assert not home.is_relative_to(data)
    assert not (data / "cosigners").exists()
    passphrases = []
    for directory in (home, workspace):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for party in (1, 2, 3):
        party_dir = workspace / f"party-{party}"
        assert stat.S_IMODE(party_dir.stat().st_mode) == 0o700
        secret = party_dir / "passphrase"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        passphrases.append(secret.read_bytes())
        assert any(p.is_file() for p in (party_dir / "shares").rglob("*"))
    assert len(set(passphrases)) == 3
    assert all(len(p) >= 40 for p in passphrases)
    needles = [form for passphrase in passphrases for form in _forms(passphrase)]

    # Neither the server's nor a co-signer's environment or command line.
    cosigners = cosigner_pids(home)
    assert len(cosigners) == 3
    for pid in (process.pid, *cosigners):
        seen = _process_text(pid)
        assert not [n for n in needles if n in seen], f"a passphrase in process {pid}"

    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert cosigner_pids(home) == []

    # Nothing in the data directory (database, write-ahead log, keys), byte by byte,
    # once the server has stopped and written everything out; nor what it logged.
    searched = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in searched)
    for path in [*searched, tmp_path / "server.log"]:
        content = path.read_bytes()
        assert not [n for n in needles if n in content], f"a passphrase in {path}"
    log = (tmp_path / "server.log").read_text()
    assert log.count(WARNING) == 1
