"""Errors of the service layer: the domain's answer to a request it will not carry out.

:class:`ServiceError` is the root. The API maps each category to one HTTP status in a
single exception handler (``shardvault.api.problems``); each error also carries a short
``problem`` slug that becomes the problem type. Messages name the field or resource at
fault and never a secret (no tokens, no key material).
"""

from shardvault.errors import ShardvaultError


class ServiceError(ShardvaultError):
    """Root of the errors raised by :mod:`shardvault.service`."""

    problem = "service-error"
    """The slug of the RFC 9457 problem type this error becomes at the API."""


class ValidationError(ServiceError):
    """The request is well-formed but a field's value is not acceptable."""

    problem = "invalid-request"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class BodyTooLarge(ServiceError):
    """The request body is larger than its route accepts; refused while it arrives,
    before any of it is parsed (``shardvault.body_limit``)."""

    problem = "body-too-large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"body: larger than the {limit} bytes this path accepts")
        self.limit = limit


class NotFound(ServiceError):
    """The resource does not exist in the caller's workspace (other workspaces' resources
    are reported the same way, so their existence does not leak)."""

    problem = "not-found"

    def __init__(self, resource: str, resource_id: str) -> None:
        super().__init__(f"{resource} {resource_id!r} not found")
        self.resource = resource
        self.resource_id = resource_id


class Conflict(ServiceError):
    """The request contradicts the current state (a duplicate, the last owner...)."""

    problem = "conflict"


class IdempotencyKeyReused(Conflict):
    """An idempotency key was sent again with a different request."""

    problem = "idempotency-key-reused"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"idempotency key {key!r} was already used with a different method, path or body"
        )
        self.key = key


class Forbidden(ServiceError):
    """The caller is authenticated but its role does not allow this."""

    problem = "forbidden"


class AuthenticationError(ServiceError):
    """The request's credentials are missing or do not verify.

    ``workspace_id`` and ``api_key_id`` are set when the request named a real key, so the
    refusal can be recorded in that workspace's audit chain.
    """

    problem = "unauthenticated"

    def __init__(
        self, message: str, *, workspace_id: str | None = None, api_key_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.workspace_id = workspace_id
        self.api_key_id = api_key_id


class MissingCredentials(AuthenticationError):
    """The API key header or the bearer token is absent or malformed."""

    problem = "missing-credentials"


class UnknownApiKey(AuthenticationError):
    """No active API key has this id."""

    problem = "unknown-api-key"


class InvalidToken(AuthenticationError):
    """The JWT is malformed, signed by another key or algorithm, or a claim is wrong."""

    problem = "invalid-token"


class TokenExpired(AuthenticationError):
    """The JWT's ``exp`` has passed."""

    problem = "token-expired"


class TokenLifetimeTooLong(AuthenticationError):
    """``exp`` is more than the allowed lifetime after ``iat``."""

    problem = "token-lifetime-too-long"


class RequestMismatch(AuthenticationError):
    """The JWT was signed for another request (its ``method``, ``uri`` or ``bodyHash``
    differ)."""

    problem = "request-mismatch"


class ReplayedRequest(AuthenticationError):
    """The JWT's nonce was already used with this key."""

    problem = "replayed-request"


class Unavailable(ServiceError):
    """A dependency (the database) is not reachable."""

    problem = "unavailable"
