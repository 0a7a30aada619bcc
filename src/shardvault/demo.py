"""``make demo``: the main job on embedded defaults.

It does the most that exists end to end and prints each step. Today: for each threshold
scheme, a 2-of-3 distributed key generation with no dealer, a signature by a quorum of two,
and a check of that signature by an independent verifier (libsodium for Ed25519,
libsecp256k1 for BIP340, eth-account's sender recovery for threshold ECDSA), ending with
one JSON line that summarises the run. The ECDSA ceremony searches fresh safe primes for
every party's Paillier key (CGGMP21's auxiliary info), which takes some seconds.
"""

from __future__ import annotations

import json
import time

import coincurve
import nacl.signing

from shardvault import __version__
from shardvault.cli import _mpc_ecdsa as ecdsa
from shardvault.crypto.protocols.frost import ED25519_SHA512, SECP256K1_BIP340, Ciphersuite
from shardvault.crypto.protocols.frost.local import run_dkg, run_signing
from shardvault.crypto.rng import system_random


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201


def _verify(suite: Ciphersuite, public_key: bytes, message: bytes, signature: bytes) -> bool:
    if suite is ED25519_SHA512:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
        return True
    return bool(coincurve.PublicKeyXOnly(public_key).verify(signature, message))


def _frost_demo(suite: Ciphersuite, label: str) -> dict[str, object]:
    _say(f"\n== {label} ({suite.name}): 2-of-3 key generation, no dealer")
    started = time.perf_counter()
    keys = run_dkg(suite, 2, 3, system_random)
    dkg_ms = (time.perf_counter() - started) * 1e3
    public_key = keys[0].public.public_key_bytes
    _say(f"   3 parties agreed on public key {public_key.hex()} in {dkg_ms:.1f} ms")
    _say("   each party holds only its own share; the whole key was never formed")
    message = b"shardvault demo: transfer 1.5 units to treasury"
    started = time.perf_counter()
    signature = run_signing([keys[0], keys[2]], message, system_random)
    sign_ms = (time.perf_counter() - started) * 1e3
    _say(f"   parties 1 and 3 signed {message!r} in {sign_ms:.1f} ms")
    verifier = "libsodium (PyNaCl)" if suite is ED25519_SHA512 else "libsecp256k1 (coincurve)"
    valid = _verify(suite, public_key, message, signature)
    _say(f"   signature {signature.hex()[:32]}... verified by {verifier}: {valid}")
    return {"scheme": suite.name, "public_key": public_key.hex(), "signature_valid": valid}


def _ecdsa_demo() -> dict[str, object]:
    from eth_account import Account
    from eth_hash.auto import keccak

    _say("\n== Threshold ECDSA for Ethereum (ecdsa-secp256k1, CGGMP21): 2-of-3 key generation")
    _say("   searching safe primes for each party's Paillier key, then auxiliary info with proofs")
    started = time.perf_counter()
    shares, summary = ecdsa.keygen_ecdsa(2, 3, system_random)
    _say(f"   key generation and auxiliary info took {time.perf_counter() - started:.1f} s")
    _say(f"   address {summary['address']}  xpub {str(summary['xpub'])[:24]}...")
    path = "m/44/60/0/0/0"
    child = ecdsa.derive(shares[0], path)
    _say(f"   derived {path}: address {child['address']} (public derivation, no secret)")
    digest = keccak(b"shardvault demo: an Ethereum signing hash stand-in")
    started = time.perf_counter()
    signed = ecdsa.sign_ecdsa([shares[0], shares[2]], [1, 3], digest, path)
    sign_ms = (time.perf_counter() - started) * 1e3
    _say(f"   parties 1 and 3 presigned and signed at {path} in {sign_ms:.0f} ms")
    v, r, s = int(str(signed["v"])), int(str(signed["r"]), 16), int(str(signed["s"]), 16)
    recovered = Account._recover_hash(digest, vrs=(v, r, s))
    valid = recovered == child["address"]
    _say(f"   eth-account recovers {recovered} from (digest, v, r, s): {valid}")
    return {
        "scheme": ecdsa.SCHEME,
        "public_key": summary["public_key"],
        "address": child["address"],
        "signature_valid": valid,
    }


def main() -> None:
    """Run the demo."""
    _say(f"shardvault {__version__} demo")
    results = [
        _frost_demo(ED25519_SHA512, "Ed25519 for Solana"),
        _frost_demo(SECP256K1_BIP340, "BIP340 Schnorr for Bitcoin Taproot"),
        _ecdsa_demo(),
    ]
    _say("")
    print(json.dumps({"demo": "threshold-signatures", "results": results}))  # noqa: T201
    if not all(r["signature_valid"] for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
