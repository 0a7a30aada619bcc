"""Creating one workspace's three embedded co-signers (what ``shardvault server`` does
before a workspace's first key generation).

* ``processes``: what the server does, :func:`create_cosigners`: three ``cosigner init
  --generate-passphrase-file`` processes side by side (each makes its passphrase, seals
  its keyring and identity), then three ``cosigner pin --passphrase-file`` processes
  (each unlocks its node and pins the peers);
* ``in-process``: the same keyrings and identities made and pinned in this process, one
  party after another (``init_node`` and ``pin_peers``), with the passphrases in memory;
  the cost of creation without the process starts and the second unlock;
* ``start-up``: one ``python -m shardvault.cli.cosigner`` that does nothing but start.

Both use the default Argon2id cost (64 MiB, 3 passes, 4 lanes). Prints median and
spread over ``--count`` runs (default 7); the machine's load shows in the spread.

Run: ``.venv/bin/python bench/bench_embedded_create.py [--count N]``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from shardvault.cosigner.state import init_node, pin_peers, unseal_identity
from shardvault.custody.secret import SecretBytes
from shardvault.service.embedded_cosigners import COSIGNER_COMMAND, create_cosigners

ADMINS: dict[str, object] = {
    "quorum": 1,
    "members": [{"id": "admin", "algorithm": "ed25519", "public_key": "11" * 32}],
}
PARTIES = (1, 2, 3)


def _processes(root: Path) -> None:
    create_cosigners(root / "ws", "ws", ADMINS, PARTIES, env=dict(os.environ), timeout=120)


def _in_process(root: Path) -> None:
    identities = {}
    passphrases = {party: secrets.token_urlsafe(32).encode() for party in PARTIES}
    for party in PARTIES:
        with SecretBytes(passphrases[party]) as passphrase:
            identities[party] = init_node(root / f"party-{party}", party, "ws", ADMINS, passphrase)
    for party in PARTIES:
        data_dir = root / f"party-{party}"
        with SecretBytes(passphrases[party]) as passphrase:
            pin_peers(data_dir, identities, unseal_identity(data_dir, passphrase))


def _start_up(root: Path) -> None:
    subprocess.run([*COSIGNER_COMMAND, "--help"], check=True, capture_output=True)


def _measure(name: str, run: Callable[[Path], None], count: int) -> None:
    seconds = []
    for _ in range(count):
        with tempfile.TemporaryDirectory(prefix="sv-bench-create-") as tmp:
            started = time.perf_counter()
            run(Path(tmp))
            seconds.append(time.perf_counter() - started)
    print(
        f"{name:<11} median {statistics.median(seconds):5.2f} s  "
        f"min {min(seconds):5.2f} s  max {max(seconds):5.2f} s  ({count} runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=7)
    args = parser.parse_args()
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")
    # Alternated, so that a change in the machine's load falls on both.
    for _ in range(2):
        _measure("processes", _processes, max(args.count // 2, 1))
        _measure("in-process", _in_process, max(args.count // 2, 1))
    _measure("start-up", _start_up, args.count)


if __name__ == "__main__":
    main()
