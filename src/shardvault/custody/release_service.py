"""The key-release service: a backend's data keys, released only to attested enclaves.

This is the stand-in for AWS KMS with ``Recipient`` (AWS KMS Developer Guide, "How AWS
Nitro Enclaves uses AWS KMS"; moto ignores ``Recipient``, and PKCS#11 tokens and the
local keyring have no such feature). It holds the key-encryption backend (``local``,
``pkcs11`` or ``aws-kms``) and the attestation policy (root, PCR values, freshness), and
serves three operations to enclaves:

- ``nonce``: a fresh single-use nonce for the next attestation document;
- ``generate-data-key``: a new data key for a share blob bound to an encryption context,
  returned wrapped by the backend and encrypted to the document's ``public_key``
  (KMS ``GenerateDataKey`` with ``Recipient``);
- ``decrypt``: the data key of a wrapped key, encrypted to the document's ``public_key``
  (KMS ``Decrypt`` with ``Recipient``).

Every release goes through :class:`~shardvault.custody.release.AttestedKeyReleaser`:
the document is verified (chain to the pinned root, ES384 signature, PCR policy, nonce,
age) before the backend is called, and the data key leaves only as RSA-OAEP-SHA-256
ciphertext to the enclave's key.

The service signs every HTTP response with an Ed25519 key its clients pin (the part TLS
with a pinned certificate plays in front of KMS). Without it, a man in the middle could
answer ``generate-data-key`` with a data key of its own choosing encrypted to the
enclave's (public) key, and later read the share sealed under it. Responses bind the
request: the signature covers a domain tag, the path, the SHA-256 of the request body and
the response body.

Wire format: JSON over HTTP, ``POST /v1/key-release/{nonce,generate-data-key,decrypt}``;
bytes are base64. Refusals are ``{"error": TYPE, "reason": CODE, "detail": TEXT}`` with
403 (attestation or key policy), 422 (integrity), 400 (malformed), 503 (backend away).
Nothing on the wire is secret: documents and public keys, wrapped keys, contexts, and
data keys encrypted to an enclave.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from shardvault.custody.attestation.nitro import NitroVerifier, PcrPolicy
from shardvault.custody.backends import backend_from_config
from shardvault.custody.backends.base import EncryptionContext, KeyEncryptionBackend, WrappedKey
from shardvault.custody.config import attestation_from_config
from shardvault.custody.errors import (
    AttestationChainError,
    AttestationDebugError,
    AttestationError,
    AttestationExpiredError,
    AttestationFormatError,
    AttestationNonceError,
    AttestationPcrError,
    AttestationPublicKeyError,
    AttestationRootError,
    AttestationSignatureError,
    AttestationStaleError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    CustodyError,
    IntegrityError,
    KeyAccessDeniedError,
    KeyDisabledError,
    KeyNotFoundError,
)
from shardvault.custody.release import AttestedKeyReleaser

log = logging.getLogger("shardvault.custody.release_service")

PATH_PREFIX = "/v1/key-release/"
"""Every route of the service lives under this prefix."""

MAX_BODY_BYTES = 256 * 1024
"""Requests larger than this are refused before parsing (documents are ~5 KiB)."""

SIGNATURE_HEADER = "x-shardvault-release-signature"
"""The response header carrying the service's Ed25519 signature (hex)."""

_RESPONSE_DOMAIN = b"shardvault/key-release/response/v1\x00"
_MAX_CONTEXT_FIELDS = 32
_MAX_FIELD = 256


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """What ``generate-data-key`` returns: the wrapped key and the key to the enclave."""

    wrapped_key: WrappedKey
    ciphertext_for_recipient: bytes


class ReleaseClient(Protocol):
    """What an enclave needs from a key-release service (in process or over HTTP)."""

    def nonce(self) -> bytes:
        """A fresh single-use nonce for the next attestation document."""

    def generate_data_key(self, context: EncryptionContext, document: bytes) -> GeneratedKey:
        """A new data key bound to ``context``, wrapped and encrypted to the enclave."""

    def decrypt(self, wrapped: WrappedKey, context: EncryptionContext, document: bytes) -> bytes:
        """The data key of ``wrapped``, encrypted to the enclave (RSA-OAEP-SHA-256)."""


class KeyReleaseService:
    """The release service in process: a backend behind an attested releaser.

    Security: holds the backend (and, for ``local``, its unsealed master key) and the
    response signing key. Plaintext data keys exist here only inside one call.
    """

    def __init__(
        self,
        backend: KeyEncryptionBackend,
        verifier: NitroVerifier,
        policy: PcrPolicy,
        *,
        signing_key: SigningKey | None = None,
        nonce_ttl: float = 60.0,
    ) -> None:
        self.backend = backend
        self.releaser = AttestedKeyReleaser(backend, verifier, policy, nonce_ttl=nonce_ttl)
        self._signing_key = signing_key or SigningKey.generate()
        # The HTTP app calls in from worker threads; backends (a PKCS#11 session, the
        # local keyring's cache) are not all thread-safe, so releases run one at a time.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyReleaseService(backend={self.backend.backend_type!r}, <redacted>)"

    @property
    def public_key(self) -> bytes:
        """The Ed25519 key that signs responses (clients pin it)."""
        return bytes(self._signing_key.verify_key)

    def nonce(self) -> bytes:
        """A fresh single-use nonce."""
        return self.releaser.issue_nonce()

    def generate_data_key(self, context: EncryptionContext, document: bytes) -> GeneratedKey:
        """Raises: AttestationError, IntegrityError (not a share context), backend errors."""
        with self._lock:
            made = self.releaser.generate_for_recipient(context, document)
        return GeneratedKey(made.wrapped_key, made.ciphertext_for_recipient)

    def decrypt(self, wrapped: WrappedKey, context: EncryptionContext, document: bytes) -> bytes:
        """Raises: AttestationError, IntegrityError, backend errors."""
        with self._lock:
            released = self.releaser.release_wrapped(wrapped, context, document)
        return released.ciphertext_for_recipient

    def sign_response(self, path: str, request: bytes, response: bytes) -> bytes:
        """The signature a client checks with :func:`verify_response`."""
        return self._signing_key.sign(_signed_bytes(path, request, response)).signature

    def close(self) -> None:
        """Close the backend (wipes cached key material)."""
        self.backend.close()


def _signed_bytes(path: str, request: bytes, response: bytes) -> bytes:
    return b"".join(
        [
            _RESPONSE_DOMAIN,
            hashlib.sha256(path.encode()).digest(),
            hashlib.sha256(request).digest(),
            response,
        ]
    )


def verify_response(
    public_key: bytes, path: str, request: bytes, response: bytes, signature: bytes
) -> None:
    """Check a response signature from the pinned service key.

    Raises: BackendError when it does not verify (not the pinned service, or altered).
    """
    try:
        VerifyKey(public_key).verify(_signed_bytes(path, request, response), signature)
    except (BadSignatureError, ValueError, TypeError):
        raise BackendError("key-release response is not signed by the pinned service") from None


def release_service_from_config(config: Mapping[str, object]) -> KeyReleaseService:
    """Build the service from ``{"backend": ..., "attestation": ..., ...}``.

    ``attestation`` is the section :func:`~shardvault.custody.config.attestation_from_config`
    reads: a development root is refused unless ``allow_development_root`` is true, and a
    policy must pin at least one PCR. Optional: ``nonce_ttl_seconds`` (default 60) and
    ``signing_key_env`` (an environment variable holding the 32-byte Ed25519 seed in hex;
    default: a fresh key per start).

    Raises: ConfigurationError, and the backend's errors when it cannot be opened.
    """
    import os

    backend, attestation = config.get("backend"), config.get("attestation")
    if not isinstance(backend, Mapping) or not isinstance(attestation, Mapping):
        raise ConfigurationError("key-release service needs 'backend' and 'attestation' mappings")
    verifier, policy = attestation_from_config(attestation)
    ttl = config.get("nonce_ttl_seconds", 60)
    if not isinstance(ttl, int | float) or isinstance(ttl, bool) or ttl <= 0:
        raise ConfigurationError("key-release service: nonce_ttl_seconds must be positive")
    signing_key = None
    env = config.get("signing_key_env")
    if env is not None:
        seed = os.environ.get(str(env), "")
        try:
            signing_key = SigningKey(bytes.fromhex(seed))
        except (ValueError, TypeError):
            raise ConfigurationError(f"{env} must hold a 32-byte Ed25519 seed in hex") from None
    return KeyReleaseService(
        backend_from_config(backend),
        verifier,
        policy,
        signing_key=signing_key,
        nonce_ttl=float(ttl),
    )


# --- Wire encoding ---------------------------------------------------------------------


class _BadRequest(Exception):
    """A request the service cannot parse (400)."""


class _UnknownOperation(Exception):
    """A path under the prefix that names no operation (404)."""


def _b64(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise _BadRequest(f"field {name} must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _BadRequest(f"field {name} is not base64") from None


def _context(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > _MAX_CONTEXT_FIELDS:
        raise _BadRequest("field context must be an object of at most 32 strings")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > _MAX_FIELD or len(item) > _MAX_FIELD:
            raise _BadRequest("field context must map short strings to short strings")
        out[key] = item
    return out


def wrapped_to_json(wrapped: WrappedKey) -> dict[str, str]:
    """The wire form of a wrapped key."""
    return {
        "backend": wrapped.backend,
        "kek_id": wrapped.kek_id,
        "blob": base64.b64encode(wrapped.blob).decode(),
    }


def _wrapped(value: object) -> WrappedKey:
    if not isinstance(value, dict):
        raise _BadRequest("field wrapped_key must be an object")
    backend, kek_id = value.get("backend"), value.get("kek_id")
    if not isinstance(backend, str) or not isinstance(kek_id, str) or not kek_id:
        raise _BadRequest("field wrapped_key needs backend and kek_id strings")
    return WrappedKey(backend, kek_id, _b64(value.get("blob"), "wrapped_key.blob"))


def _handle(service: KeyReleaseService, op: str, body: Mapping[str, object]) -> dict[str, object]:
    if op == "nonce":
        return {
            "nonce": service.nonce().hex(),
            "backend": service.backend.backend_type,
            "kek_id": service.backend.kek_id,
        }
    if op not in ("generate-data-key", "decrypt"):
        raise _UnknownOperation(op)
    document = _b64(body.get("document"), "document")
    context = _context(body.get("context"))
    if op == "generate-data-key":
        made = service.generate_data_key(context, document)
        return {
            "wrapped_key": wrapped_to_json(made.wrapped_key),
            "ciphertext_for_recipient": base64.b64encode(made.ciphertext_for_recipient).decode(),
        }
    if op == "decrypt":
        released = service.decrypt(_wrapped(body.get("wrapped_key")), context, document)
        return {"ciphertext_for_recipient": base64.b64encode(released).decode()}
    raise _UnknownOperation(op)


def _refusal(exc: Exception) -> tuple[int, dict[str, object]]:
    """HTTP status and body for an error; never carries key material (errors don't)."""
    name = type(exc).__name__
    if isinstance(exc, _BadRequest):
        return 400, {"error": "BadRequest", "reason": "malformed-request", "detail": str(exc)}
    if isinstance(exc, AttestationError):
        return 403, {"error": name, "reason": exc.reason, "detail": str(exc)}
    if isinstance(exc, KeyDisabledError):
        return 403, {"error": name, "reason": "key-disabled", "detail": str(exc)}
    if isinstance(exc, KeyNotFoundError):
        return 404, {"error": name, "reason": "key-not-found", "detail": str(exc)}
    if isinstance(exc, IntegrityError):
        return 422, {"error": name, "reason": "integrity", "detail": str(exc)}
    if isinstance(exc, BackendUnavailableError):
        return 503, {"error": name, "reason": "backend-unavailable", "detail": str(exc)}
    return 500, {"error": name, "reason": "backend", "detail": str(exc)}


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def create_release_app(
    service: KeyReleaseService,
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """A minimal ASGI application serving ``service`` (run it with uvicorn)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = str(scope.get("path", ""))
        body = b""
        too_large = False
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_BODY_BYTES:
                too_large = True
                break
            if not message.get("more_body"):
                break
        status, answer = await asyncio.to_thread(_answer, service, scope, path, body, too_large)
        raw = json.dumps(answer, sort_keys=True).encode()
        signature = service.sign_response(path, body, raw)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(raw)).encode()),
                    (SIGNATURE_HEADER.encode(), signature.hex().encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": raw})

    return app


def _answer(
    service: KeyReleaseService, scope: Scope, path: str, body: bytes, too_large: bool
) -> tuple[int, dict[str, object]]:
    if not path.startswith(PATH_PREFIX):
        return 404, {"error": "NotFound", "reason": "not-found", "detail": path}
    if scope.get("method") != "POST":
        return 405, {"error": "MethodNotAllowed", "reason": "method", "detail": "use POST"}
    try:
        if too_large:
            raise _BadRequest(f"request body over {MAX_BODY_BYTES} bytes")
        try:
            parsed = json.loads(body or b"{}")
        except ValueError:
            raise _BadRequest("request body is not JSON") from None
        if not isinstance(parsed, dict):
            raise _BadRequest("request body must be a JSON object")
        return 200, _handle(service, path[len(PATH_PREFIX) :], parsed)
    except _UnknownOperation:
        return 404, {"error": "NotFound", "reason": "not-found", "detail": path}
    except (_BadRequest, CustodyError) as exc:
        status, answer = _refusal(exc)
        log.warning("key release refused", extra={"reason": answer["reason"], "path": path})
        return status, answer
    except Exception:
        # Invariant 9: unexpected input must not take the service down; report nothing
        # from the request back.
        log.exception("key release failed unexpectedly", extra={"path": path})
        return 500, {"error": "InternalError", "reason": "internal", "detail": "internal error"}


# --- The HTTP client -------------------------------------------------------------------

_ERRORS: dict[str, type[CustodyError]] = {
    cls.__name__: cls
    for cls in (
        AttestationError,
        AttestationFormatError,
        AttestationRootError,
        AttestationChainError,
        AttestationExpiredError,
        AttestationSignatureError,
        AttestationStaleError,
        AttestationDebugError,
        AttestationPcrError,
        AttestationNonceError,
        AttestationPublicKeyError,
        IntegrityError,
        KeyDisabledError,
        KeyAccessDeniedError,
        KeyNotFoundError,
        BackendUnavailableError,
    )
}


class HttpReleaseClient:
    """A :class:`ReleaseClient` over HTTP, checking every response against the pinned
    service key.

    Refusals come back as the same typed errors the service raised (an
    ``AttestationPcrError`` stays one, with ``reason`` ``pcr-mismatch``); an unreachable
    service is ``BackendUnavailableError``; anything unsigned or unparseable is
    ``BackendError``.
    """

    def __init__(self, base_url: str, service_public_key: bytes, *, timeout: float = 10.0) -> None:
        if len(service_public_key) != 32:
            raise ConfigurationError("key-release service public key must be 32 bytes")
        self._url = base_url.rstrip("/")
        self._public_key = service_public_key
        self._client = httpx.Client(timeout=timeout)

    def __repr__(self) -> str:
        return f"HttpReleaseClient({self._url!r})"

    def _call(self, op: str, body: Mapping[str, object]) -> dict[str, object]:
        path = PATH_PREFIX + op
        raw = json.dumps(body, sort_keys=True).encode()
        try:
            response = self._client.post(
                self._url + path, content=raw, headers={"content-type": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise BackendUnavailableError(
                f"key-release service unreachable: {type(exc).__name__}"
            ) from None
        try:
            signature = bytes.fromhex(response.headers.get(SIGNATURE_HEADER, ""))
        except ValueError:
            signature = b""
        verify_response(self._public_key, path, raw, response.content, signature)
        try:
            answer = json.loads(response.content)
        except ValueError:
            raise BackendError("key-release service answered something that is not JSON") from None
        if not isinstance(answer, dict):
            raise BackendError("key-release service answered something that is not an object")
        if response.status_code != 200:
            error = _ERRORS.get(str(answer.get("error")), BackendError)
            raise error(
                f"key release refused ({answer.get('reason')}): "
                f"{answer.get('error')}: {answer.get('detail')}"
            )
        return answer

    def nonce(self) -> bytes:
        """Raises: BackendUnavailableError, BackendError."""
        answer = self._call("nonce", {})
        try:
            return bytes.fromhex(str(answer["nonce"]))
        except (KeyError, ValueError):
            raise BackendError("key-release service sent no nonce") from None

    def generate_data_key(self, context: EncryptionContext, document: bytes) -> GeneratedKey:
        """Raises: the typed refusal, BackendUnavailableError, BackendError."""
        answer = self._call(
            "generate-data-key",
            {"document": base64.b64encode(document).decode(), "context": dict(context)},
        )
        try:
            return GeneratedKey(
                _wrapped(answer.get("wrapped_key")),
                _b64(answer.get("ciphertext_for_recipient"), "ciphertext_for_recipient"),
            )
        except _BadRequest as exc:
            raise BackendError(f"key-release service answer: {exc}") from None

    def decrypt(self, wrapped: WrappedKey, context: EncryptionContext, document: bytes) -> bytes:
        """Raises: the typed refusal, BackendUnavailableError, BackendError."""
        answer = self._call(
            "decrypt",
            {
                "document": base64.b64encode(document).decode(),
                "context": dict(context),
                "wrapped_key": wrapped_to_json(wrapped),
            },
        )
        try:
            return _b64(answer.get("ciphertext_for_recipient"), "ciphertext_for_recipient")
        except _BadRequest as exc:
            raise BackendError(f"key-release service answer: {exc}") from None

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()


__all__ = [
    "GeneratedKey",
    "HttpReleaseClient",
    "KeyReleaseService",
    "ReleaseClient",
    "create_release_app",
    "release_service_from_config",
    "verify_response",
]
