"""The policy's own view of a transaction request.

The service layer fills a :class:`TransactionRequest` from the parsed chain transaction
(never from an opaque hash, DESIGN.md "Security invariants" 3): what operation, who asked,
from where, to where, which asset on which network, how much in base units, and for
contract calls the contract and 4-byte method selector. This module knows nothing about
chains: a co-signer recomputes the same view from the payload it was given.

:func:`parse_request` reads the JSON form documented in ``docs/policy.md``; every check
raises :class:`~shardvault.policy.errors.RequestError` naming the path at fault.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NewType

from shardvault.policy.errors import RequestError
from shardvault.policy.model import Decision, InitiatorKind, Operation, normalize_address

UnixSeconds = NewType("UnixSeconds", int)
"""Seconds since 1970-01-01T00:00:00Z, the only clock value the policy layer sees."""

BaseUnits = NewType("BaseUnits", int)
"""An amount in the asset's smallest unit (wei, satoshi, lamport, 10^-6 USDC)."""

_DIGEST_HEX = re.compile(r"[0-9a-fA-F]{64}")
_SELECTOR_HEX = re.compile(r"0x[0-9a-fA-F]{8}")
_BASE_UNITS = re.compile(r"0|[1-9][0-9]*")
_MAX_DECIMALS = 36


@dataclass(frozen=True, slots=True)
class Initiator:
    """Who started the request."""

    kind: InitiatorKind
    id: str

    @property
    def key(self) -> str:
        """The velocity key of this initiator (kind and id, so a user and an API key
        with the same id never share a limit)."""
        return f"{self.kind.value}:{self.id}"


@dataclass(frozen=True, slots=True)
class Source:
    """Where the funds or the key come from."""

    vault: str
    wallet: str | None = None
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Asset:
    """An asset identifier and the number of decimals of its base unit."""

    id: str
    decimals: int


@dataclass(frozen=True, slots=True)
class ContractCall:
    """The called contract's 4-byte method selector (the contract is the destination)."""

    selector: bytes


@dataclass(frozen=True, slots=True)
class TransactionRequest:
    """One request as the policy sees it.

    ``digest`` is the 32-byte digest that approvals sign (the transaction's signing
    digest; for operations with none, such as key generation, a digest of the request).
    ``created_at`` starts the request's approval deadline (each approval's lifetime
    starts at its own ``signed_at``) and places the request in history.
    ``amount`` is ``None`` for operations that move no funds.
    """

    digest: bytes
    operation: Operation
    created_at: UnixSeconds
    initiator: Initiator
    source: Source
    network: str | None = None
    destination: str | None = None
    asset: Asset | None = None
    amount: BaseUnits | None = None
    contract_call: ContractCall | None = None

    @property
    def destination_key(self) -> str | None:
        """The normalized destination address used for comparisons and velocity."""
        if self.destination is None:
            return None
        return normalize_address(self.destination)

    def amount_in_units(self) -> Decimal | None:
        """The amount in whole asset units, exactly (a decimal shift, no rounding)."""
        if self.amount is None or self.asset is None:
            return None
        return Decimal(self.amount).scaleb(-self.asset.decimals)


@dataclass(frozen=True, slots=True)
class PastTransaction:
    """A history entry: a past request and, when known, its final decision.

    Velocity aggregates count an entry unless its recorded decision is something other
    than ``allow`` (a blocked or never-approved transaction moved nothing).
    """

    request: TransactionRequest
    decision: Decision | None = None

    @property
    def counts(self) -> bool:
        """Whether this entry counts toward velocity aggregates."""
        return self.decision is None or self.decision is Decision.ALLOW


def _fields(value: object, path: str, required: set[str], optional: set[str]) -> dict[str, object]:
    if not isinstance(value, Mapping):
        raise RequestError("expected an object", path=path)
    out: dict[str, object] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise RequestError("field names are strings", path=path)
        if key not in required and key not in optional:
            raise RequestError(f"unknown field {key!r}", path=path)
        out[key] = item
    for key in sorted(required - out.keys()):
        raise RequestError(f"missing field {key!r}", path=path)
    return out


def _string(value: object, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise RequestError("expected a non-empty string", path=path)
    return value


def parse_timestamp(value: object, path: str) -> UnixSeconds:
    """Read a timestamp given as integer Unix seconds or an RFC 3339 string with offset.

    Raises:
        RequestError: anything else, including a string without a time-zone offset.
    """
    if isinstance(value, bool):
        raise RequestError("expected Unix seconds or an RFC 3339 time", path=path)
    if isinstance(value, int):
        if value < 0:
            raise RequestError("a timestamp is not negative", path=path)
        return UnixSeconds(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise RequestError("not an RFC 3339 time", path=path) from None
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise RequestError("an RFC 3339 time needs an offset such as Z", path=path)
        if moment.microsecond:
            raise RequestError("timestamps have whole seconds", path=path)
        return UnixSeconds(int(moment.timestamp()))
    raise RequestError("expected Unix seconds or an RFC 3339 time", path=path)


def parse_request(data: object, path: str = "request") -> TransactionRequest:
    """Build a :class:`TransactionRequest` from its JSON form.

    Raises:
        RequestError: a missing or unknown field, a bad type, a bad digest or selector,
            an amount without an asset, or fields that do not fit the operation.
    """
    obj = _fields(
        data,
        path,
        {"digest", "operation", "created_at", "initiator", "source"},
        {"network", "destination", "asset", "amount", "contract"},
    )
    digest_text = _string(obj["digest"], f"{path}.digest")
    if digest_text.startswith("0x"):
        digest_text = digest_text[2:]
    if not _DIGEST_HEX.fullmatch(digest_text):
        raise RequestError("expected 32 bytes of hex", path=f"{path}.digest")
    try:
        operation = Operation(_string(obj["operation"], f"{path}.operation"))
    except ValueError:
        raise RequestError("unknown operation", path=f"{path}.operation") from None
    init = _fields(obj["initiator"], f"{path}.initiator", {"type", "id"}, set())
    try:
        kind = InitiatorKind(_string(init["type"], f"{path}.initiator.type"))
    except ValueError:
        raise RequestError("expected user or api_key", path=f"{path}.initiator.type") from None
    initiator = Initiator(kind, _string(init["id"], f"{path}.initiator.id"))
    src = _fields(obj["source"], f"{path}.source", {"vault"}, {"wallet", "tags"})
    tags_value = src.get("tags", [])
    if not isinstance(tags_value, list):
        raise RequestError("expected a list of strings", path=f"{path}.source.tags")
    tags = frozenset(_string(tag, f"{path}.source.tags[{i}]") for i, tag in enumerate(tags_value))
    wallet_value = src.get("wallet")
    source = Source(
        vault=_string(src["vault"], f"{path}.source.vault"),
        wallet=None if wallet_value is None else _string(wallet_value, f"{path}.source.wallet"),
        tags=tags,
    )
    network = None if "network" not in obj else _string(obj["network"], f"{path}.network")
    destination = (
        None if "destination" not in obj else _string(obj["destination"], f"{path}.destination")
    )
    asset = None
    if "asset" in obj:
        a = _fields(obj["asset"], f"{path}.asset", {"id", "decimals"}, set())
        decimals = a["decimals"]
        if (
            isinstance(decimals, bool)
            or not isinstance(decimals, int)
            or not 0 <= decimals <= _MAX_DECIMALS
        ):
            raise RequestError(
                f"expected an integer 0..{_MAX_DECIMALS}", path=f"{path}.asset.decimals"
            )
        asset = Asset(_string(a["id"], f"{path}.asset.id"), decimals)
    amount = None
    if "amount" in obj:
        amount = parse_base_units(obj["amount"], f"{path}.amount")
        if asset is None:
            raise RequestError("an amount needs an asset", path=f"{path}.amount")
    contract_call = None
    if "contract" in obj:
        c = _fields(obj["contract"], f"{path}.contract", {"selector"}, set())
        selector = _string(c["selector"], f"{path}.contract.selector")
        if not _SELECTOR_HEX.fullmatch(selector):
            raise RequestError("expected 0x and 4 bytes of hex", path=f"{path}.contract.selector")
        contract_call = ContractCall(bytes.fromhex(selector[2:]))
        if operation is not Operation.CONTRACT_CALL:
            raise RequestError("only contract calls carry a selector", path=f"{path}.contract")
    if operation in (Operation.TRANSFER, Operation.CONTRACT_CALL):
        for name, present in (("network", network), ("destination", destination)):
            if present is None:
                raise RequestError(f"a {operation.value} needs a {name}", path=f"{path}.{name}")
    if operation is Operation.TRANSFER and amount is None:
        raise RequestError("a transfer needs an amount", path=f"{path}.amount")
    return TransactionRequest(
        digest=bytes.fromhex(digest_text),
        operation=operation,
        created_at=parse_timestamp(obj["created_at"], f"{path}.created_at"),
        initiator=initiator,
        source=source,
        network=network,
        destination=destination,
        asset=asset,
        amount=amount,
        contract_call=contract_call,
    )


def parse_base_units(value: object, path: str) -> BaseUnits:
    """Read a non-negative integer amount given as a decimal string or a JSON integer.

    Raises:
        RequestError: a float, a negative number, or a string that is not digits.
    """
    if isinstance(value, bool):
        raise RequestError("expected base units as a decimal string", path=path)
    if isinstance(value, int):
        if value < 0:
            raise RequestError("an amount is not negative", path=path)
        return BaseUnits(value)
    if isinstance(value, str) and _BASE_UNITS.fullmatch(value) and len(value) <= 80:
        return BaseUnits(int(value))
    raise RequestError("expected base units as a decimal string of digits", path=path)


def parse_history(data: object, path: str = "history") -> tuple[PastTransaction, ...]:
    """Read a list of past transactions: each a request object with an optional
    ``decision`` (the final outcome recorded for it).

    Raises:
        RequestError: the list or an entry is malformed (the entry's index is named).
    """
    if isinstance(data, Mapping) and set(data.keys()) == {"transactions"}:
        data = data["transactions"]
    if not isinstance(data, list):
        raise RequestError("expected a list of transactions", path=path)
    out = []
    for i, item in enumerate(data):
        entry_path = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            raise RequestError("expected an object", path=entry_path)
        fields = dict(item)
        decision = None
        if "decision" in fields:
            raw = fields.pop("decision")
            try:
                decision = Decision(_string(raw, f"{entry_path}.decision"))
            except ValueError:
                raise RequestError(
                    "expected allow, block or require_approvals", path=f"{entry_path}.decision"
                ) from None
        out.append(PastTransaction(parse_request(fields, entry_path), decision))
    return tuple(out)


def request_to_json(request: TransactionRequest) -> dict[str, object]:
    """The JSON form of ``request``; :func:`parse_request` reads it back unchanged."""
    out: dict[str, object] = {
        "digest": request.digest.hex(),
        "operation": request.operation.value,
        "created_at": int(request.created_at),
        "initiator": {"type": request.initiator.kind.value, "id": request.initiator.id},
    }
    source: dict[str, object] = {"vault": request.source.vault}
    if request.source.wallet is not None:
        source["wallet"] = request.source.wallet
    if request.source.tags:
        source["tags"] = sorted(request.source.tags)
    out["source"] = source
    if request.network is not None:
        out["network"] = request.network
    if request.destination is not None:
        out["destination"] = request.destination
    if request.asset is not None:
        out["asset"] = {"id": request.asset.id, "decimals": request.asset.decimals}
    if request.amount is not None:
        out["amount"] = str(request.amount)
    if request.contract_call is not None:
        out["contract"] = {"selector": "0x" + request.contract_call.selector.hex()}
    return out
