"""The customer's callback service, played by the tests: ``http.server`` on 127.0.0.1.

It does what docs/cosigner.md "Customer callback" asks of a customer: it checks the
co-signer's signature (PyNaCl, over the documented domain and the exact body) against
the identity keys it pinned, and answers with a JSON decision signed by its own Ed25519
key over the answer domain and the exact answer bytes. ``mode`` makes it misbehave.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

REQUEST_DOMAIN = b"shardvault/cosigner/callback/request/v1\x00"
"""docs/cosigner.md: the co-signer signs this prefix and the exact request body."""

RESPONSE_DOMAIN = b"shardvault/cosigner/callback/response/v1\x00"
"""docs/cosigner.md: the customer signs this prefix and the exact answer body."""

MODES = (
    "approve",  # a signed approval of this request
    "reject",  # a signed rejection with ``reason``
    "wrong-key",  # an approval signed by another key
    "replay",  # the approval it sent for an earlier request, byte for byte
    "slow",  # an approval, after ``delay`` seconds
    "status-500",  # an error status with a signed approval in the body
    "unsigned",  # an approval without a signature
    "maybe",  # a signed answer whose action is neither approve nor reject
)


@dataclass
class Received:
    """One request as the service received it."""

    headers: dict[str, str]
    body: bytes

    @property
    def document(self) -> dict:
        return json.loads(self.body)


class CustomerService:
    """The callback service; ``trusted`` maps party ids to the co-signer identity keys it
    accepts requests from (empty: accept none)."""

    def __init__(self) -> None:
        self.key = SigningKey(hashlib.sha256(b"customer callback key").digest())
        self.public_key = bytes(self.key.verify_key)
        self.trusted: dict[int, bytes] = {}
        self.mode = "approve"
        self.reason = "outside business hours"
        self.delay = 0.0
        self.received: list[Received] = []
        self.refused_signatures = 0
        self._approved: tuple[bytes, str] | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/approve"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _verified(self, headers: dict[str, str], body: bytes) -> bool:
        party = int(headers.get("x-shardvault-cosigner", "0"))
        key = self.trusted.get(party)
        if key is None or headers.get("x-shardvault-cosigner-key") != key.hex():
            return False
        try:
            signature = bytes.fromhex(headers.get("x-shardvault-signature", ""))
            VerifyKey(key).verify(REQUEST_DOMAIN + body, signature)
        except (ValueError, BadSignatureError):
            return False
        return json.loads(body).get("identity_key") == key.hex()

    def answer(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """The status, headers and body the service sends back."""
        with self._lock:
            self.received.append(Received(headers, body))
            mode = self.mode
        request = json.loads(body)
        decision: dict[str, object] = {
            "action": "approve",
            "request_id": request["request_id"],
            "nonce": request["nonce"],
        }
        if not self._verified(headers, body):
            self.refused_signatures += 1
            decision = {**decision, "action": "reject", "reason": "unknown co-signer"}
        elif mode == "reject":
            decision = {**decision, "action": "reject", "reason": self.reason}
        elif mode == "maybe":
            decision = {**decision, "action": "maybe"}
        elif mode == "slow":
            time.sleep(self.delay)
        if mode == "replay" and self._approved is not None:
            answer, signature = self._approved
            return 200, {"x-shardvault-signature": signature}, answer
        answer = json.dumps(decision).encode()
        signer = SigningKey.generate() if mode == "wrong-key" else self.key
        signature = signer.sign(RESPONSE_DOMAIN + answer).signature.hex()
        if mode == "approve" and decision["action"] == "approve":
            self._approved = (answer, signature)
        headers_out = {} if mode == "unsigned" else {"x-shardvault-signature": signature}
        return (500 if mode == "status-500" else 200), headers_out, answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra, answer = service.answer(headers, body)
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(answer)))
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the co-signer gave up waiting (timeout tests)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
