"""The address book: named counterparty addresses and whitelists.

Entries are edited here freely by admins, but they take effect only through the next
signed policy bundle: a bundle snapshots the address book when it is proposed, and the
pipeline evaluates transactions against the address book of the *active* bundle
(docs/policy.md, "Address book and whitelists"). An unsigned edit therefore never widens
what the policy allows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from shardvault.chains.errors import ChainError
from shardvault.chains.ethereum import parse_address
from shardvault.policy import AddressBook, PolicyError, parse_address_book
from shardvault.service.context import Principal
from shardvault.service.errors import Conflict, NotFound, ValidationError
from shardvault.service.rbac import Permission, require
from shardvault.service.uow import UnitOfWork
from shardvault.store.models_vaults import AddressBookEntry, NetworkKind
from shardvault.store.repositories_vaults import AddressBookRepository, NetworkRepository
from shardvault.store.types import utcnow

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class AddressBookEntryView:
    id: str
    name: str
    network: str
    address: str
    whitelists: tuple[str, ...]
    created_at: datetime

    @classmethod
    def of(cls, row: AddressBookEntry) -> AddressBookEntryView:
        return cls(
            row.id,
            row.name,
            row.network,
            row.address,
            tuple(json.loads(row.whitelists)),
            row.created_at,
        )


def add_entry(
    uow: UnitOfWork,
    principal: Principal,
    *,
    name: str,
    network: str,
    address: str,
    whitelists: list[str] | None = None,
) -> AddressBookEntryView:
    """Add a named address (EVM addresses are checked, EIP-55 checksum included).

    Raises:
        Forbidden, NotFound (network), ValidationError, Conflict (name taken).
    """
    require(principal, Permission.POLICIES_MANAGE)
    if not _NAME.match(name):
        raise ValidationError("name", "must be 1-128 of A-Z, a-z, 0-9, '.', '_', '-'")
    row_network = NetworkRepository(uow.session, principal.workspace_id).by_name(network)
    if row_network is None:
        raise NotFound("network", network)
    if row_network.kind is NetworkKind.EVM:
        try:
            address = parse_address(address, field="address").checksummed
        except ChainError as exc:
            raise ValidationError("address", exc.reason) from None
    elif not 20 <= len(address) <= 100 or not address.isalnum():
        raise ValidationError("address", "not an address")
    lists = sorted(set(whitelists or []))
    for item in lists:
        if not _NAME.match(item):
            raise ValidationError("whitelists", f"bad whitelist name {item!r}")
    entries = AddressBookRepository(uow.session, principal.workspace_id)
    if entries.by_name(name) is not None:
        raise Conflict(f"an address-book entry named {name!r} exists")
    row = entries.add(
        AddressBookEntry(
            name=name,
            network=network,
            address=address,
            whitelists=json.dumps(lists),
            created_at=utcnow(),
        )
    )
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="address_book.add",
        resource_type="address_book_entry",
        resource_id=row.id,
        details={
            "name": name,
            "network": network,
            "address": address,
            "whitelists": ",".join(lists),
        },
    )
    return AddressBookEntryView.of(row)


def remove_entry(uow: UnitOfWork, principal: Principal, entry_id: str) -> AddressBookEntryView:
    """Remove an entry (effective with the next policy bundle).

    Raises:
        Forbidden, NotFound.
    """
    require(principal, Permission.POLICIES_MANAGE)
    entries = AddressBookRepository(uow.session, principal.workspace_id)
    row = entries.get(entry_id)
    if row is None:
        raise NotFound("address_book_entry", entry_id)
    view = AddressBookEntryView.of(row)
    entries.remove(row)
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="address_book.remove",
        resource_type="address_book_entry",
        resource_id=entry_id,
        details={"name": view.name},
    )
    return view


def list_entries(uow: UnitOfWork, principal: Principal) -> list[AddressBookEntryView]:
    """Every entry of the workspace's (working) address book."""
    require(principal, Permission.POLICIES_READ)
    rows = AddressBookRepository(uow.session, principal.workspace_id).list()
    return [AddressBookEntryView.of(r) for r in rows]


def working_address_book(uow: UnitOfWork, workspace_id: str) -> AddressBook:
    """The current entries as a policy address book (what the next bundle will carry).

    Raises:
        ValidationError: the entries do not form a valid address book.
    """
    rows = AddressBookRepository(uow.session, workspace_id).list()
    whitelists: dict[str, list[str]] = {}
    for row in rows:
        for item in json.loads(row.whitelists):
            whitelists.setdefault(item, []).append(row.name)
    document = {
        "format": "shardvault.address-book/v1",
        "entries": [{"name": r.name, "network": r.network, "address": r.address} for r in rows],
        "whitelists": whitelists,
    }
    try:
        return parse_address_book(document)
    except PolicyError as exc:
        raise ValidationError(exc.path or "address_book", str(exc)) from None
