"""How a co-signer talks to its coordinator: always by connecting out.

:class:`CoordinatorLink` is the interface the node uses: ``poll`` for work (requests
and peers' envelopes), ``send`` envelopes, results and events. Two implementations:

* :class:`InMemoryLink` calls a :class:`~shardvault.cosigner.relay_core.RelayCore` in
  the same process (tests, the embedded default);
* :class:`HttpLink` long-polls a relay over HTTP(S) with httpx:
  ``POST /v1/relay/{id}/poll`` with ``{"wait": seconds}`` answers ``{"items": [...]}``;
  ``POST /v1/relay/{id}/send`` with ``{"envelopes": [base64...], "results": [...],
  "events": [...]}`` answers ``{"routed": n}``. Every request carries the co-signer's
  signature (:func:`~shardvault.cosigner.relay_core.sign_request`).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import ssl
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from shardvault.cosigner.errors import LinkError
from shardvault.cosigner.relay_core import RelayCore, sign_request
from shardvault.crypto.channel import PartyIdentity


@dataclass(frozen=True, slots=True)
class Item:
    """One unit of work from the coordinator: a request body or an envelope."""

    request: Mapping[str, object] | None = None
    envelope: bytes | None = None


def parse_items(raw: object) -> list[Item]:
    """Read the ``items`` list of a poll answer.

    Raises:
        LinkError: anything that is not the relay protocol.
    """
    if not isinstance(raw, list):
        raise LinkError("poll answer: 'items' must be a list")
    out = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise LinkError("poll answer: an item is not an object")
        kind = entry.get("type")
        if kind == "request" and isinstance(entry.get("body"), dict):
            out.append(Item(request=entry["body"]))
        elif kind == "envelope" and isinstance(entry.get("data"), str):
            try:
                out.append(Item(envelope=base64.b64decode(entry["data"], validate=True)))
            except (binascii.Error, ValueError):
                raise LinkError("poll answer: an envelope is not base64") from None
        else:
            raise LinkError(f"poll answer: unknown item type {kind!r}")
    return out


class CoordinatorLink(ABC):
    """The co-signer's outbound connection to a coordinator.

    ``status`` is what the co-signer reports about itself with each poll (version,
    unlock mode, attestation, policy version: operators see it in ``GET /v1/cosigners``).
    """

    status: dict[str, object] | None = None

    @abstractmethod
    def poll(self, wait: float) -> list[Item]:
        """Work waiting for this co-signer (blocks up to ``wait`` seconds).

        Raises: LinkError.
        """

    @abstractmethod
    def send(
        self,
        envelopes: Sequence[bytes],
        results: Sequence[Mapping[str, object]] = (),
        events: Sequence[Mapping[str, object]] = (),
    ) -> None:
        """Hand envelopes, results and events to the coordinator.

        Raises: LinkError.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection."""


class InMemoryLink(CoordinatorLink):
    """A link to a relay in the same process."""

    def __init__(self, core: RelayCore, party: int) -> None:
        self._core = core
        self._party = party

    def poll(self, wait: float) -> list[Item]:
        return parse_items(self._core.poll(self._party, wait, self.status))

    def send(
        self,
        envelopes: Sequence[bytes],
        results: Sequence[Mapping[str, object]] = (),
        events: Sequence[Mapping[str, object]] = (),
    ) -> None:
        self._core.send(self._party, envelopes, results, events)


class HttpLink(CoordinatorLink):
    """A long-polling HTTP client of the relay protocol, signing every request.

    Security: holds a reference to the node's identity (to sign requests); it sends only
    envelopes, results and events, never a key.
    """

    def __init__(
        self,
        base_url: str,
        identity: PartyIdentity,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._identity = identity
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport, verify=verify
        )
        self._timeout = timeout

    def _post(self, action: str, document: Mapping[str, object], wait: float = 0.0) -> object:
        body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
        request = self._client.build_request(
            "POST",
            f"/v1/relay/{self._identity.party}/{action}",
            content=body,
            timeout=self._timeout + wait,
        )
        # Sign the path as it goes out (a base URL may add a prefix to it).
        headers = sign_request(
            self._identity,
            "POST",
            request.url.path,
            body,
            int(time.time()),
            secrets.token_hex(16),
        )
        request.headers.update({**headers, "content-type": "application/json"})
        try:
            response = self._client.send(request)
        except httpx.HTTPError as exc:
            raise LinkError(f"coordinator unreachable: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise LinkError(f"coordinator answered {response.status_code} to {action}")
        try:
            return response.json()
        except ValueError:
            raise LinkError(f"coordinator answer to {action} is not JSON") from None

    def poll(self, wait: float) -> list[Item]:
        document: dict[str, object] = {"wait": wait}
        if self.status is not None:
            document["status"] = self.status
        answer = self._post("poll", document, wait)
        if not isinstance(answer, dict):
            raise LinkError("poll answer is not an object")
        return parse_items(answer.get("items"))

    def send(
        self,
        envelopes: Sequence[bytes],
        results: Sequence[Mapping[str, object]] = (),
        events: Sequence[Mapping[str, object]] = (),
    ) -> None:
        self._post(
            "send",
            {
                "envelopes": [base64.b64encode(e).decode() for e in envelopes],
                "results": [dict(r) for r in results],
                "events": [dict(e) for e in events],
            },
        )

    def close(self) -> None:
        self._client.close()
