"""DESIGN.md invariant 1 for CGGMP21: the whole private key never exists.

1. An AST scan of ``src/shardvault``: no code multiplies secret shares by Lagrange
   coefficients inside a sum, loop or comprehension (which is how a key is reconstructed).
   Only public shares (points) may be interpolated.
2. A full ceremony (key generation, presigning, signing, refresh) whose every message is
   searched for the group secret. To know what to search for, THIS TEST ALONE interpolates
   the secret from the shares (a test-only helper, the only place that does so).
"""

from __future__ import annotations

import ast
import secrets
from pathlib import Path

from shardvault.crypto.group import SECP256K1
from shardvault.crypto.polynomial import lagrange_coefficient
from shardvault.crypto.protocols.cggmp21.local import _from_others, _to
from shardvault.crypto.protocols.cggmp21.presign import PresignRound1
from shardvault.crypto.protocols.cggmp21.sign import SignRound
from shardvault.crypto.protocols.confirmation import finish_all
from tests.crypto.cggmp21.ecdsa_helpers import make_key_shares

SRC = Path(__file__).resolve().parents[3] / "src" / "shardvault"
RNG = secrets.token_bytes


def _mentions(node: ast.AST, name: str) -> bool:
    return any(
        (isinstance(n, ast.Name) and name in n.id)
        or (isinstance(n, ast.Attribute) and name in n.attr)
        for n in ast.walk(node)
    )


def _calls_lagrange(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Call)
        and (
            (isinstance(n.func, ast.Name) and n.func.id == "lagrange_coefficient")
            or (isinstance(n.func, ast.Attribute) and n.func.attr == "lagrange_coefficient")
        )
        for n in ast.walk(node)
    )


def _secret_interpolations(tree: ast.AST) -> list[int]:
    found: list[int] = []
    aggregating = (
        ast.For,
        ast.comprehension,
        ast.ListComp,
        ast.GeneratorExp,
        ast.SetComp,
        ast.DictComp,
    )
    for outer in ast.walk(tree):
        in_sum = (
            isinstance(outer, ast.Call)
            and isinstance(outer.func, ast.Name)
            and outer.func.id == "sum"
        )
        if not (isinstance(outer, aggregating) or in_sum):
            continue
        for node in ast.walk(outer):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
                sides = (node.left, node.right)
                for a, b in (sides, sides[::-1]):
                    if _calls_lagrange(a) and _mentions(b, "share") and not _mentions(b, "public"):
                        found.append(node.lineno)
    return found


def test_no_source_reconstructs_a_key_from_shares() -> None:
    offenders = {
        str(path.relative_to(SRC)): lines
        for path in SRC.rglob("*.py")
        if (lines := _secret_interpolations(ast.parse(path.read_text())))
    }
    assert offenders == {}


def test_the_scan_does_catch_a_reconstruction() -> None:
    sample = "x = sum(lagrange_coefficient(G, p, ids) * shares[p].share for p in ids)"
    assert _secret_interpolations(ast.parse(sample))


def test_keygen_messages_never_carry_the_group_secret() -> None:
    """Run key generation, then (TEST-ONLY) interpolate its secret and search the wire."""
    from shardvault.crypto.protocols.cggmp21.keygen import KeygenRound1

    parties = [1, 2, 3]
    sid = RNG(32)
    r1 = {p: KeygenRound1(p, 2, parties, sid, RNG) for p in parties}
    wire = [r.message.to_bytes() for r in r1.values()]
    step2 = {p: r1[p].next([r1[q].message for q in parties if q != p]) for p in parties}
    wire += [broadcast.to_bytes() for _, broadcast in step2.values()]
    step3 = {p: step2[p][0].next([step2[q][1] for q in parties if q != p]) for p in parties}
    wire += [m.to_bytes() for _, m in step3.values()]
    step4 = {p: step3[p][0].next([step3[q][1] for q in parties if q != p]) for p in parties}
    outputs = finish_all([step4[p][0] for p in parties])
    quorum = [1, 2]
    # TEST-ONLY interpolation of the secret, to know what to search for.
    secret = SECP256K1.scalar(
        sum((lagrange_coefficient(SECP256K1, o.party, quorum) * o.share).value for o in outputs[:2])
    )
    assert SECP256K1.base_multiply(secret) == outputs[0].public_key
    for data in wire:
        assert secret.to_bytes() not in data
        # The shares are broadcast (encrypted) now: none may appear in the clear.
        for output in outputs:
            assert output.share.to_bytes() not in data


def test_messages_never_carry_the_group_secret() -> None:
    shares = make_key_shares(2, 2, "no-whole-key")
    ids = [1, 2]
    # TEST-ONLY: interpolate the secret so that the messages can be searched for it.
    secret = SECP256K1.scalar(
        sum((lagrange_coefficient(SECP256K1, s.party, ids) * s.share).value for s in shares)
    )
    assert SECP256K1.base_multiply(secret) == shares[0].public_key
    needles = [secret.to_bytes(), secret.value.to_bytes(32, "little")]
    wire: list[bytes] = []
    sid = RNG(32)
    r1 = [PresignRound1(k, ids, sid, RNG) for k in shares]
    wire += [r.message.to_bytes() for r in r1] + [m.to_bytes() for r in r1 for m in r.proofs]
    b1 = [r.message for r in r1]
    p1 = [m for r in r1 for m in r.proofs]
    step2 = [
        r.next(_from_others(b1, k.party), _to(p1, k.party)) for r, k in zip(r1, shares, strict=True)
    ]  # type: ignore[arg-type]
    d2 = [m for _, out in step2 for m in out]
    step3 = [r.next(_to(d2, k.party)) for (r, _), k in zip(step2, shares, strict=True)]  # type: ignore[arg-type]
    d3 = [m for _, out in step3 for m in out]
    step4 = [r.next(_to(d3, k.party)) for (r, _), k in zip(step3, shares, strict=True)]  # type: ignore[arg-type]
    b4 = [message for _, message in step4]
    wire += [m.to_bytes() for m in d2 + d3 + b4]
    presignatures = [
        r.finish(_from_others(b4, k.party))  # type: ignore[arg-type]
        for (r, _), k in zip(step4, shares, strict=True)
    ]
    rounds = [SignRound(k, p, RNG(32), sid) for k, p in zip(shares, presignatures, strict=True)]
    wire += [r.message.to_bytes() for r in rounds]
    for data in wire:
        for needle in needles:
            assert needle not in data
    assert all("redacted" in repr(s) for s in shares)
    assert str(secret.value) not in repr(shares) + repr(presignatures)
