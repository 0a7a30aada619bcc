"""Shared set-up of the co-signer benchmarks: three ``shardvault cosigner run`` processes
long-polling a relay that uvicorn serves on 127.0.0.1, over plain HTTP or over TLS with
the server certificate pinned (``--server-cert``), and the request bodies they sign.

Not a benchmark itself (``make bench`` runs ``bench/bench_*.py``); the scripts next to it
import it (a script's own directory is first on ``sys.path``); the TLS certificate comes
from the tests' support module, with the repository root put on ``sys.path`` here.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import SigningKey

from shardvault.chains import solana
from shardvault.chains.solana import system
from shardvault.cosigner.relay_core import RelayCore
from shardvault.cosigner.state import init_node, pin_peers, unseal_identity
from shardvault.crypto.channel import Directory
from shardvault.custody.backends.local import DEVELOPMENT_COST
from shardvault.custody.secret import SecretBytes
from shardvault.policy import new_bundle, parse_address_book, parse_admin_set, parse_policy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.cosigner_processes import LoopbackRelay, start_cosigners, stop_processes  # noqa: E402
from tests.tls_support import LOOPBACK, TlsFiles, self_signed_tls  # noqa: E402

__all__ = ["LOOPBACK", "TlsFiles", "self_signed_tls"]

PRIMES = ROOT / "tests" / "fixtures" / "test_only_paillier.json"
WORKSPACE, VAULT, PASSPHRASE = "bench", "vault", "bench passphrase"
PARTIES = (1, 2, 3)
ADMIN = SigningKey(hashlib.sha256(b"bench admin").digest())
ADMINS = {
    "quorum": 1,
    "members": [
        {"id": "admin", "algorithm": "ed25519", "public_key": bytes(ADMIN.verify_key).hex()}
    ],
}
POLICY = {
    "format": "shardvault.policy/v1",
    "version": 1,
    "reference_currency": "USD",
    "rules": [
        {"name": "keygen", "when": {"operation": ["key_generation"]}, "action": "allow"},
        {"name": "transfers", "when": {"operation": ["transfer"]}, "action": "allow"},
    ],
}


def metadata() -> dict[str, object]:
    return {
        "initiator": {"type": "api_key", "id": "bench"},
        "source": {"vault": VAULT},
        "created_at": int(time.time()),
    }


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    """The relay's open connections (the co-signers' links), as the server sees them."""

    total: int
    nodelay: int
    tls: tuple[str, ...]
    """``version cipher`` of each TLS connection."""
    loops: tuple[str, ...]
    """The event loops the connections are served by (``uvloop`` or ``asyncio``)."""


class Harness:
    """Three co-signer processes with fresh identities and the relay they poll.

    ``tls``: serve the relay over https with that certificate, which every co-signer pins
    as its only trust anchor (``--server-cert``), as a remote co-signer does; without it,
    plain http on loopback, as the server's embedded co-signers do. ``loop``: uvicorn's
    event loop (``auto``, as ``shardvault server`` has it: uvloop where installed;
    ``asyncio``: the fallback without it).
    """

    def __init__(
        self,
        root: Path,
        *,
        tls: TlsFiles | None = None,
        poll_wait: float = 5.0,
        loop: str = "auto",
        extra_args: Sequence[str] = (),
    ) -> None:
        self.processes: list[subprocess.Popen[str]] = []
        root.mkdir(parents=True, exist_ok=True)
        self.log_path = root / "cosigners.log"
        dirs = {p: root / f"c{p}" for p in PARTIES}
        identities = {}
        for party, directory in dirs.items():
            with SecretBytes(PASSPHRASE.encode()) as passphrase:
                identities[party] = init_node(
                    directory, party, WORKSPACE, ADMINS, passphrase, cost=DEVELOPMENT_COST
                )
        for directory in dirs.values():
            with SecretBytes(PASSPHRASE.encode()) as passphrase:
                pin_peers(directory, identities, unseal_identity(directory, passphrase))
        self.core = RelayCore(Directory.of(identities), keep_transcript=False)
        self.relay = LoopbackRelay(self.core, tls, loop)
        self.url = self.relay.url
        self._log = open(self.log_path, "w")
        env = {**os.environ, "SV_BENCH_PASS": PASSPHRASE}
        try:
            started = start_cosigners(
                self.relay,
                dirs,
                passphrase_env="SV_BENCH_PASS",
                env=env,
                log=self._log,
                args=[
                    "--poll-wait",
                    str(poll_wait),
                    "--unsafe-test-only-primes",
                    str(PRIMES),
                    *extra_args,
                ],
            )
        except BaseException:
            self.close()
            raise
        self.processes = list(started.values())

    def run(
        self, body: dict[str, object], parties: Sequence[int], timeout: float = 120.0
    ) -> dict[int, dict[str, object]]:
        """Queue ``body`` for ``parties`` and answer their results once all are ``ok``
        (exits the benchmark otherwise)."""
        request_id = str(body["request_id"])
        self.core.submit(body, list(parties))
        results = self.core.wait_results(request_id, list(parties), timeout)
        self.core.forget(request_id)
        statuses = {r["status"] for r in results.values()}
        if statuses != {"ok"} or len(results) != len(parties):
            raise SystemExit(f"request {body['kind']} failed: {results}")
        return results

    def connections(self) -> ConnectionReport:
        """The relay's open connections: how many have ``TCP_NODELAY`` set on the server's
        socket (without it, each response written in two pieces waits for a delayed ACK),
        the TLS version and cipher of each, and the event loop serving them."""
        total = nodelay = 0
        tls = []
        loops = set()
        for connection in list(self.relay.server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is None or transport.is_closing():
                continue
            total += 1
            loops.add("uvloop" if type(transport).__module__.startswith("uvloop") else "asyncio")
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY):
                nodelay += 1
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None:
                cipher = ssl_object.cipher()
                tls.append(f"{ssl_object.version()} {cipher[0] if cipher else '?'}")
        return ConnectionReport(total, nodelay, tuple(tls), tuple(sorted(loops)))

    def close(self) -> None:
        """Stop the co-signers (SIGTERM, then SIGKILL after 10 s) and the relay."""
        stop_processes(self.processes)
        self.relay.close()
        self._log.close()


def install_policy(harness: Harness) -> None:
    """Have every co-signer pin the admin-signed bundle that allows the benchmark's
    key generations and transfers."""
    bundle = new_bundle(
        WORKSPACE,
        parse_policy(POLICY),
        parse_address_book({"format": "shardvault.address-book/v1", "entries": []}),
        parse_admin_set(ADMINS),
    )
    bundle = bundle.with_signature("admin", ADMIN.sign(bundle.signing_message()).signature)
    harness.run({"kind": "policy", "request_id": "policy", "bundles": [bundle.to_json()]}, PARTIES)


def dkg_body(scheme: str, key_id: str) -> dict[str, object]:
    """A 2-of-3 key generation request (CGGMP21 adds its auxiliary-info session)."""
    body: dict[str, object] = {
        "kind": "dkg",
        "request_id": f"dkg-{key_id}",
        "session_id": secrets.token_hex(32),
        "scheme": scheme,
        "vault": VAULT,
        "key_id": key_id,
        "parties": list(PARTIES),
        "min_signers": 2,
        "metadata": metadata(),
    }
    if scheme == "ecdsa-secp256k1":
        body["aux_session_id"] = secrets.token_hex(32)
    return body


def sign_body(
    chain: str, payload: bytes, signers: Sequence[int], key_id: str, **extra: object
) -> dict[str, object]:
    return {
        "kind": "sign",
        "request_id": secrets.token_hex(8),
        "session_id": secrets.token_hex(32),
        "vault": VAULT,
        "key_id": key_id,
        "signers": list(signers),
        "chain": chain,
        "payload": payload.hex(),
        "metadata": metadata(),
        "approvals": [],
        **extra,
    }


def presign_body(key_id: str, signers: Sequence[int], label: str) -> dict[str, object]:
    return {
        "kind": "presign",
        "request_id": f"presign-{label}",
        "session_id": secrets.token_hex(32),
        "vault": VAULT,
        "key_id": key_id,
        "signers": list(signers),
        "presignature": label,
    }


def solana_message(key: bytes, lamports: int) -> bytes:
    ours = solana.Pubkey(key)
    to = solana.Pubkey(hashlib.sha256(b"bench destination").digest())
    message = solana.compile_legacy_message(
        ours, [system.transfer(ours, to, lamports)], secrets.token_bytes(32)
    )
    return solana.serialize_message(message)
