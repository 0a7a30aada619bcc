"""Signing latency of three co-signer processes: plain HTTP on loopback against TLS with
the server certificate pinned, in one run.

Two relays, each served by uvicorn on 127.0.0.1 and polled by its own three ``shardvault
cosigner run`` processes (bench/cosigner_harness.py):

* **plain**: ``--coordinator http://127.0.0.1:PORT``, the shape of the server's embedded
  co-signers;
* **TLS**: ``--coordinator https://127.0.0.1:PORT --server-cert cert.pem``, the shape of
  remote co-signers; the certificate is self-signed for 127.0.0.1 (IP SAN) by this
  script, and each co-signer pins it as its only trust anchor.

Measured end to end through the relay (every message signed, direct ones encrypted,
every request checked against the signed policy by every signer), one request at a time:

* FROST Ed25519 2-of-3 signing of Solana transfers (two rounds);
* CGGMP21 2-of-3 presigning;
* CGGMP21 online signing of Ethereum transactions from those presignatures (the pool is
  filled first, so a signature is one online round).

The two modes are interleaved round by round, and the order inside a round alternates
(plain then TLS, TLS then plain), so the machine's drift and the cost of going second
fall on both alike; ``paired`` is the median over rounds of the TLS/plain ratio of the
round's two samples. Two warm-up requests of each kind per mode are not counted. CGGMP21
auxiliary info uses the TEST-ONLY published primes, so no prime search runs.

Every signature is verified before it counts (Ed25519 with PyNaCl; each Ethereum
transaction is assembled and its signer recovered with eth-account, and must be the
address of the generated key): any failure ends the run with a non-zero status and no
figures.

Run: ``.venv/bin/python bench/bench_remote_cosigners.py [--count N]`` (N presignatures
and N Ethereum signatures per mode, 4N Solana signatures per mode).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import ssl
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account
from eth_keys.datatypes import PublicKey
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from cosigner_harness import (
    Harness,
    TlsFiles,
    dkg_body,
    install_policy,
    presign_body,
    self_signed_tls,
    sign_body,
    solana_message,
)
from shardvault.chains import ethereum
from shardvault.chains.amounts import Wei

SIGNERS = (1, 2)
WARMUP = 2
FROST_PER_ECDSA = 4
TO = "0x2222222222222222222222222222222222222222"

FROST, PRESIGN, ECDSA = "frost", "presign", "ecdsa"
LABELS = {
    FROST: "FROST Ed25519 sign (Solana)",
    PRESIGN: "CGGMP21 presign",
    ECDSA: "CGGMP21 online sign (Ethereum)",
}


@dataclass
class Mode:
    """One relay and its co-signers, with their keys and the latencies measured."""

    name: str
    harness: Harness
    frost_key: bytes = b""
    address: str = ""
    setup: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)


def _start(
    name: str, root: Path, tls: TlsFiles | None, loop: str, stack: contextlib.ExitStack
) -> Mode:
    """Start a relay and its co-signers (stopped when ``stack`` closes), install the
    policy, and generate one FROST and one CGGMP21 key."""
    began = time.perf_counter()
    mode = Mode(name, Harness(root, tls=tls, loop=loop))
    stack.callback(mode.harness.close)
    mode.setup["start-up (3 processes + relay)"] = time.perf_counter() - began
    install_policy(mode.harness)
    began = time.perf_counter()
    results = mode.harness.run(dkg_body("eddsa-ed25519", "sol"), (1, 2, 3))
    mode.setup["FROST 2-of-3 key generation"] = time.perf_counter() - began
    mode.frost_key = _agreed(results, "public_key")
    began = time.perf_counter()
    results = mode.harness.run(dkg_body("ecdsa-secp256k1", "eth"), (1, 2, 3))
    mode.setup["CGGMP21 aux info + key generation"] = time.perf_counter() - began
    public = _agreed(results, "public_key")
    # The address is computed by eth-keys, not by shardvault, for the check to mean much.
    mode.address = PublicKey.from_compressed_bytes(public).to_checksum_address()
    return mode


def _agreed(results: Mapping[int, Mapping[str, object]], name: str) -> bytes:
    """The hex value every party reported under ``name`` (exits if they differ or it is
    not hex)."""
    values = {str(r.get(name)) for r in results.values()}
    if len(values) != 1:
        raise SystemExit(f"co-signers disagree on {name}: {sorted(values)}")
    try:
        return bytes.fromhex(values.pop())
    except ValueError:
        raise SystemExit(f"co-signers reported a {name} that is not hex") from None


def _check_frost(key: bytes, message: bytes, results: Mapping[int, Mapping[str, object]]) -> None:
    signature = _agreed(results, "signature")
    try:
        VerifyKey(key).verify(message, signature)
    except (BadSignatureError, ValueError):
        raise SystemExit("a FROST signature does not verify: no figures") from None


def _check_ecdsa(
    address: str, tx: ethereum.Transaction, results: Mapping[int, Mapping[str, object]]
) -> None:
    raw = _agreed(results, "signature")
    if len(raw) != 65:
        raise SystemExit(f"an ECDSA signature is {len(raw)} bytes, not 65: no figures")
    r, s, y = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]
    try:
        signed = ethereum.SignedTransaction(tx, ethereum.Signature(r, s, y))
        signer = Account.recover_transaction(ethereum.encode_signed(signed))
    except Exception as exc:  # any refusal means the signature is bad
        raise SystemExit(f"an ECDSA signature is malformed ({exc}): no figures") from None
    if signer != address:
        raise SystemExit(
            f"an Ethereum transaction recovers to {signer}, not the key's {address}: no figures"
        )


def _rounds(count: int, modes: tuple[Mode, Mode]) -> Iterator[tuple[int, Mode]]:
    """``count`` rounds of one request per mode, the order swapped every round."""
    for i in range(count):
        for mode in modes if i % 2 == 0 else modes[::-1]:
            yield i, mode


def _timed(mode: Mode, kind: str | None, request: Callable[[], None]) -> None:
    began = time.perf_counter()
    request()
    if kind is not None:
        mode.samples.setdefault(kind, []).append(time.perf_counter() - began)


def _frost(mode: Mode, i: int, kind: str | None) -> None:
    message = solana_message(mode.frost_key, 1000 + i)
    body = sign_body("solana", message, SIGNERS, "sol")
    results: dict[int, dict[str, object]] = {}

    def request() -> None:
        results.update(mode.harness.run(body, SIGNERS))

    _timed(mode, kind, request)
    _check_frost(mode.frost_key, message, results)


def _presign(mode: Mode, label: str, kind: str | None) -> None:
    body = presign_body("eth", SIGNERS, label)

    def request() -> None:
        mode.harness.run(body, SIGNERS)

    _timed(mode, kind, request)


def _ecdsa(mode: Mode, i: int, label: str, kind: str | None) -> None:
    tx = ethereum.native_transfer(
        chain_id=1,
        nonce=i,
        to=TO,
        amount="0.01",
        fees=ethereum.FeeParameters(Wei(30 * 10**9), Wei(10**9), 21000),
    )
    body = sign_body("ethereum", ethereum.encode_unsigned(tx), SIGNERS, "eth", presignature=label)
    results: dict[int, dict[str, object]] = {}

    def request() -> None:
        results.update(mode.harness.run(body, SIGNERS))

    _timed(mode, kind, request)
    _check_ecdsa(mode.address, tx, results)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _table(plain: Mode, tls: Mode) -> list[str]:
    head = (
        f"{'':32} {'':>4}  {'plain http (ms)':>17}  {'TLS, pinned (ms)':>17}  {'TLS / plain':>22}"
    )
    columns = (
        f"{'operation':32} {'n':>4}  {'p50':>8} {'p99':>8}  {'p50':>8} {'p99':>8}  "
        f"{'p50':>6} {'p99':>6} {'paired':>8}"
    )
    lines = [head, columns, "-" * len(columns)]
    for kind, label in LABELS.items():
        a, b = plain.samples[kind], tls.samples[kind]
        a50, a99 = statistics.median(a) * 1000, _percentile(a, 0.99) * 1000
        b50, b99 = statistics.median(b) * 1000, _percentile(b, 0.99) * 1000
        paired = statistics.median(y / x for x, y in zip(a, b, strict=True))
        lines.append(
            f"{label:32} {len(a):>4}  {a50:>8.1f} {a99:>8.1f}  {b50:>8.1f} {b99:>8.1f}  "
            f"{b50 / a50:>6.3f} {b99 / a99:>6.3f} {paired:>8.3f}"
        )
    return lines


def _connections(plain: Mode, tls: Mode) -> str:
    """What the relays' connections are, checked: the TLS relay's are all TLS, the plain
    relay's none; and how many have TCP_NODELAY (a warning if any has not)."""
    a, b = plain.harness.connections(), tls.harness.connections()
    if a.tls or len(b.tls) != b.total or not b.total:
        raise SystemExit(f"the relays' connections are not what they should be: {a}, {b}")
    suites = ", ".join(sorted(set(b.tls)))
    loops = "/".join(sorted(set(a.loops + b.loops)))
    text = (
        f"relay ({loops} loop) connections with TCP_NODELAY: plain {a.nodelay}/{a.total}, "
        f"TLS {b.nodelay}/{b.total} ({suites})"
    )
    if a.nodelay != a.total or b.nodelay != b.total:
        text += "  WARNING: without TCP_NODELAY a response may wait ~40 ms for a delayed ACK"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--count",
        type=int,
        default=50,
        help="presignatures and Ethereum signatures per mode (Solana: 4x as many)",
    )
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio"),
        default="auto",
        help="the relay's event loop: auto (uvloop where installed, as shardvault server "
        "has it) or asyncio (the fallback without uvloop)",
    )
    args = parser.parse_args()
    count = args.count
    if count < 1:
        parser.error("--count must be at least 1")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        began = time.perf_counter()
        plain = _start("plain", root / "plain", None, args.loop, stack)
        tls = _start("tls", root / "tls", self_signed_tls(root), args.loop, stack)
        modes = (plain, tls)
        for mode in modes:
            print(
                f"{mode.name:>5}: {mode.harness.url}  "
                + ", ".join(f"{k} {v:.2f} s" for k, v in mode.setup.items())
            )

        for i, mode in _rounds(WARMUP, modes):
            _frost(mode, i, None)
        for i, mode in _rounds(FROST_PER_ECDSA * count, modes):
            _frost(mode, WARMUP + i, FROST)
        # Fill each pool first: the online signatures below use these presignatures.
        labels = [f"pre-{i}" for i in range(WARMUP + count)]
        for i, mode in _rounds(WARMUP, modes):
            _presign(mode, labels[i], None)
        for i, mode in _rounds(count, modes):
            _presign(mode, labels[WARMUP + i], PRESIGN)
        for i, mode in _rounds(WARMUP, modes):
            _ecdsa(mode, i, labels[i], None)
        for i, mode in _rounds(count, modes):
            _ecdsa(mode, WARMUP + i, labels[WARMUP + i], ECDSA)
        connections = _connections(plain, tls)
        elapsed = time.perf_counter() - began

    print()
    print("\n".join(_table(plain, tls)))
    print(
        "paired: median over rounds of TLS/plain (one sample of each per round, the order "
        "alternating); p99 of fewer than 100 samples is the slowest one"
    )
    print(
        "every signature verified (Ed25519: PyNaCl; Ethereum: signer recovered by eth-account "
        "= the key's address)"
    )
    print(connections)
    print(
        f"machine: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
        f"{ssl.OPENSSL_VERSION}, load average {load:.1f} at start; "
        f"--count {count}, {elapsed:.0f} s"
    )


if __name__ == "__main__":
    main()
