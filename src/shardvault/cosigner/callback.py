"""The customer callback: a co-signer asks the customer's own service before it signs.

Optional, per co-signer (``cosigner.json`` field ``callback``, set at ``init`` or by
``shardvault cosigner configure``; the configuration is signed, so nobody can add,
remove or redirect it without the co-signer's identity). After a ``sign`` request has
passed every check of the co-signer itself (:mod:`.checks`: payload parsed, digest
recomputed, signed policy allowed it), and before any share is used, the co-signer
POSTs what it checked to the customer's URL and signs only on a signed approval. The
same idea as an API co-signer's "callback handler": the customer keeps a veto that no
coordinator, relay or admin key can bypass.

Request: the body is the canonical JSON of :func:`request_document` (sorted keys, no
whitespace, ASCII), sent exactly as signed; the co-signer signs
``CALLBACK_REQUEST_DOMAIN || body`` with its Ed25519 identity key and sends the
signature (hex) in ``x-shardvault-signature``, its party id in ``x-shardvault-cosigner``
and its public identity key (hex) in ``x-shardvault-cosigner-key`` (also in the body;
the customer compares it with the fingerprint it pinned).

Answer: a JSON object ``{"action": "approve" | "reject", "request_id", "nonce",
"reason"?}`` and, in ``x-shardvault-signature``, the hex Ed25519 signature by the
customer's key over ``CALLBACK_RESPONSE_DOMAIN || the exact response body bytes``. The
co-signer holds only the customer's public key.

Anything but a validly signed ``approve`` that echoes this request's id and fresh nonce
is a refusal (:class:`RequestRefused` with check ``callback``): a timeout, a connection
error, a status other than 2xx (redirects are not followed), a body over 64 KiB or in a
content coding, a missing or bad signature, malformed JSON or unknown fields, another
request's id or nonce (a replayed answer), or ``reject``. The call blocks the node's
loop (one thread) for at most the configured timeout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from nacl.exceptions import BadSignatureError
from nacl.exceptions import CryptoError as NaclCryptoError
from nacl.signing import VerifyKey

from shardvault.cosigner.checks import CheckedRequest
from shardvault.cosigner.errors import ConfigurationError, RequestRefused
from shardvault.crypto.channel import PartyIdentity
from shardvault.crypto.rng import RandomSource

CALLBACK_FORMAT = "shardvault.cosigner.callback/v1"
"""The ``format`` field of a callback request body."""

CALLBACK_REQUEST_DOMAIN = b"shardvault/cosigner/callback/request/v1\x00"
"""Prefix of the bytes the co-signer signs: this and the exact request body."""

CALLBACK_RESPONSE_DOMAIN = b"shardvault/cosigner/callback/response/v1\x00"
"""Prefix of the bytes the customer signs: this and the exact response body."""

SIGNATURE_HEADER = "x-shardvault-signature"
"""The header carrying a hex Ed25519 signature, in the request and in the answer."""

PARTY_HEADER = "x-shardvault-cosigner"
"""The header naming the co-signer's party id."""

KEY_HEADER = "x-shardvault-cosigner-key"
"""The header carrying the co-signer's Ed25519 identity key (hex)."""

DEFAULT_TIMEOUT = 10.0
"""Seconds the co-signer waits for an answer unless configured otherwise."""

MAX_TIMEOUT = 60.0
"""The longest timeout that can be configured (the node's loop waits meanwhile)."""

MAX_ANSWER_BYTES = 64 * 1024
"""The largest answer body read; a longer one is a refusal."""

MAX_REASON_CHARS = 200
"""How much of a customer's rejection reason is reported to the coordinator."""

NONCE_BYTES = 32
"""Bytes of fresh randomness in each request, echoed by the answer."""

_ANSWER_FIELDS = {"action", "request_id", "nonce", "reason"}


@dataclass(frozen=True, slots=True)
class CallbackSettings:
    """Where the customer's service is and the key its answers are signed with.

    ``url`` is an ``http`` or ``https`` URL; ``public_key`` the customer's 32-byte
    Ed25519 key (its secret key never exists at the co-signer); ``timeout`` seconds,
    above 0 and at most :data:`MAX_TIMEOUT`.

    Raises:
        ConfigurationError: another scheme, no host, a key of another size, a timeout
            out of range.
    """

    url: str
    public_key: bytes
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError("callback.url must be an http:// or https:// URL")
        if len(self.public_key) != 32:
            raise ConfigurationError("callback.public_key must be 32 bytes (Ed25519)")
        if not 0 < self.timeout <= MAX_TIMEOUT:
            raise ConfigurationError(
                f"callback.timeout_seconds must be above 0 and at most {MAX_TIMEOUT:g}"
            )

    def to_json(self) -> dict[str, object]:
        """The ``callback`` section of ``cosigner.json``."""
        return {
            "url": self.url,
            "public_key": self.public_key.hex(),
            "timeout_seconds": self.timeout,
        }

    @classmethod
    def from_json(cls, raw: object) -> CallbackSettings:
        """Read a ``callback`` section.

        Raises:
            ConfigurationError: a missing, unknown or malformed field.
        """
        if not isinstance(raw, Mapping):
            raise ConfigurationError("callback must be an object")
        unknown = sorted(set(raw) - {"url", "public_key", "timeout_seconds"})
        if unknown:
            raise ConfigurationError(f"callback has unknown fields {unknown}")
        url, key = raw.get("url"), raw.get("public_key")
        timeout = raw.get("timeout_seconds", DEFAULT_TIMEOUT)
        if not isinstance(url, str) or not isinstance(key, str):
            raise ConfigurationError("callback needs url and public_key strings")
        if not isinstance(timeout, int | float) or isinstance(timeout, bool):
            raise ConfigurationError("callback.timeout_seconds must be a number")
        try:
            public_key = bytes.fromhex(key)
        except ValueError:
            raise ConfigurationError("callback.public_key must be hex") from None
        return cls(url, public_key, float(timeout))


def request_document(
    *,
    party: int,
    identity_key: bytes,
    workspace: str,
    request_id: str,
    body: Mapping[str, object],
    checked: CheckedRequest,
    timestamp: int,
    nonce: bytes,
) -> dict[str, object]:
    """What the co-signer tells the customer: the facts it computed itself.

    ``checked`` is the request after the co-signer's own checks; the operation,
    network, destination, asset, amount (base units, a decimal string) and digests come
    from the parsed payload, not from the coordinator. ``signing_message`` is the exact
    bytes the co-signer will sign (a 32-byte digest for ECDSA and BIP340, the message
    for Ed25519), ``approval_digest`` the digest approvals were counted over (the
    payload digest, or a transfer's intent digest).
    """
    request = checked.target.request
    intent = checked.target.intent
    contract = request.contract_call
    path = body.get("path", "m")
    document: dict[str, object] = {
        "format": CALLBACK_FORMAT,
        "party": party,
        "identity_key": identity_key.hex(),
        "workspace": workspace,
        "request_id": request_id,
        "chain": body.get("chain"),
        "vault": body.get("vault"),
        "key_id": body.get("key_id"),
        "path": path if isinstance(path, str) else None,
        "operation": request.operation.value,
        "network": request.network,
        "source": {
            "vault": request.source.vault,
            "wallet": request.source.wallet,
            "address": checked.target.source_address,
        },
        "destination": request.destination,
        "asset": None
        if request.asset is None
        else {"id": request.asset.id, "decimals": request.asset.decimals},
        "amount": None if request.amount is None else str(request.amount),
        "contract": None if contract is None else {"selector": "0x" + contract.selector.hex()},
        "initiator": {"type": request.initiator.kind.value, "id": request.initiator.id},
        "created_at": int(request.created_at),
        "approval_digest": request.digest.hex(),
        "signing_message": checked.target.message.hex(),
        "intent": None
        if intent is None
        else {
            "workspace_id": intent.workspace_id,
            "transaction_id": intent.transaction_id,
            "network": intent.network,
            "source": intent.source,
            "destination": intent.destination,
            "asset": intent.asset,
            "amount": str(intent.amount),
        },
        "policy": {
            "version": checked.evaluation.policy_version,
            "rule": checked.evaluation.rule,
        },
        "timestamp": timestamp,
        "nonce": nonce.hex(),
    }
    return document


def canonical_body(document: Mapping[str, object]) -> bytes:
    """The exact request body: canonical JSON (sorted keys, no whitespace, ASCII)."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def _printable(text: str) -> str:
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    if len(cleaned) > MAX_REASON_CHARS:
        return cleaned[:MAX_REASON_CHARS] + "..."
    return cleaned


def check_answer(
    settings: CallbackSettings, request_id: str, nonce: bytes, headers: httpx.Headers, body: bytes
) -> None:
    """Accept a 2xx answer only if it is a validly signed approval of this request.

    Raises:
        RequestRefused: check ``callback``: a bad signature, malformed JSON, unknown
            fields, another request's id or nonce, or anything but ``approve``.
    """
    raw_signature = headers.get(SIGNATURE_HEADER)
    if raw_signature is None:
        raise RequestRefused("callback", "bad signature: the answer is not signed")
    try:
        VerifyKey(settings.public_key).verify(
            CALLBACK_RESPONSE_DOMAIN + body, bytes.fromhex(raw_signature.strip())
        )
    except (ValueError, TypeError, BadSignatureError, NaclCryptoError):
        raise RequestRefused(
            "callback", "bad signature: the answer is not signed by the configured key"
        ) from None
    try:
        answer = json.loads(body)
    except ValueError:
        raise RequestRefused("callback", "malformed answer: not JSON") from None
    if not isinstance(answer, dict):
        raise RequestRefused("callback", "malformed answer: not a JSON object")
    unknown = sorted(set(answer) - _ANSWER_FIELDS)
    if unknown:
        raise RequestRefused("callback", f"malformed answer: unknown fields {unknown}")
    if answer.get("request_id") != request_id or answer.get("nonce") != nonce.hex():
        # A validly signed answer to another request: a replay, or a confused service.
        raise RequestRefused("callback", "the answer is for another request (id or nonce)")
    action, reason = answer.get("action"), answer.get("reason")
    if action == "reject":
        text = _printable(reason) if isinstance(reason, str) else "no reason given"
        raise RequestRefused("callback", f"rejected: {text}")
    if action != "approve":
        raise RequestRefused("callback", "malformed answer: action is not approve or reject")


class CallbackClient:
    """Asks the customer's service about each signing request (module docstring).

    Security: holds the co-signer's identity to sign requests; sends only the facts of
    a request, never a share or a secret.
    """

    def __init__(
        self,
        settings: CallbackSettings,
        identity: PartyIdentity,
        workspace: str,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._identity = identity
        self._workspace = workspace
        self._client = httpx.Client(
            timeout=httpx.Timeout(settings.timeout), follow_redirects=False, transport=transport
        )

    def __repr__(self) -> str:
        return f"CallbackClient(url={self.settings.url!r}, <redacted>)"

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def approve(
        self,
        request_id: str,
        body: Mapping[str, object],
        checked: CheckedRequest,
        *,
        now: int,
        rng: RandomSource,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Return only if the customer approved this request, signed and fresh.

        Raises:
            RequestRefused: check ``callback``, with a reason (``timeout``, ``http
                status``, ``unreachable``, ``bad signature``, ``rejected: ...``).
        """
        nonce = rng(NONCE_BYTES)
        public = self._identity.public
        payload = canonical_body(
            request_document(
                party=int(self._identity.party),
                identity_key=public.signing_key,
                workspace=self._workspace,
                request_id=request_id,
                body=body,
                checked=checked,
                timestamp=now,
                nonce=nonce,
            )
        )
        headers = {
            "content-type": "application/json",
            # The answer's signature covers its bytes as sent: no content coding.
            "accept-encoding": "identity",
            SIGNATURE_HEADER: self._identity.sign(CALLBACK_REQUEST_DOMAIN + payload).hex(),
            PARTY_HEADER: str(int(self._identity.party)),
            KEY_HEADER: public.signing_key.hex(),
        }
        deadline = monotonic() + self.settings.timeout
        try:
            with self._client.stream(
                "POST", self.settings.url, content=payload, headers=headers
            ) as response:
                if not 200 <= response.status_code < 300:
                    raise RequestRefused("callback", f"http status {response.status_code}")
                if response.headers.get("content-encoding", "identity") != "identity":
                    raise RequestRefused("callback", "malformed answer: content-encoding")
                answer = bytearray()
                for chunk in response.iter_raw():
                    answer += chunk
                    if len(answer) > MAX_ANSWER_BYTES:
                        raise RequestRefused("callback", "the answer is too long")
                    if monotonic() > deadline:
                        raise RequestRefused(
                            "callback", f"timeout after {self.settings.timeout:g} s"
                        )
                answer_headers = response.headers
        except httpx.TimeoutException:
            raise RequestRefused("callback", f"timeout after {self.settings.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise RequestRefused("callback", f"unreachable: {type(exc).__name__}") from None
        check_answer(self.settings, request_id, nonce, answer_headers, bytes(answer))
