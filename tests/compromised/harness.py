"""The compromised-server suite's set-up: real co-signer processes in the production
profile, and the test in the server's place.

Every co-signer is a ``shardvault cosigner run --profile production`` process with its
own data directory, connected out over TLS to a relay whose certificate it pins. The
relay (the server's :class:`~shardvault.cosigner.relay_core.RelayCore`) is served on
127.0.0.1 by this process, and the test holds everything a server host holds: the relay
and its queues, the signed policy bundles, every approval the approvers sent, the public
keys, the chain. So whatever the test sends is what a thief on the server host could
send. What it does not hold is what stays on the co-signers' hosts: their identities,
keyrings and shares.

The ECDSA key is made once, with the co-signers started in the development profile and
the published TEST-ONLY Paillier primes (the production profile refuses them, and fresh
safe primes take minutes); they are then restarted in the production profile, which
holds them to a co-signer directory signed by the admin quorum and to TLS.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from shardvault.cosigner.node import TEST_ONLY_PRIMES_ENV
from shardvault.cosigner.relay_core import RelayCore
from shardvault.cosigner.state import init_node
from shardvault.crypto.bip32 import ExtendedPublicKey
from shardvault.crypto.channel import Directory, PublicIdentity
from shardvault.crypto.group import SECP256K1
from shardvault.custody.backends.local import DEVELOPMENT_COST
from shardvault.custody.secret import SecretBytes
from shardvault.policy import (
    CosignerDirectory,
    PolicyBundle,
    new_bundle,
    parse_address_book,
    parse_admin_set,
    parse_policy,
)
from tests.cosigner.support import ADMIN_SET, ADMINS, PASSPHRASE, VAULT, WORKSPACE
from tests.cosigner_processes import LoopbackRelay, start_cosigners, stop_processes
from tests.tls_support import LOOPBACK, TlsFiles, self_signed_tls

PRIMES = Path(__file__).resolve().parents[1] / "fixtures" / "test_only_paillier.json"
"""TEST-ONLY published safe primes, used only while the key is made (see the module)."""
PASSPHRASE_ENV = "SV_TEST_COMPROMISED_PASSPHRASE"
RESULT_TIMEOUT = 30.0


class CompromisedServer:
    """``parties`` co-signer processes and the relay they poll; the test is the server.

    Security: the test-only passphrase and primes are the only secrets it knows; the
    co-signers' identities and shares stay in their data directories.
    """

    def __init__(self, root: Path, parties: Sequence[int] = (1, 2, 3)) -> None:
        self.root = root
        self.parties = tuple(parties)
        self.dirs = {p: root / f"cosigner-{p}" for p in self.parties}
        self.identities: dict[int, PublicIdentity] = {}
        for party, directory in self.dirs.items():
            with SecretBytes(PASSPHRASE.encode()) as passphrase:
                self.identities[party] = init_node(
                    directory, party, WORKSPACE, ADMIN_SET, passphrase, cost=DEVELOPMENT_COST
                )
        self.tls: TlsFiles = self_signed_tls(root, LOOPBACK)
        self.relay = LoopbackRelay(RelayCore(Directory.of(self.identities)), self.tls)
        self.core = self.relay.core
        self.url = self.relay.url
        self.processes: dict[int, subprocess.Popen[str]] = {}
        self.bundles: list[PolicyBundle] = []
        self._log: IO[str] = open(root / "cosigners.log", "a")

    # --- Processes ------------------------------------------------------------------

    def start(self, profile: str = "production", parties: Sequence[int] | None = None) -> None:
        """Start the co-signers of ``parties`` (all by default) in ``profile``."""
        env = {**os.environ, PASSPHRASE_ENV: PASSPHRASE}
        env.pop(TEST_ONLY_PRIMES_ENV, None)
        # The production profile refuses published primes; only the others get them.
        primes = [] if profile == "production" else ["--unsafe-test-only-primes", str(PRIMES)]
        started = start_cosigners(
            self.relay,
            {p: self.dirs[p] for p in parties or self.parties},
            passphrase_env=PASSPHRASE_ENV,
            env=env,
            log=self._log,
            args=["--profile", profile, "--poll-wait", "2", "--session-timeout", "20", *primes],
        )
        self.processes.update(started)

    def stop(self) -> None:
        """Stop every co-signer (SIGTERM, then SIGKILL after 10 s)."""
        stop_processes(self.processes.values())
        self.processes.clear()

    def close(self) -> None:
        """Stop the co-signers and the relay."""
        self.stop()
        self.relay.close()
        self._log.close()

    # --- Requests -------------------------------------------------------------------

    def submit(self, body: Mapping[str, object], parties: Sequence[int]) -> str:
        """Queue ``body`` for ``parties``; answers its request id."""
        self.core.submit(dict(body), list(parties))
        return str(body["request_id"])

    def results(
        self,
        body: Mapping[str, object],
        parties: Sequence[int],
        timeout: float = RESULT_TIMEOUT,
    ) -> dict[int, dict[str, object]]:
        """The results of ``body`` as the server reads them: until every party in
        ``parties`` answered, or one answered anything but ``ok``; then, as the server
        does, the session is aborted at every party (which would otherwise wait it out)."""
        request_id = str(body["request_id"])
        results = self.core.wait_results(request_id, list(parties), timeout, first_failure=True)
        self.core.forget(request_id)
        complete = all(results.get(p, {}).get("status") == "ok" for p in parties)
        if not complete and "session_id" in body:
            self.core.submit(
                {
                    "kind": "abort",
                    "request_id": f"abort-{secrets.token_hex(8)}",
                    "session_id": body["session_id"],
                },
                list(parties),
            )
        return results

    def run(
        self, body: Mapping[str, object], parties: Sequence[int], timeout: float = RESULT_TIMEOUT
    ) -> dict[int, dict[str, object]]:
        """Submit ``body`` to ``parties`` and read their results (:meth:`results`)."""
        self.submit(body, parties)
        return self.results(body, parties, timeout)

    def run_ok(self, body: Mapping[str, object], parties: Sequence[int]) -> dict[int, dict]:
        results = self.run(body, parties)
        assert {r["status"] for r in results.values()} == {"ok"}, results
        return results

    # --- Policy and keys ------------------------------------------------------------

    def bundle(self, policy: Mapping[str, object], **sections: object) -> PolicyBundle:
        """The next bundle of the chain: ``policy`` and every co-signer in the directory,
        signed by the admin quorum."""
        directory = CosignerDirectory(tuple(sorted(self.identities.items())))
        bundle = new_bundle(
            WORKSPACE,
            parse_policy(policy),
            parse_address_book({"format": "shardvault.address-book/v1", "entries": []}),
            parse_admin_set(ADMIN_SET),
            self.bundles[-1] if self.bundles else None,
            cosigners=directory,
            **sections,  # type: ignore[arg-type]
        )
        for name, key in ADMINS.items():
            bundle = bundle.with_signature(name, key.sign(bundle.signing_message()).signature)
        return bundle

    def install(self, policy: Mapping[str, object], **sections: object) -> PolicyBundle:
        """Sign the next bundle and have every co-signer accept it."""
        bundle = self.bundle(policy, **sections)
        self.run_ok(
            {
                "kind": "policy",
                "request_id": f"policy-{secrets.token_hex(4)}",
                "bundles": [bundle.to_json()],
            },
            self.parties,
        )
        self.bundles.append(bundle)
        return bundle

    def ecdsa_key(self, key_id: str, metadata: Mapping[str, object]) -> ExtendedPublicKey:
        """Make a CGGMP21 key of every party (development profile, TEST-ONLY primes),
        then restart the co-signers in the production profile; answers the root public
        key with its chain code."""
        self.stop()
        self.start("development")
        body = {
            "kind": "dkg",
            "request_id": f"dkg-{key_id}",
            "session_id": secrets.token_hex(32),
            "aux_session_id": secrets.token_hex(32),
            "scheme": "ecdsa-secp256k1",
            "vault": VAULT,
            "key_id": key_id,
            "parties": list(self.parties),
            "min_signers": 2,
            "metadata": dict(metadata),
        }
        results = self.run(body, self.parties, timeout=120)
        assert {r["status"] for r in results.values()} == {"ok"}, results
        self.stop()
        self.start("production")
        first = results[self.parties[0]]
        return ExtendedPublicKey(
            SECP256K1.decode_point(bytes.fromhex(str(first["public_key"]))),
            bytes.fromhex(str(first["chain_code"])),
        )

    def presign(self, key_id: str, path: str, signers: Sequence[int]) -> str:
        """One presignature of ``key_id`` at ``path`` held by ``signers``; its label."""
        label = secrets.token_hex(6)
        self.run_ok(
            {
                "kind": "presign",
                "request_id": f"presign-{label}",
                "session_id": secrets.token_hex(32),
                "vault": VAULT,
                "key_id": key_id,
                "signers": list(signers),
                "presignature": label,
                "path": path,
            },
            signers,
        )
        return label

    def frost_key(
        self, key_id: str, metadata: Mapping[str, object], scheme: str = "eddsa-ed25519"
    ) -> bytes:
        """Make a FROST key (``eddsa-ed25519`` for Solana, ``schnorr-bip340`` for
        taproot) of every party, in the profile the co-signers run (no primes needed);
        answers its public key as the chain encodes it (32 bytes, x-only for BIP340)."""
        body = {
            "kind": "dkg",
            "request_id": f"dkg-{key_id}",
            "session_id": secrets.token_hex(32),
            "scheme": scheme,
            "vault": VAULT,
            "key_id": key_id,
            "parties": list(self.parties),
            "min_signers": 2,
            "metadata": dict(metadata),
        }
        results = self.run_ok(body, self.parties)
        keys = {str(r["public_key"]) for r in results.values()}
        assert len(keys) == 1, results
        return bytes.fromhex(keys.pop())

    def run_each(
        self, body: Mapping[str, object], parties: Sequence[int], timeout: float = RESULT_TIMEOUT
    ) -> dict[int, dict[str, object]]:
        """Submit ``body`` to ``parties`` and wait for every one's own result (a refusal
        by one does not cut the wait short, as it does in :meth:`results`, the server's
        way): for a request each co-signer must refuse by itself. Then as
        :meth:`results`: read, and an unfinished session aborted."""
        self.submit(body, parties)
        self.core.wait_results(str(body["request_id"]), list(parties), timeout)
        return self.results(body, parties, timeout=0)
