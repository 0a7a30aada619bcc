"""Policies and the address book in the SDK: drafts, dry runs, bundles proposed, signed
by the admins (:func:`~shardvault.sdk.custody.sign_bundle`) and activated, and the
address book's entries (mixed into the async and sync clients)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from shardvault.sdk.custody import AsyncCustodyMixin, CustodyMixin, _Model


class Policy(_Model):
    id: str
    version: int
    status: str
    document: dict[str, object]
    bundle: dict[str, object] | None
    signing_message: str | None
    bundle_hash: str | None
    created_at: datetime
    activated_at: datetime | None


class PolicyList(_Model):
    data: list[Policy]


class AddressBookEntry(_Model):
    id: str
    name: str
    network: str
    address: str
    whitelists: list[str]
    created_at: datetime


class AddressBookList(_Model):
    data: list[AddressBookEntry]


class AsyncPoliciesMixin(AsyncCustodyMixin):
    """Policy and address-book methods of
    :class:`~shardvault.sdk.client.AsyncShardvaultClient`."""

    async def create_policy(
        self,
        *,
        document: Mapping[str, object] | None = None,
        text: str | None = None,
        fmt: Literal["yaml", "json"] = "yaml",
        idempotency_key: str | None = None,
    ) -> Policy:
        body: dict[str, object] = {"format": fmt}
        if document is not None:
            body["document"] = dict(document)
        if text is not None:
            body["text"] = text
        return await self._custody_call(
            "POST", "/v1/policies", Policy, body=body, idempotency_key=idempotency_key
        )

    async def get_policy(self, policy_id: str) -> Policy:
        return await self._custody_call("GET", f"/v1/policies/{policy_id}", Policy)

    async def list_policies(self) -> PolicyList:
        return await self._custody_call("GET", "/v1/policies", PolicyList)

    async def dry_run_policy(
        self,
        policy_id: str,
        *,
        request: Mapping[str, object],
        now: int | None = None,
        prices: Mapping[str, str] | None = None,
    ) -> dict[str, object]:
        body: dict[str, object] = {"request": dict(request)}
        if now is not None:
            body["now"] = now
        if prices is not None:
            body["prices"] = dict(prices)
        response = await self.request(
            "POST",
            f"/v1/policies/{policy_id}/dry-run",
            json_body=body,
            idempotency_key=str(uuid.uuid4()),
        )
        result = response.json()
        assert isinstance(result, dict)
        return result

    async def propose_policy(
        self,
        policy_id: str,
        *,
        admins: Mapping[str, object] | None = None,
        cosigners: Sequence[int] | None = None,
        initiators: Mapping[str, object] | None = None,
        initiators_from_api_keys: bool = False,
        assets: Mapping[str, object] | None = None,
        idempotency_key: str | None = None,
    ) -> Policy:
        """Propose a draft as the next bundle; ``cosigners`` picks the paired co-signers
        its directory lists (default: every paired co-signer); ``initiators`` gives its
        initiators section, or ``initiators_from_api_keys`` has the server fill it from
        the workspace's API keys (default: the previous bundle's); ``assets`` is the
        asset registry it carries (default: built from the workspace's networks and
        assets)."""
        body: dict[str, object] = {} if admins is None else {"admins": dict(admins)}
        if cosigners is not None:
            body["cosigners"] = list(cosigners)
        if initiators is not None:
            body["initiators"] = dict(initiators)
        if initiators_from_api_keys:
            body["initiators_from_api_keys"] = True
        if assets is not None:
            body["assets"] = dict(assets)
        return await self._custody_call(
            "POST",
            f"/v1/policies/{policy_id}/propose",
            Policy,
            body=body,
            idempotency_key=idempotency_key,
        )

    async def sign_policy(
        self, policy_id: str, *, signer: str, signature: str, idempotency_key: str | None = None
    ) -> Policy:
        return await self._custody_call(
            "POST",
            f"/v1/policies/{policy_id}/signatures",
            Policy,
            body={"signer": signer, "signature": signature},
            idempotency_key=idempotency_key,
        )

    async def activate_policy(
        self, policy_id: str, *, idempotency_key: str | None = None
    ) -> Policy:
        return await self._custody_call(
            "POST", f"/v1/policies/{policy_id}/activate", Policy, idempotency_key=idempotency_key
        )

    async def add_address_book_entry(
        self,
        *,
        name: str,
        network: str,
        address: str,
        whitelists: list[str] | None = None,
        idempotency_key: str | None = None,
    ) -> AddressBookEntry:
        body = {
            "name": name,
            "network": network,
            "address": address,
            "whitelists": whitelists or [],
        }
        return await self._custody_call(
            "POST", "/v1/address-book", AddressBookEntry, body=body, idempotency_key=idempotency_key
        )

    async def list_address_book(self) -> AddressBookList:
        return await self._custody_call("GET", "/v1/address-book", AddressBookList)

    async def remove_address_book_entry(
        self, entry_id: str, *, idempotency_key: str | None = None
    ) -> AddressBookEntry:
        return await self._custody_call(
            "DELETE",
            f"/v1/address-book/{entry_id}",
            AddressBookEntry,
            idempotency_key=idempotency_key or str(uuid.uuid4()),
        )


class PoliciesMixin(CustodyMixin):
    """Policy and address-book methods of :class:`~shardvault.sdk.client.ShardvaultClient`."""

    @property
    def _policies(self) -> AsyncPoliciesMixin:
        client = getattr(self, "_client")  # noqa: B009
        assert isinstance(client, AsyncPoliciesMixin)
        return client

    def create_policy(self, **kwargs: Any) -> Policy:
        return self._run(self._policies.create_policy(**kwargs))

    def get_policy(self, policy_id: str) -> Policy:
        return self._run(self._policies.get_policy(policy_id))

    def list_policies(self) -> PolicyList:
        return self._run(self._policies.list_policies())

    def dry_run_policy(self, policy_id: str, **kwargs: Any) -> dict[str, object]:
        return self._run(self._policies.dry_run_policy(policy_id, **kwargs))

    def propose_policy(self, policy_id: str, **kwargs: Any) -> Policy:
        return self._run(self._policies.propose_policy(policy_id, **kwargs))

    def sign_policy(self, policy_id: str, **kwargs: Any) -> Policy:
        return self._run(self._policies.sign_policy(policy_id, **kwargs))

    def activate_policy(self, policy_id: str, **kwargs: Any) -> Policy:
        return self._run(self._policies.activate_policy(policy_id, **kwargs))

    def add_address_book_entry(self, **kwargs: Any) -> AddressBookEntry:
        return self._run(self._policies.add_address_book_entry(**kwargs))

    def list_address_book(self) -> AddressBookList:
        return self._run(self._policies.list_address_book())

    def remove_address_book_entry(self, entry_id: str, **kwargs: Any) -> AddressBookEntry:
        return self._run(self._policies.remove_address_book_entry(entry_id, **kwargs))
