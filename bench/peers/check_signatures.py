"""Check again, with libsecp256k1 (coincurve), every signature the peer benchmarks made.

The Node scripts in this folder check each signature with @noble/curves (and ECDSA also
with OpenSSL) while they run, and write them all to ``results/<name>-signatures.json``.
@cmdcode/frost does its own arithmetic with @noble/curves, so a BIP340 check by noble is
not independent of the library under test; this script is. It reads those files and
verifies each record: ``bip340`` with ``PublicKeyXOnly.verify``, ``ecdsa`` over the
32-byte digest with ``PublicKey.verify`` (``hasher=None``). libsecp256k1 accepts only
low-s ECDSA signatures, so each is first normalized by libsecp256k1 itself (``(r, n - s)``
for a high-s one, the same signature in its other form), and high-s ones are counted.

Usage: ``.venv/bin/python bench/peers/check_signatures.py bench/peers/results/*-signatures.json``.
Prints one line per file and exits non-zero if any signature fails.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from coincurve import PublicKey, PublicKeyXOnly
from coincurve.ecdsa import cdata_to_der, deserialize_compact, signature_normalize


def _normalized_der(compact: bytes) -> tuple[bytes, bool]:
    """The DER form of a 64-byte ``r || s`` signature after libsecp256k1 normalizes it to
    low s, and whether it was high-s."""
    was_high, normalized = signature_normalize(deserialize_compact(compact))
    return cdata_to_der(normalized), was_high


def check_file(path: Path) -> tuple[int, int, int]:
    """(checked, failed, high-s) for one signatures file."""
    records = json.loads(path.read_text())
    checked = failed = high_s = 0
    for record in records:
        public_key = bytes.fromhex(record["public_key"])
        digest = bytes.fromhex(record["digest"])
        signature = bytes.fromhex(record["signature"])
        if record["scheme"] == "bip340":
            ok = PublicKeyXOnly(public_key).verify(signature, digest)
        elif record["scheme"] == "ecdsa":
            der, was_high = _normalized_der(signature)
            high_s += was_high
            ok = PublicKey(public_key).verify(der, digest, hasher=None)
        else:
            raise ValueError(f"{path}: unknown scheme {record['scheme']!r}")
        checked += 1
        failed += not ok
    return checked, failed, high_s


def main(paths: list[str]) -> int:
    """Check every file; non-zero when a file is missing or a signature fails."""
    if not paths:
        print("usage: check_signatures.py RESULTS/*-signatures.json", file=sys.stderr)
        return 2
    status = 0
    for name in paths:
        path = Path(name)
        if not path.is_file():
            print(f"{name}: missing", file=sys.stderr)
            status = 1
            continue
        checked, failed, high_s = check_file(path)
        print(f"{path.name}: {checked} checked with libsecp256k1, {failed} failed, {high_s} high-s")
        if failed or not checked:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
