"""Reading policy and address-book documents (YAML or JSON) into the model, strictly.

Parsing is strict in three ways. The YAML reader resolves scalars as the YAML 1.2 core
schema does (so ``17:00`` stays a string and ``on`` is not a boolean), refuses duplicate
keys and aliases, and reads decimal numbers as exact :class:`~decimal.Decimal`. Every
object of the language has a closed set of fields: an unknown field is an
:class:`~shardvault.policy.errors.UnknownFieldError` naming its path (``rules[3].when``),
never ignored. Finally the document is validated against the published JSON Schema
(``schema.json``, shipped with the package and copied to ``docs/policy.schema.json``).

Text is read by :mod:`.text` (strict YAML/JSON, bounded depth); this module reads the
data into the model. A policy ``version`` is 1 to :data:`MAX_VERSION`. The canonical
documents policy bundles sign are written by :mod:`.document` (re-exported here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema

from shardvault.policy._exact import EXACT
from shardvault.policy.document import ADDRESS_BOOK_FORMAT as ADDRESS_BOOK_FORMAT
from shardvault.policy.document import POLICY_FORMAT as POLICY_FORMAT
from shardvault.policy.document import address_book_to_document as address_book_to_document
from shardvault.policy.document import policy_to_document as policy_to_document
from shardvault.policy.errors import (
    ConfigurationKeyError,
    PolicyDocumentError,
    SchemaViolationError,
    UnknownFieldError,
)
from shardvault.policy.fee_caps import FEE_CAP_FIELDS, read_fee_cap
from shardvault.policy.keys import PublicKey
from shardvault.policy.model import (
    WEEKDAYS,
    AddressBook,
    AddressBookEntry,
    ApprovalRequirement,
    Bounds,
    ContractTarget,
    Decision,
    DestinationCondition,
    FeeCap,
    GroupRequirement,
    InitiatorCondition,
    Measure,
    Operation,
    Policy,
    Rule,
    Scope,
    SourceCondition,
    TimeWindow,
    VelocityCondition,
    When,
    normalize_address,
)
from shardvault.policy.text import MAX_DEPTH as MAX_DEPTH
from shardvault.policy.text import DocumentFormat as DocumentFormat
from shardvault.policy.text import check_depth as check_depth
from shardvault.policy.text import parse_text as parse_text

_DURATION = re.compile(r"([1-9][0-9]{0,8})([smhd])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])|24:00")
_SELECTOR = re.compile(r"0x[0-9a-fA-F]{8}")
_DECIMAL_TEXT = re.compile(r"[0-9]{1,80}(\.[0-9]{1,80})?")
_MAX_LIMIT_DIGITS = 80

MAX_VERSION = 2**31 - 1
"""The largest policy version: the database stores versions (of policies, and of the
policy a transaction or an approval was judged under) in INTEGER columns, which are
signed 32-bit on PostgreSQL."""

# --- Field readers ------------------------------------------------------------------


def _object(
    value: object, path: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, object]:
    if not isinstance(value, Mapping):
        raise PolicyDocumentError("expected a mapping", path=path)
    known = set(required) | set(optional)
    out: dict[str, object] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise PolicyDocumentError("field names are strings", path=path)
        if key not in known:
            raise UnknownFieldError(
                f"unknown field {key!r} (expected one of {', '.join(sorted(known))})",
                path=path,
            )
        out[key] = item
    for key in required:
        if key not in out:
            raise PolicyDocumentError(f"missing field {key!r}", path=path)
    return out


def _name(value: object, path: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise PolicyDocumentError(
            "expected a non-empty string of at most 200 characters", path=path
        )
    return value


def _names(value: object, path: str) -> frozenset[str]:
    if not isinstance(value, list) or not value:
        raise PolicyDocumentError("expected a non-empty list", path=path)
    out = set()
    for i, item in enumerate(value):
        name = _name(item, f"{path}[{i}]")
        if name in out:
            raise PolicyDocumentError(f"{name!r} is listed twice", path=f"{path}[{i}]")
        out.add(name)
    return frozenset(out)


def _text(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise PolicyDocumentError("expected a string", path=path)
    return value


def _positive_int(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PolicyDocumentError("expected a positive integer", path=path)
    return value


def _flag(value: object, path: str) -> bool:
    if value is not True:
        raise PolicyDocumentError("expected true (omit the field otherwise)", path=path)
    return True


def _decimal(value: object, path: str) -> Decimal:
    """A non-negative exact decimal given as a string, an integer or a YAML/JSON number."""
    if isinstance(value, bool):
        raise PolicyDocumentError("expected a decimal number", path=path)
    if isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, Decimal):
        result = value
    elif isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
        try:
            result = EXACT.create_decimal(value)
        except (InvalidOperation, ArithmeticError):  # pragma: no cover - regex bounds it
            raise PolicyDocumentError("not a decimal number", path=path) from None
    else:
        raise PolicyDocumentError('expected a decimal number such as "12.5"', path=path)
    if not result.is_finite() or result < 0:
        raise PolicyDocumentError("expected a finite, non-negative number", path=path)
    exponent = result.as_tuple().exponent
    if (
        len(result.as_tuple().digits) > _MAX_LIMIT_DIGITS
        or result.adjusted() >= _MAX_LIMIT_DIGITS
        or (isinstance(exponent, int) and exponent < -_MAX_LIMIT_DIGITS)
    ):
        raise PolicyDocumentError(
            f"at most {_MAX_LIMIT_DIGITS} digits before and after the point", path=path
        )
    return result


def _duration(value: object, path: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match:
            return int(match.group(1)) * _DURATION_UNITS[match.group(2)]
    raise PolicyDocumentError("expected a duration such as 90s, 30m, 24h, 7d", path=path)


def _bounds(obj: Mapping[str, object], path: str) -> Bounds:
    over = _decimal(obj["over"], f"{path}.over") if "over" in obj else None
    up_to = _decimal(obj["up_to"], f"{path}.up_to") if "up_to" in obj else None
    if over is None and up_to is None:
        raise PolicyDocumentError("give over, up_to or both", path=path)
    if over is not None and up_to is not None and not over < up_to:
        raise PolicyDocumentError("over must be below up_to", path=path)
    return Bounds(over, up_to)


# --- Policy documents ---------------------------------------------------------------


def _initiator(
    value: object, path: str, groups: Mapping[str, frozenset[str]]
) -> InitiatorCondition:
    obj = _object(value, path, (), ("users", "api_keys", "groups"))
    if not obj:
        raise PolicyDocumentError("name users, api_keys or groups", path=path)
    cond = InitiatorCondition(
        users=_names(obj["users"], f"{path}.users") if "users" in obj else frozenset(),
        api_keys=_names(obj["api_keys"], f"{path}.api_keys") if "api_keys" in obj else frozenset(),
        groups=_names(obj["groups"], f"{path}.groups") if "groups" in obj else frozenset(),
    )
    for group in sorted(cond.groups):
        if group not in groups:
            raise PolicyDocumentError(f"no group named {group!r}", path=f"{path}.groups")
    return cond


def _operations(value: object, path: str) -> frozenset[Operation]:
    out = set()
    for i, name in enumerate(sorted(_names(value, path))):
        try:
            out.add(Operation(name))
        except ValueError:
            raise PolicyDocumentError(
                f"unknown operation {name!r} (expected one of "
                f"{', '.join(op.value for op in Operation)})",
                path=f"{path}[{i}]",
            ) from None
    return frozenset(out)


def _source(value: object, path: str) -> SourceCondition:
    obj = _object(value, path, (), ("vaults", "wallets", "tags"))
    if not obj:
        raise PolicyDocumentError("name vaults, wallets or tags", path=path)
    return SourceCondition(
        vaults=_names(obj["vaults"], f"{path}.vaults") if "vaults" in obj else frozenset(),
        wallets=_names(obj["wallets"], f"{path}.wallets") if "wallets" in obj else frozenset(),
        tags=_names(obj["tags"], f"{path}.tags") if "tags" in obj else frozenset(),
    )


def _contract(value: object, path: str) -> ContractTarget:
    obj = _object(value, path, ("address",), ("network", "selectors"))
    selectors: frozenset[bytes] | None = None
    if "selectors" in obj:
        items = _names(obj["selectors"], f"{path}.selectors")
        for item in sorted(items):
            if not _SELECTOR.fullmatch(item):
                raise PolicyDocumentError(
                    f"{item!r} is not 0x and 4 bytes of hex", path=f"{path}.selectors"
                )
        selectors = frozenset(bytes.fromhex(item[2:]) for item in items)
    network = _name(obj["network"], f"{path}.network") if "network" in obj else None
    return ContractTarget(
        normalize_address(_name(obj["address"], f"{path}.address")), network, selectors
    )


def _destination(value: object, path: str) -> DestinationCondition:
    obj = _object(value, path, (), ("any", "address_book", "whitelists", "one_time", "contracts"))
    if not obj:
        raise PolicyDocumentError(
            "name any, address_book, whitelists, one_time or contracts", path=path
        )
    all_book = obj.get("address_book") == "*"
    book = (
        _names(obj["address_book"], f"{path}.address_book")
        if "address_book" in obj and not all_book
        else frozenset()
    )
    contracts_value = obj.get("contracts", [])
    if "contracts" in obj and (not isinstance(contracts_value, list) or not contracts_value):
        raise PolicyDocumentError("expected a non-empty list", path=f"{path}.contracts")
    assert isinstance(contracts_value, list)
    return DestinationCondition(
        any_destination=_flag(obj["any"], f"{path}.any") if "any" in obj else False,
        all_address_book=all_book,
        address_book=book,
        whitelists=_names(obj["whitelists"], f"{path}.whitelists")
        if "whitelists" in obj
        else frozenset(),
        one_time=_flag(obj["one_time"], f"{path}.one_time") if "one_time" in obj else False,
        contracts=tuple(
            _contract(item, f"{path}.contracts[{i}]") for i, item in enumerate(contracts_value)
        ),
    )


def _clock(value: object, path: str) -> int:
    if not isinstance(value, str) or not _CLOCK.fullmatch(value):
        raise PolicyDocumentError("expected a time of day HH:MM (quote it in YAML)", path=path)
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def _time(value: object, path: str) -> TimeWindow:
    obj = _object(value, path, ("timezone",), ("days", "from", "until"))
    zone_name = _name(obj["timezone"], f"{path}.timezone")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyDocumentError(
            f"unknown time zone {zone_name!r}", path=f"{path}.timezone"
        ) from None
    days = frozenset(range(7))
    if "days" in obj:
        names = _names(obj["days"], f"{path}.days")
        for name in sorted(names):
            if name not in WEEKDAYS:
                raise PolicyDocumentError(
                    f"unknown day {name!r} (expected {', '.join(WEEKDAYS)})", path=f"{path}.days"
                )
        days = frozenset(WEEKDAYS.index(name) for name in names)
    start = _clock(obj["from"], f"{path}.from") if "from" in obj else 0
    end = _clock(obj["until"], f"{path}.until") if "until" in obj else 24 * 60
    if start == end:
        raise PolicyDocumentError("from and until are equal: an empty window", path=path)
    return TimeWindow(days, start, end, zone_name, zone)


def _velocity(value: object, path: str) -> tuple[VelocityCondition, ...]:
    if not isinstance(value, list) or not value:
        raise PolicyDocumentError("expected a non-empty list", path=path)
    out = []
    for i, item in enumerate(value):
        item_path = f"{path}[{i}]"
        obj = _object(item, item_path, ("window", "per", "measure"), ("over", "up_to"))
        try:
            per = Scope(_name(obj["per"], f"{item_path}.per"))
        except ValueError:
            raise PolicyDocumentError(
                f"expected one of {', '.join(s.value for s in Scope)}", path=f"{item_path}.per"
            ) from None
        try:
            measure = Measure(_name(obj["measure"], f"{item_path}.measure"))
        except ValueError:
            raise PolicyDocumentError(
                "expected amount, value or count", path=f"{item_path}.measure"
            ) from None
        bounds = _bounds(obj, item_path)
        if measure is Measure.COUNT:
            for end in (bounds.over, bounds.up_to):
                if end is not None and end != end.to_integral_value():
                    raise PolicyDocumentError("a count limit is a whole number", path=item_path)
        out.append(
            VelocityCondition(_duration(obj["window"], f"{item_path}.window"), per, measure, bounds)
        )
    return tuple(out)


_WHEN_FIELDS = (
    "initiator",
    "operation",
    "source",
    "destination",
    "asset",
    "network",
    "amount",
    "value",
    "time",
    "velocity",
)


def _when(value: object, path: str, groups: Mapping[str, frozenset[str]]) -> When:
    obj = _object(value, path, (), _WHEN_FIELDS)
    assets = _names(obj["asset"], f"{path}.asset") if "asset" in obj else None
    amount = None
    if "amount" in obj:
        amount = _bounds(
            _object(obj["amount"], f"{path}.amount", (), ("over", "up_to")), f"{path}.amount"
        )
    value_bounds = None
    if "value" in obj:
        value_bounds = _bounds(
            _object(obj["value"], f"{path}.value", (), ("over", "up_to")), f"{path}.value"
        )
    velocity = _velocity(obj["velocity"], f"{path}.velocity") if "velocity" in obj else ()
    uses_units = amount is not None or any(v.measure is Measure.AMOUNT for v in velocity)
    if uses_units and assets is None:
        # An amount in asset units means nothing without naming the asset: 10 of what?
        raise PolicyDocumentError(
            "amounts in asset units need an asset condition in the same rule", path=path
        )
    return When(
        initiator=_initiator(obj["initiator"], f"{path}.initiator", groups)
        if "initiator" in obj
        else None,
        operations=_operations(obj["operation"], f"{path}.operation")
        if "operation" in obj
        else None,
        source=_source(obj["source"], f"{path}.source") if "source" in obj else None,
        destination=_destination(obj["destination"], f"{path}.destination")
        if "destination" in obj
        else None,
        assets=assets,
        networks=_names(obj["network"], f"{path}.network") if "network" in obj else None,
        amount=amount,
        value=value_bounds,
        time=_time(obj["time"], f"{path}.time") if "time" in obj else None,
        velocity=velocity,
    )


def _approvals(
    value: object,
    path: str,
    groups: Mapping[str, frozenset[str]],
    approvers: Mapping[str, PublicKey],
) -> ApprovalRequirement:
    obj = _object(value, path, ("groups", "deadline"))
    items = obj["groups"]
    if not isinstance(items, list) or not items:
        raise PolicyDocumentError("expected a non-empty list", path=f"{path}.groups")
    requirements = []
    seen = set()
    for i, item in enumerate(items):
        item_path = f"{path}.groups[{i}]"
        req = _object(item, item_path, ("group", "count"))
        group = _name(req["group"], f"{item_path}.group")
        count = _positive_int(req["count"], f"{item_path}.count")
        if group not in groups:
            raise PolicyDocumentError(f"no group named {group!r}", path=f"{item_path}.group")
        if group in seen:
            raise PolicyDocumentError(f"group {group!r} is required twice", path=item_path)
        seen.add(group)
        able = sum(1 for member in groups[group] if member in approvers)
        if able < count:
            raise PolicyDocumentError(
                f"group {group!r} has {able} members with approver keys, fewer than {count}",
                path=f"{item_path}.count",
            )
        requirements.append(GroupRequirement(group, count))
    return ApprovalRequirement(tuple(requirements), _duration(obj["deadline"], f"{path}.deadline"))


def _rule(
    value: object,
    path: str,
    groups: Mapping[str, frozenset[str]],
    approvers: Mapping[str, PublicKey],
) -> Rule:
    obj = _object(value, path, ("name", "action"), ("description", "when", "approvals"))
    action_name = _name(obj["action"], f"{path}.action")
    try:
        action = Decision(action_name)
    except ValueError:
        raise PolicyDocumentError(
            "expected allow, block or require_approvals", path=f"{path}.action"
        ) from None
    approvals = None
    if action is Decision.REQUIRE_APPROVALS:
        if "approvals" not in obj:
            raise PolicyDocumentError("require_approvals needs approvals", path=path)
        approvals = _approvals(obj["approvals"], f"{path}.approvals", groups, approvers)
    elif "approvals" in obj:
        raise PolicyDocumentError(
            f"approvals only go with require_approvals, not {action.value}",
            path=f"{path}.approvals",
        )
    return Rule(
        name=_name(obj["name"], f"{path}.name"),
        when=_when(obj.get("when", {}), f"{path}.when", groups),
        action=action,
        approvals=approvals,
        description=_text(obj["description"], f"{path}.description")
        if "description" in obj
        else "",
    )


def _approver_keys(value: object, path: str) -> dict[str, PublicKey]:
    if not isinstance(value, Mapping):
        raise PolicyDocumentError("expected a mapping of member id to key", path=path)
    out = {}
    for member, item in value.items():
        member_name = _name(member, path)
        item_path = f"{path}.{member_name}"
        obj = _object(item, item_path, ("algorithm", "public_key"))
        try:
            out[member_name] = PublicKey.parse(
                _name(obj["algorithm"], f"{item_path}.algorithm"),
                _name(obj["public_key"], f"{item_path}.public_key"),
                path=item_path,
            )
        except ConfigurationKeyError as exc:
            raise PolicyDocumentError(exc.reason, path=exc.path) from None
    return out


def _fee_caps(value: object, path: str) -> dict[str, FeeCap]:
    """``{network: cap}``: each cap names fields of its network's chain family only
    (:mod:`.fee_caps`)."""
    if not isinstance(value, Mapping):
        raise PolicyDocumentError("expected a mapping of network name to fee cap", path=path)
    out = {}
    for network, item in value.items():
        name = _name(network, path)
        item_path = f"{path}.{name}"
        out[name] = read_fee_cap(name, _object(item, item_path, (), FEE_CAP_FIELDS), item_path)
    return out


def _groups(value: object, path: str) -> dict[str, frozenset[str]]:
    if not isinstance(value, Mapping):
        raise PolicyDocumentError("expected a mapping of group name to members", path=path)
    return {_name(name, path): _names(members, f"{path}.{name}") for name, members in value.items()}


def parse_policy(data: object, *, path: str = "policy") -> Policy:
    """Build a :class:`Policy` from document data, then check it against the schema.

    Raises:
        UnknownFieldError: a field the language does not define, with its path.
        SchemaViolationError: the published JSON Schema rejects the document.
        PolicyDocumentError: anything else malformed or inconsistent (nested deeper than
            :data:`MAX_DEPTH` levels, a version outside 1 to :data:`MAX_VERSION`, unknown
            group, duplicate rule name, an approval group without enough approver keys,
            a fee cap with a field of another chain family than its network's, or an
            amount that is not a decimal string in its range).
    """
    check_depth(data, path)
    obj = _object(
        data,
        path,
        ("format", "version", "reference_currency", "rules"),
        ("description", "approvers", "groups", "fee_caps"),
    )
    if obj["format"] != POLICY_FORMAT:
        raise PolicyDocumentError(f"expected format {POLICY_FORMAT!r}", path=f"{path}.format")
    version = _positive_int(obj["version"], f"{path}.version")
    if version > MAX_VERSION:
        raise PolicyDocumentError(
            f"must be at most 2^31 - 1 ({MAX_VERSION})", path=f"{path}.version"
        )
    currency = _name(obj["reference_currency"], f"{path}.reference_currency")
    approvers = _approver_keys(obj.get("approvers", {}), f"{path}.approvers")
    groups = _groups(obj.get("groups", {}), f"{path}.groups")
    rules_value = obj["rules"]
    if not isinstance(rules_value, list):
        raise PolicyDocumentError("expected a list of rules", path=f"{path}.rules")
    rules = tuple(
        _rule(item, f"{path}.rules[{i}]", groups, approvers) for i, item in enumerate(rules_value)
    )
    names: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name in names:
            raise PolicyDocumentError(
                f"rule name {rule.name!r} is used twice", path=f"{path}.rules[{i}].name"
            )
        names.add(rule.name)
    policy = Policy(
        version=version,
        reference_currency=currency,
        approvers=approvers,
        groups=groups,
        rules=rules,
        description=_text(obj["description"], f"{path}.description")
        if "description" in obj
        else "",
        fee_caps=_fee_caps(obj["fee_caps"], f"{path}.fee_caps") if "fee_caps" in obj else {},
    )
    _check_schema(data, "policy", path)
    return policy


def parse_address_book(data: object, *, path: str = "address_book") -> AddressBook:
    """Build an :class:`AddressBook` from document data.

    Raises:
        UnknownFieldError: a field the format does not define.
        PolicyDocumentError: nested deeper than :data:`MAX_DEPTH` levels, a duplicate
            entry name or address, a whitelist naming an entry that does not exist.
    """
    check_depth(data, path)
    obj = _object(data, path, ("format",), ("entries", "whitelists"))
    if obj["format"] != ADDRESS_BOOK_FORMAT:
        raise PolicyDocumentError(f"expected format {ADDRESS_BOOK_FORMAT!r}", path=f"{path}.format")
    items = obj.get("entries", [])
    if not isinstance(items, list):
        raise PolicyDocumentError("expected a list", path=f"{path}.entries")
    entries = []
    names: set[str] = set()
    places: set[tuple[str, str]] = set()
    for i, item in enumerate(items):
        item_path = f"{path}.entries[{i}]"
        entry_obj = _object(item, item_path, ("name", "network", "address"), ("tags",))
        entry = AddressBookEntry(
            name=_name(entry_obj["name"], f"{item_path}.name"),
            network=_name(entry_obj["network"], f"{item_path}.network"),
            address=_name(entry_obj["address"], f"{item_path}.address"),
            tags=_names(entry_obj["tags"], f"{item_path}.tags")
            if "tags" in entry_obj
            else frozenset(),
        )
        place = (entry.network, normalize_address(entry.address))
        if entry.name in names:
            raise PolicyDocumentError(f"entry name {entry.name!r} is used twice", path=item_path)
        if place in places:
            raise PolicyDocumentError("this address already has an entry", path=item_path)
        names.add(entry.name)
        places.add(place)
        entries.append(entry)
    lists_value = obj.get("whitelists", {})
    if not isinstance(lists_value, Mapping):
        raise PolicyDocumentError(
            "expected a mapping of name to entries", path=f"{path}.whitelists"
        )
    whitelists = {}
    for name, members in lists_value.items():
        list_name = _name(name, f"{path}.whitelists")
        entry_names = _names(members, f"{path}.whitelists.{list_name}")
        for entry_name in sorted(entry_names - names):
            raise PolicyDocumentError(
                f"no address-book entry named {entry_name!r}", path=f"{path}.whitelists.{list_name}"
            )
        whitelists[list_name] = entry_names
    book = AddressBook(tuple(entries), whitelists)
    _check_schema(data, "address_book", path)
    return book


def load_policy(text: str, fmt: DocumentFormat = "yaml") -> Policy:
    """Parse a policy document from YAML or JSON text. Raises as :func:`parse_policy`."""
    return parse_policy(parse_text(text, fmt))


def load_address_book(text: str, fmt: DocumentFormat = "yaml") -> AddressBook:
    """Parse an address-book document from YAML or JSON text."""
    return parse_address_book(parse_text(text, fmt))


# --- Schema -------------------------------------------------------------------------


@cache
def published_schema() -> dict[str, object]:
    """The published JSON Schema (draft 2020-12) of policy and address-book documents.

    It is package data read once, like the package's own modules; no other file is
    read by the policy layer.
    """
    text = resources.files("shardvault.policy").joinpath("schema.json").read_text("utf-8")
    loaded = json.loads(text)
    assert isinstance(loaded, dict)
    return loaded


@cache
def _validator(which: str) -> Callable[[object], list[tuple[str, str]]]:
    schema = published_schema()
    target = schema if which == "policy" else {"$ref": f"#/$defs/{which}", "$defs": schema["$defs"]}
    validator = jsonschema.Draft202012Validator(target)

    def errors(data: object) -> list[tuple[str, str]]:
        return [(e.json_path, e.message) for e in validator.iter_errors(_plain(data))]

    return errors


def _plain(data: object) -> object:
    """Data as JSON would give it: Decimals become strings or integers for the schema."""
    if isinstance(data, Mapping):
        return {k: _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    if isinstance(data, Decimal):
        return format(data, "f")
    return data


def _check_schema(data: object, which: str, path: str) -> None:
    found = _validator(which)(data)
    if found:
        where, message = sorted(found)[0]
        raise SchemaViolationError(message, path=path + where.removeprefix("$"))


def schema_errors(data: object, which: Literal["policy", "address_book"] = "policy") -> list[str]:
    """Every message the published schema gives for ``data`` (for tests and tooling)."""
    return [f"{where}: {message}" for where, message in _validator(which)(data)]
