"""Remote co-signers through the SDK: pairing tokens, the paired list, unpairing, and
pairing itself (which a co-signer does with its identity key, not an API key).

docs/cosigner.md, "Pairing".
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from shardvault.sdk.custody import AsyncCustodyMixin, CustodyMixin, _Model
from shardvault.sdk.errors import TransportError, error_from_response


class PairingToken(_Model):
    token: str
    party: int
    expires_at: datetime


class PairedCosigner(_Model):
    party: int
    label: str
    fingerprint: str
    identity: dict[str, str]
    version: str
    details: dict[str, object]
    paired_at: datetime
    in_signed_directory: bool
    status: dict[str, object]


class PairedCosignerList(_Model):
    data: list[PairedCosigner]


class Unpaired(_Model):
    party: int
    unpaired: bool


class AsyncCosignersMixin(AsyncCustodyMixin):
    """Co-signer methods of :class:`~shardvault.sdk.client.AsyncShardvaultClient`."""

    async def create_pairing_token(
        self, *, party: int, idempotency_key: str | None = None
    ) -> PairingToken:
        """A one-time token that pairs one co-signer as ``party`` (give it to the
        co-signer's operator; it is shown once)."""
        return await self._custody_call(
            "POST",
            "/v1/cosigners/pairing-tokens",
            PairingToken,
            body={"party": party},
            idempotency_key=idempotency_key,
        )

    async def list_cosigners(self) -> PairedCosignerList:
        """The paired co-signers: fingerprint, signed-directory membership, live status."""
        return await self._custody_call("GET", "/v1/cosigners", PairedCosignerList)

    async def unpair_cosigner(self, party: int, *, idempotency_key: str | None = None) -> Unpaired:
        return await self._custody_call(
            "DELETE", f"/v1/cosigners/{party}", Unpaired, idempotency_key=idempotency_key
        )


class CosignersMixin(CustodyMixin):
    """Co-signer methods of :class:`~shardvault.sdk.client.ShardvaultClient`."""

    @property
    def _cosigners(self) -> AsyncCosignersMixin:
        client = getattr(self, "_client")  # noqa: B009
        assert isinstance(client, AsyncCosignersMixin)
        return client

    def create_pairing_token(self, **kwargs: Any) -> PairingToken:
        return self._run(self._cosigners.create_pairing_token(**kwargs))

    def list_cosigners(self) -> PairedCosignerList:
        return self._run(self._cosigners.list_cosigners())

    def unpair_cosigner(self, party: int, **kwargs: Any) -> Unpaired:
        return self._run(self._cosigners.unpair_cosigner(party, **kwargs))


def submit_pairing(
    server_url: str,
    document: Mapping[str, object],
    signature: str,
    *,
    verify: ssl.SSLContext | bool = True,
    timeout_s: float = 30.0,
) -> dict[str, object]:
    """Send a co-signer's signed pairing document to ``POST /v1/cosigners/pair``.

    ``verify`` is httpx's: ``True`` (system CAs), or an SSL context that trusts the
    server's pinned certificate only. Answers ``{workspace_id, party, fingerprint}``.

    Raises:
        ApiError: the server refused (its problem details).
        TransportError: the server is unreachable or did not answer JSON.
    """
    try:
        with httpx.Client(base_url=server_url.rstrip("/"), verify=verify, timeout=timeout_s) as c:
            response = c.post(
                "/v1/cosigners/pair", json={"pairing": dict(document), "signature": signature}
            )
    except httpx.HTTPError as exc:
        raise TransportError(f"server unreachable: {type(exc).__name__}") from None
    if response.status_code != 201:
        raise error_from_response(response)
    answer = response.json()
    if not isinstance(answer, dict):
        raise TransportError("the pairing answer is not an object")
    return answer
