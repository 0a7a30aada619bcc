"""Keys and signatures made by a browser API: WebCrypto, as Node.js implements it.

Administrators and approvers sign in the console with WebCrypto
(``crypto.subtle.sign``), which returns P-256 ECDSA signatures as raw ``r || s`` and
Ed25519 signatures as RFC 8032 bytes, and exports public keys with
``exportKey("raw")``. Here Node's WebCrypto (an implementation written by others) makes
the keys and signatures, and the policy layer must accept them: an approval that counts
and a bundle that a BundleChain accepts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from shardvault.policy import (
    Admin,
    AdminSet,
    BundleChain,
    Decision,
    PublicKey,
    evaluate,
    load_policy,
    new_bundle,
    parse_approval,
)

from ._support import BOOK, make_context, make_request, policy_with
from .test_bundle import ADMINS

NODE = shutil.which("node")
APPROVERS = ["wc-p256", "wc-ed25519"]
pytestmark = pytest.mark.skipif(NODE is None, reason="needs the node binary")

SCRIPT = """
const { subtle } = globalThis.crypto;
const hex = (b) => Buffer.from(new Uint8Array(b)).toString("hex");
const messages = JSON.parse(process.argv[1]).map((m) => Buffer.from(m, "hex"));
const out = [];
for (const [name, params, signParams] of [
  ["p256", { name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }],
  ["ed25519", { name: "Ed25519" }, { name: "Ed25519" }],
]) {
  const key = await subtle.generateKey(params, true, ["sign", "verify"]);
  const signatures = [];
  for (const m of messages) signatures.push(hex(await subtle.sign(signParams, key.privateKey, m)));
  out.push({ algorithm: name, public_key: hex(await subtle.exportKey("raw", key.publicKey)),
             signatures });
}
console.log(JSON.stringify(out));
"""


def webcrypto_sign(messages: list[bytes]) -> list[dict[str, object]]:
    """A fresh P-256 and a fresh Ed25519 WebCrypto key, each signing every message."""
    assert NODE is not None
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", SCRIPT, json.dumps([m.hex() for m in messages])],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    parsed = json.loads(result.stdout)
    assert isinstance(parsed, list)
    return parsed


APPROVAL_SCRIPT = """
const { subtle } = globalThis.crypto;
const hex = (b) => Buffer.from(new Uint8Array(b)).toString("hex");
const { digest, policy_version, approvers } = JSON.parse(process.argv[1]);
const signed_at = Math.floor(Date.now() / 1000);
const out = [];
for (const [approver, params, signParams] of [
  [approvers[0], { name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }],
  [approvers[1], { name: "Ed25519" }, { name: "Ed25519" }],
]) {
  const key = await subtle.generateKey(params, true, ["sign", "verify"]);
  // docs/policy.md, "Approvals": the v2 statement, canonical JSON (sorted keys, no
  // whitespace) after the domain and a zero byte, as a console page would build it.
  const body = { approver, decision: "approve", digest, policy_version, signed_at };
  const canonical = JSON.stringify(body, Object.keys(body).sort());
  const message = Buffer.concat([
    Buffer.from("shardvault/policy/approval/v2\\0", "utf8"), Buffer.from(canonical, "utf8"),
  ]);
  const signature = hex(await subtle.sign(signParams, key.privateKey, message));
  out.push({ algorithm: params.name, public_key: hex(await subtle.exportKey("raw", key.publicKey)),
             statement: { ...body, signature } });
}
console.log(JSON.stringify(out));
"""


def test_webcrypto_approvals_count() -> None:
    """Statements built and signed by WebCrypto (P-256 and Ed25519) with the page's own
    clock count at an evaluation on this host's clock."""
    now = int(time.time())
    request = make_request(created_at=now)
    job = {"digest": request.digest.hex(), "policy_version": 7, "approvers": APPROVERS}
    assert NODE is not None
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", APPROVAL_SCRIPT, json.dumps(job)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    p256, ed = json.loads(result.stdout)
    header = (
        "format: shardvault.policy/v1\nversion: 7\nreference_currency: USD\n"
        "approvers:\n"
        f"  wc-p256: {{algorithm: p256, public_key: {p256['public_key']}}}\n"
        f"  wc-ed25519: {{algorithm: ed25519, public_key: {ed['public_key']}}}\n"
        "groups: {browsers: [wc-p256, wc-ed25519]}\n"
    )
    policy = load_policy(
        header
        + """rules:
  - name: two-browsers
    action: require_approvals
    approvals: {groups: [{group: browsers, count: 2}], deadline: 1h}
"""
    )
    approvals = [parse_approval(p256["statement"]), parse_approval(ed["statement"])]
    assert len(approvals[0].signature) == 64  # WebCrypto's raw r || s
    assert abs(approvals[0].signed_at - now) <= 60
    counted = evaluate(policy, request, make_context(now=now), approvals)
    assert counted.decision is Decision.ALLOW, counted.to_json()


def test_webcrypto_admins_sign_a_bundle() -> None:
    """Two browser admins (one P-256, one Ed25519) hand the workspace over to the test
    admin set: the bundle's bytes do not depend on their keys, so one WebCrypto session
    makes the keys and signs."""
    policy = policy_with(
        "rules: []\n",
        header="format: shardvault.policy/v1\nversion: 1\nreference_currency: USD\n",
    )
    bundle = new_bundle("acme", policy, BOOK, ADMINS)
    keys = webcrypto_sign([bundle.signing_message()])
    pinned = AdminSet(
        tuple(
            Admin(
                str(k["algorithm"]),
                PublicKey.parse(str(k["algorithm"]), str(k["public_key"]), path="admin"),
            )
            for k in keys
        ),
        quorum=2,
    )
    for key in keys:
        signatures = key["signatures"]
        assert isinstance(signatures, list)
        bundle = bundle.with_signature(str(key["algorithm"]), bytes.fromhex(signatures[0]))
    chain = BundleChain("acme", pinned)
    chain.accept(bundle)
    assert chain.admins == ADMINS
