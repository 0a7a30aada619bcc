"""Request authentication: an API key id plus a short-lived JWT signed by that key.

The scheme is the one Fireblocks documents for its API ("Signing a request"), with the
signature algorithm chosen per key: Ed25519 (JOSE ``EdDSA``, RFC 8037) or ECDSA P-256
(``ES256``, RFC 7518 §3.4) instead of RS256. A request carries

* ``X-API-Key: <api key id>``
* ``Authorization: Bearer <JWT>`` whose claims (RFC 7519) are ``method`` (the HTTP
  method, as sent: ``GET``, ``POST``, ``DELETE``...), ``uri`` (the request path with its
  query string), ``nonce`` (unique per key), ``iat``, ``exp`` (at most 30 s after
  ``iat``), ``sub`` (the API key id) and ``bodyHash`` (hex SHA-256 of the raw body; of the
  empty string when there is none).

The ``method`` claim is not in Fireblocks' scheme: without it a token made to read a
resource could be sent, unused, as a ``DELETE`` of the same path (same ``uri``, same
empty body). A token without it is refused.

The server looks the key up, checks the token's header names the key's algorithm (so a
token cannot pick a weaker one, and ``none`` or HMAC are never accepted), verifies the
signature and the claims (:meth:`Authenticator.verify`, on a read snapshot), and finally
records the nonce until the token expires (:meth:`Authenticator.consume`); a second use
of it is refused as a replay. A request refused by the checks leaves nothing behind.

A state-changing request records its nonce in the same write transaction as its change
(:class:`PendingNonce`, used by the API's mutation routes): one write transaction per
request instead of two, since SQLite has a single writer. If that transaction does not
commit, the nonce is recorded on its own, so a refused or failed request cannot be
replayed either.
"""

import hashlib
import hmac
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from sqlalchemy.orm import Session

from shardvault.service.context import Principal
from shardvault.service.errors import (
    InvalidToken,
    MissingCredentials,
    ReplayedRequest,
    RequestMismatch,
    TokenExpired,
    TokenLifetimeTooLong,
    UnknownApiKey,
)
from shardvault.service.keys import parse_public_key
from shardvault.service.platform import Platform
from shardvault.service.uow import UnitOfWork
from shardvault.store.models import PrincipalStatus
from shardvault.store.repositories import purge_expired_nonces

REQUIRED_CLAIMS = ("method", "uri", "nonce", "iat", "exp", "sub", "bodyHash")
"""Every request JWT must carry all of these."""

MAX_TOKEN_LENGTH = 8192
MAX_KEY_ID_LENGTH = 64
MAX_NONCE_LENGTH = 128
_REPLAYED = "this token's nonce was already used"


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What authentication needs from an HTTP request."""

    api_key_id: str | None
    authorization: str | None
    method: str
    uri: str
    body: bytes


def body_hash(body: bytes) -> str:
    """The ``bodyHash`` claim for ``body``: hex SHA-256."""
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """A request whose credentials verified; its nonce is not yet recorded."""

    principal: Principal
    nonce: str
    keep_until: datetime
    """When the nonce may be forgotten: the token's expiry plus the clock leeway."""


class Authenticator:
    """Turns a signed request into a :class:`Principal`, or refuses it."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._purge_lock = threading.Lock()
        self._last_purge = 0.0

    def authenticate(self, request: SignedRequest) -> Principal:
        """Verify ``request``'s credentials and consume its nonce (a write transaction
        of its own).

        Raises:
            The errors of :meth:`verify` and :meth:`consume`.
        """
        verified = self.verify(request)
        self.record(verified)
        return verified.principal

    def record(self, verified: VerifiedRequest) -> None:
        """Record ``verified``'s nonce in a write transaction of its own.

        Raises:
            ReplayedRequest: the nonce was already used with this key.
        """
        with self._platform.unit_of_work() as uow:
            self.consume(uow, verified)

    def consume(self, uow: UnitOfWork, verified: VerifiedRequest) -> None:
        """Record ``verified``'s nonce in ``uow`` (which must commit for it to count).

        Raises:
            ReplayedRequest: the nonce was already used with this key.
        """
        principal = verified.principal
        fresh = uow.nonces(principal.workspace_id).remember(
            api_key_id=principal.api_key_id, nonce=verified.nonce, expires_at=verified.keep_until
        )
        if not fresh:
            raise ReplayedRequest(
                _REPLAYED,
                workspace_id=principal.workspace_id,
                api_key_id=principal.api_key_id,
            )
        self._maybe_purge(uow.session, self._platform.clock())

    def verify(self, request: SignedRequest) -> VerifiedRequest:
        """Check ``request``'s credentials on a read snapshot; nothing is written.

        Raises:
            MissingCredentials: no key id, no bearer token, or an oversized one.
            UnknownApiKey: no active key has this id.
            InvalidToken: a malformed token, another algorithm, a bad signature, a claim
                missing or of the wrong type, ``sub`` not the key id, ``iat`` in the future.
            TokenExpired: ``exp`` has passed.
            TokenLifetimeTooLong: ``exp`` is more than the allowed lifetime after ``iat``.
            RequestMismatch: ``method``, ``uri`` or ``bodyHash`` do not match this request.
            ReplayedRequest: the nonce is already recorded for this key.
        """
        key_id = (request.api_key_id or "").strip()
        if not key_id or len(key_id) > MAX_KEY_ID_LENGTH:
            raise MissingCredentials("the X-API-Key header is missing or malformed")
        token = bearer_token(request.authorization)
        settings = self._platform.settings
        now = self._platform.clock()
        # Everything but the nonce is checked on a read snapshot: parsing the key and
        # verifying the signature must not hold SQLite's single write lock, which every
        # other request and pipeline step waits for. Only consuming the nonce writes. (A
        # key revoked between the two is used once more, as with a request that arrived
        # a moment earlier; on PostgreSQL the reads never locked the key anyway.)
        with self._platform.unit_of_work(read_only=True) as uow:
            key = uow.credentials().api_key(key_id)
            if key is None:
                raise UnknownApiKey(f"no API key {key_id!r}")
            where = {"workspace_id": key.workspace_id, "api_key_id": key.id}
            if key.status is not PrincipalStatus.ACTIVE:
                raise UnknownApiKey(f"API key {key_id!r} is revoked", **where)
            algorithm = key.algorithm.value
            try:
                header = jwt.get_unverified_header(token)
            except jwt.PyJWTError:
                raise InvalidToken("the bearer token is not a JWT", **where) from None
            if header.get("alg") != algorithm:
                raise InvalidToken(
                    f"this key signs with {algorithm}, not {header.get('alg')!r}", **where
                )
            try:
                claims = jwt.decode(
                    token,
                    key=parse_public_key(key.public_key_pem, key.algorithm),
                    algorithms=[algorithm],
                    # Times are checked below against the platform's clock, not PyJWT's.
                    options={
                        "require": list(REQUIRED_CLAIMS),
                        "verify_aud": False,
                        "verify_exp": False,
                        "verify_iat": False,
                        "verify_nbf": False,
                    },
                )
            except jwt.InvalidSignatureError:
                raise InvalidToken("the token's signature does not verify", **where) from None
            except jwt.MissingRequiredClaimError as exc:
                raise InvalidToken(f"the token lacks the {exc.claim!r} claim", **where) from None
            except jwt.PyJWTError as exc:
                raise InvalidToken(f"the token is not acceptable: {exc}", **where) from None
            iat, exp = claims["iat"], claims["exp"]
            if not _is_int(iat) or not _is_int(exp):
                raise InvalidToken("iat and exp must be integers", **where)
            leeway = settings.clock_leeway_s
            if now >= exp + leeway:
                raise TokenExpired("the token has expired", **where)
            if iat > now + leeway:
                raise InvalidToken("the token was issued in the future (iat)", **where)
            if exp - iat > settings.max_token_lifetime_s or exp <= iat:
                raise TokenLifetimeTooLong(
                    f"exp must be after iat and at most {settings.max_token_lifetime_s} s "
                    f"after it (it is {exp - iat} s)",
                    **where,
                )
            if claims["sub"] != key.id:
                raise InvalidToken("the sub claim is not this API key's id", **where)
            # Methods are case-sensitive (RFC 9110 §9.1): the claim is the method as sent.
            if not isinstance(claims["method"], str) or claims["method"] != request.method:
                raise RequestMismatch("the method claim does not match the request", **where)
            if not isinstance(claims["uri"], str) or claims["uri"] != request.uri:
                raise RequestMismatch("the uri claim does not match the request", **where)
            claimed_hash = claims["bodyHash"]
            if not isinstance(claimed_hash, str) or not hmac.compare_digest(
                claimed_hash.lower().encode(), body_hash(request.body).encode()
            ):
                raise RequestMismatch("the bodyHash claim does not match the body", **where)
            nonce = claims["nonce"]
            if isinstance(nonce, int) and not isinstance(nonce, bool):
                nonce = str(nonce)
            if not isinstance(nonce, str) or not 1 <= len(nonce) <= MAX_NONCE_LENGTH:
                raise InvalidToken(
                    f"the nonce must be a string of 1 to {MAX_NONCE_LENGTH} characters", **where
                )
            # A replay is named as one before anything else is checked (a refused
            # change records its nonce too); two copies racing past this read are told
            # apart when the nonce is inserted (consume).
            if uow.nonces(key.workspace_id).used(api_key_id=key.id, nonce=nonce):
                raise ReplayedRequest(_REPLAYED, **where)
            user = uow.users(key.workspace_id).get(key.user_id)
            if user is None or user.status is not PrincipalStatus.ACTIVE:
                raise UnknownApiKey(f"the user of API key {key_id!r} is disabled", **where)
            principal = Principal(
                workspace_id=key.workspace_id, api_key_id=key.id, user_id=key.user_id, role=key.role
            )
        keep_until = datetime.fromtimestamp(exp + settings.clock_leeway_s, UTC)
        return VerifiedRequest(principal, nonce, keep_until)

    def _maybe_purge(self, session: Session, now: float) -> None:
        interval = self._platform.settings.nonce_purge_interval_s
        with self._purge_lock:
            if now - self._last_purge < interval:
                return
            self._last_purge = now
        purge_expired_nonces(session, datetime.fromtimestamp(now, UTC))


class PendingNonce:
    """The nonce of a verified state-changing request, to be recorded in the request's
    own write transaction (:meth:`consume_in`) or, if that does not commit, on its own
    (:meth:`consume_alone`). Thread-safe; recorded once."""

    def __init__(self, authenticator: Authenticator, verified: VerifiedRequest) -> None:
        self._authenticator = authenticator
        self.verified = verified
        self._lock = threading.Lock()
        self._recorded = False

    @property
    def recorded(self) -> bool:
        """Whether the nonce is committed (by this object)."""
        with self._lock:
            return self._recorded

    def consume_in(self, uow: UnitOfWork) -> None:
        """Record the nonce in ``uow``; it counts once ``uow`` commits.

        Raises:
            ReplayedRequest: the nonce was already used with this key.
        """
        if self.recorded:
            return
        self._authenticator.consume(uow, self.verified)
        uow.after_commit(self._mark)

    def consume_now(self) -> None:
        """Record the nonce at once, in a write transaction of its own: for a request
        that works a long time before its change is written (a key generation), so a
        copy of it sent meanwhile is refused rather than started too.

        Raises:
            ReplayedRequest: the nonce was already used with this key.
        """
        if self.recorded:
            return
        self._authenticator.record(self.verified)
        self._mark()

    def consume_alone(self) -> None:
        """Record the nonce in a write transaction of its own, unless it already is (a
        replay, or an earlier :meth:`consume_in` that committed)."""
        try:
            self.consume_now()
        except ReplayedRequest:
            self._mark()

    def _mark(self) -> None:
        with self._lock:
            self._recorded = True


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def bearer_token(authorization: str | None) -> str:
    """The JWT of an ``Authorization: Bearer <JWT>`` header.

    Raises:
        MissingCredentials: no header, another scheme, or an oversized token.
    """
    if authorization is None:
        raise MissingCredentials("the Authorization header is missing")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise MissingCredentials("the Authorization header must be 'Bearer <JWT>'")
    if len(token) > MAX_TOKEN_LENGTH:
        raise MissingCredentials(f"the bearer token is longer than {MAX_TOKEN_LENGTH} characters")
    return token
