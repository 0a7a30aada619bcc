"""Errors the SDK raises: the server's problem details, or a transport failure."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from shardvault.errors import ShardvaultError

if TYPE_CHECKING:
    from shardvault.policy.address_attestation import AttestationTally


class SdkError(ShardvaultError):
    """Root of the errors raised by :mod:`shardvault.sdk`."""


class ApiError(SdkError):
    """The server refused the request; carries its RFC 9457 problem details."""

    def __init__(
        self,
        status: int,
        problem_type: str,
        title: str,
        detail: str,
        errors: list[dict[str, object]] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.problem_type = problem_type
        self.title = title
        self.detail = detail
        self.errors = errors or []

    @property
    def slug(self) -> str:
        """The last part of the problem type (``replayed-request``, ``not-found``...)."""
        return self.problem_type.rsplit(":", 1)[-1]


class TransportError(SdkError):
    """The server could not be reached (after the retries)."""


class CredentialsError(SdkError):
    """The private key file is missing, unreadable or not a supported key."""


class DigestMismatchError(SdkError):
    """The transaction the server showed does not hash to the ``intent_digest`` it asks
    an approver to sign (DESIGN.md invariant 13), or does not describe itself
    consistently: nothing was signed. ``fields`` names the fields at fault."""

    def __init__(self, message: str, *, fields: tuple[str, ...]) -> None:
        super().__init__(f"{message} ({', '.join(fields)}); refusing to sign")
        self.fields = fields


class UnverifiedAddressError(SdkError):
    """Fewer co-signers the user pinned attest the address than required (the server
    may have substituted its own): do not use it. ``tally`` says which counted and why
    each other attestation did not."""

    def __init__(self, address: str, tally: AttestationTally) -> None:
        reasons = "; ".join(tally.refused) or "the server returned no attestation"
        super().__init__(
            f"address {address} is {tally.summary()}; do not use it. Not counted: {reasons}"
        )
        self.address = address
        self.tally = tally


def error_from_response(response: httpx.Response) -> ApiError:
    """The :class:`ApiError` of a refused response (its problem details, or what the
    response says when it has none)."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    errors = body.get("errors")
    return ApiError(
        status=response.status_code,
        problem_type=str(body.get("type", "about:blank")),
        title=str(body.get("title", response.reason_phrase)),
        detail=str(body.get("detail", response.text[:200])),
        errors=errors if isinstance(errors, list) else None,
    )
