"""Attested unlock benchmark: what one share unlock costs in each co-signer unlock mode.

Measures, in one process on loopback (the key-release service served by uvicorn on
127.0.0.1 over a ``local`` keyring):

* ``passphrase``: ``ShareCustody.load_share`` with an unlocked local keyring;
* ``attested``: ``AttestedShareCustody.load_share`` through the service over HTTP (nonce,
  a development attestation document, verification, release, RSA-OAEP decryption,
  AES-GCM open), with one recipient key per process;
* ``attested, fresh recipient``: the same with a new RSA-3072 key pair for every unlock;
* the service side alone: ``KeyReleaseService.decrypt`` in process (verification and
  release, no HTTP).

Run: ``.venv/bin/python bench/bench_attested_unlock.py [--count N]``.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.custody.release_support import ServedRelease, local_service

from shardvault.custody.attestation.devenclave import DevelopmentEnclave, DevelopmentRoot
from shardvault.custody.attested import AttestedShareCustody
from shardvault.custody.envelope import ShareAddress, ShareSlot, inspect
from shardvault.custody.release_service import HttpReleaseClient
from shardvault.custody.secret import SecretBytes
from shardvault.custody.shares import ShareCustody
from shardvault.custody.sharestore.local import LocalShareStore

ADDRESS = ShareAddress("ws", "vault", "key", "1")


def _timed(count: int, action: Callable[[], None]) -> tuple[float, float]:
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        action()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.99) - 1)]


def _unlock(custody: ShareCustody | AttestedShareCustody) -> Callable[[], None]:
    return lambda: custody.load_share(ADDRESS).share.wipe()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = DevelopmentRoot.generate()
        served = ServedRelease(local_service(Path(tmp) / "kek", root))
        client = HttpReleaseClient(served.url, served.service.public_key)
        try:
            enclave = DevelopmentEnclave(root, role="cosigner")
            share = SecretBytes(secrets.token_bytes(200))
            attested = AttestedShareCustody(LocalShareStore(Path(tmp) / "a"), client, enclave)
            attested.store_share(ShareSlot(ADDRESS, 1), share, 0)
            fresh = AttestedShareCustody(
                LocalShareStore(Path(tmp) / "a"), client, enclave, recipient_per_unlock=True
            )
            local = ShareCustody(served.service.backend, LocalShareStore(Path(tmp) / "p"))
            local.store_share(ShareSlot(ADDRESS, 1), share, 0)
            blob = attested.load_blob(ADDRESS)[1]
            header = inspect(blob)

            def service_only() -> None:
                document = enclave.attest(served.service.nonce())
                served.service.decrypt(header.wrapped_key, header.context(), document)

            rows = [
                ("passphrase (local keyring, unlocked)", args.count, _unlock(local)),
                ("attested over HTTP", args.count, _unlock(attested)),
                ("attested, fresh RSA-3072 recipient", max(5, args.count // 5), _unlock(fresh)),
                ("service side in process (attest + verify + release)", args.count, service_only),
            ]
            print(f"{'unlock of one share':55} {'p50 ms':>8} {'p99 ms':>8}")
            for name, count, action in rows:
                p50, p99 = _timed(count, action)
                print(f"{name:55} {p50:8.2f} {p99:8.2f}")
        finally:
            client.close()
            served.stop()


if __name__ == "__main__":
    main()
