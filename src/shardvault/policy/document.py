"""The canonical documents of a policy and an address book: what policy bundles sign.

One canonical form per model (sorted names, exact decimals, no defaults written), so a
document read by :mod:`.load` and written back here gives the same bytes, and an older
policy keeps its form (and its bundle's hash) when the language gains an optional field.
"""

from __future__ import annotations

from decimal import Decimal

from shardvault.policy._exact import EXACT
from shardvault.policy.fee_caps import fee_cap_document
from shardvault.policy.model import (
    WEEKDAYS,
    AddressBook,
    Bounds,
    Policy,
    When,
)

POLICY_FORMAT = "shardvault.policy/v1"
"""The ``format`` value of policy documents this module reads."""

ADDRESS_BOOK_FORMAT = "shardvault.address-book/v1"
"""The ``format`` value of address-book documents this module reads."""


# --- Canonical documents ------------------------------------------------------------


def _decimal_text(value: Decimal) -> str:
    text = format(value.normalize(EXACT), "f")
    return text


def _bounds_doc(bounds: Bounds) -> dict[str, object]:
    out: dict[str, object] = {}
    if bounds.over is not None:
        out["over"] = _decimal_text(bounds.over)
    if bounds.up_to is not None:
        out["up_to"] = _decimal_text(bounds.up_to)
    return out


def _clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _when_doc(when: When) -> dict[str, object]:
    out: dict[str, object] = {}
    if when.initiator is not None:
        init: dict[str, object] = {}
        for key, items in (
            ("users", when.initiator.users),
            ("api_keys", when.initiator.api_keys),
            ("groups", when.initiator.groups),
        ):
            if items:
                init[key] = sorted(items)
        out["initiator"] = init
    if when.operations is not None:
        out["operation"] = sorted(op.value for op in when.operations)
    if when.source is not None:
        src: dict[str, object] = {}
        for key, items in (
            ("vaults", when.source.vaults),
            ("wallets", when.source.wallets),
            ("tags", when.source.tags),
        ):
            if items:
                src[key] = sorted(items)
        out["source"] = src
    if when.destination is not None:
        d = when.destination
        dest: dict[str, object] = {}
        if d.any_destination:
            dest["any"] = True
        if d.all_address_book:
            dest["address_book"] = "*"
        elif d.address_book:
            dest["address_book"] = sorted(d.address_book)
        if d.whitelists:
            dest["whitelists"] = sorted(d.whitelists)
        if d.one_time:
            dest["one_time"] = True
        if d.contracts:
            contracts = []
            for c in d.contracts:
                item: dict[str, object] = {"address": c.address}
                if c.network is not None:
                    item["network"] = c.network
                if c.selectors is not None:
                    item["selectors"] = sorted("0x" + s.hex() for s in c.selectors)
                contracts.append(item)
            dest["contracts"] = contracts
        out["destination"] = dest
    if when.assets is not None:
        out["asset"] = sorted(when.assets)
    if when.networks is not None:
        out["network"] = sorted(when.networks)
    if when.amount is not None:
        out["amount"] = _bounds_doc(when.amount)
    if when.value is not None:
        out["value"] = _bounds_doc(when.value)
    if when.time is not None:
        t = when.time
        out["time"] = {
            "days": [WEEKDAYS[d] for d in sorted(t.days)],
            "from": _clock_text(t.start_minute),
            "until": _clock_text(t.end_minute),
            "timezone": t.timezone,
        }
    if when.velocity:
        out["velocity"] = [
            {
                "window": f"{v.window_seconds}s",
                "per": v.per.value,
                "measure": v.measure.value,
                **_bounds_doc(v.bounds),
            }
            for v in when.velocity
        ]
    return out


def policy_to_document(policy: Policy) -> dict[str, object]:
    """The canonical document of ``policy``: sets sorted, decimals normalized, durations
    in seconds. :func:`parse_policy` reads it back to an equal policy; bundles sign it."""
    rules = []
    for rule in policy.rules:
        item: dict[str, object] = {"name": rule.name}
        if rule.description:
            item["description"] = rule.description
        item["when"] = _when_doc(rule.when)
        item["action"] = rule.action.value
        if rule.approvals is not None:
            item["approvals"] = {
                "groups": [{"group": g.group, "count": g.count} for g in rule.approvals.groups],
                "deadline": f"{rule.approvals.deadline_seconds}s",
            }
        rules.append(item)
    doc: dict[str, object] = {
        "format": POLICY_FORMAT,
        "version": policy.version,
        "reference_currency": policy.reference_currency,
    }
    if policy.description:
        doc["description"] = policy.description
    doc["approvers"] = {
        member: {"algorithm": key.algorithm.value, "public_key": key.hex()}
        for member, key in sorted(policy.approvers.items())
    }
    doc["groups"] = {name: sorted(members) for name, members in sorted(policy.groups.items())}
    doc["rules"] = rules
    # Only a policy with caps carries the field, so a policy without them keeps the
    # canonical document, and the bundle hash, it had before fee caps existed.
    if policy.fee_caps:
        doc["fee_caps"] = {
            network: fee_cap_document(cap) for network, cap in sorted(policy.fee_caps.items())
        }
    return doc


def address_book_to_document(book: AddressBook) -> dict[str, object]:
    """The canonical document of ``book``; bundles sign it."""
    entries = []
    for entry in sorted(book.entries, key=lambda e: e.name):
        item: dict[str, object] = {
            "name": entry.name,
            "network": entry.network,
            "address": entry.address,
        }
        if entry.tags:
            item["tags"] = sorted(entry.tags)
        entries.append(item)
    return {
        "format": ADDRESS_BOOK_FORMAT,
        "entries": entries,
        "whitelists": {name: sorted(names) for name, names in sorted(book.whitelists.items())},
    }
