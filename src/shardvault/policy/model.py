"""The policy language's data model: frozen dataclasses built by :mod:`.load`.

A policy is an ordered list of rules; the first rule whose conditions all hold decides,
and when none holds the transaction is blocked (default deny). A rule's ``when`` block
holds conditions (all must hold); inside a selector such as ``initiator`` or
``destination`` the listed entries are alternatives (any may hold). Actions are
``allow``, ``block`` and ``require_approvals`` (N of a named group, for several groups,
within a deadline). ``docs/policy.md`` documents the language with worked examples.

Amounts are :class:`~decimal.Decimal` in whole asset units or in the reference
currency, and integers in base units; the language never uses binary floating point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar
from zoneinfo import ZoneInfo

from shardvault.policy.keys import PublicKey


class Operation(StrEnum):
    """What a request asks a key to do."""

    TRANSFER = "transfer"
    CONTRACT_CALL = "contract_call"
    TYPED_DATA_SIGNING = "typed_data_signing"
    MESSAGE_SIGNING = "message_signing"
    RAW_DIGEST_SIGNING = "raw_digest_signing"
    KEY_GENERATION = "key_generation"


class Decision(StrEnum):
    """The outcome of an evaluation, and the action of a rule."""

    ALLOW = "allow"
    BLOCK = "block"
    REQUIRE_APPROVALS = "require_approvals"


class Scope(StrEnum):
    """What a velocity aggregate is grouped by: past transactions that share this with
    the request are summed."""

    INITIATOR = "initiator"
    SOURCE = "source"
    WALLET = "wallet"
    DESTINATION = "destination"
    WORKSPACE = "workspace"


class Measure(StrEnum):
    """What a velocity aggregate sums over its window."""

    AMOUNT = "amount"
    VALUE = "value"
    COUNT = "count"


class InitiatorKind(StrEnum):
    """Who started a request: a console user or an API key."""

    USER = "user"
    API_KEY = "api_key"


WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names of time windows, in :meth:`datetime.date.weekday` order."""

_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def normalize_address(address: str) -> str:
    """Return the form in which addresses are compared.

    ``0x``-prefixed hexadecimal addresses (EVM) compare case-insensitively, so they are
    lowercased; every other encoding (base58, bech32) is compared exactly as given. The
    service layer passes addresses in their canonical encoding.
    """
    if _HEX_ADDRESS.fullmatch(address):
        return address.lower()
    return address


@dataclass(frozen=True, slots=True)
class Bounds:
    """An interval ``over < x <= up_to``; either end may be open.

    ``over`` is exclusive and ``up_to`` inclusive, so the rules "over L" and "up to L"
    split every value between them with no gap and no overlap.
    """

    over: Decimal | None
    up_to: Decimal | None
    text: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # The interval in words, computed once: explanations quote it on every check.
        parts = []
        if self.over is not None:
            parts.append(f"over {self.over}")
        if self.up_to is not None:
            parts.append(f"up to {self.up_to}")
        object.__setattr__(self, "text", " and ".join(parts))

    def contains(self, x: Decimal | int) -> bool:
        """Whether ``x`` lies in the interval."""
        if self.over is not None and not x > self.over:
            return False
        return self.up_to is None or x <= self.up_to


@dataclass(frozen=True, slots=True)
class InitiatorCondition:
    """Holds when the initiator is one of ``users`` or ``api_keys``, or a member of one
    of ``groups`` (membership comes from the policy, never from the request)."""

    users: frozenset[str] = frozenset()
    api_keys: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SourceCondition:
    """Holds when the source vault is in ``vaults``, or its wallet in ``wallets``, or it
    carries one of ``tags``."""

    vaults: frozenset[str] = frozenset()
    wallets: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ContractTarget:
    """A specific contract, optionally restricted to some 4-byte method selectors."""

    address: str
    network: str | None
    selectors: frozenset[bytes] | None


@dataclass(frozen=True, slots=True)
class DestinationCondition:
    """Holds when the destination fits any of the listed alternatives.

    ``any_destination``: every request with a destination. ``address_book``: the named
    entries (``None`` when not used; the empty set is not allowed, ``"*"`` in a document
    means every entry and becomes ``all_address_book``). ``whitelists``: an entry of one
    of the named whitelists. ``one_time``: an address in no address-book entry.
    ``contracts``: a specific contract and method selector.
    """

    any_destination: bool = False
    all_address_book: bool = False
    address_book: frozenset[str] = frozenset()
    whitelists: frozenset[str] = frozenset()
    one_time: bool = False
    contracts: tuple[ContractTarget, ...] = ()


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Holds when the evaluation time, read in ``timezone``, falls on one of ``days``
    between ``start_minute`` (inclusive) and ``end_minute`` (exclusive), minutes after
    local midnight. A window whose end is not after its start wraps past midnight; the
    day checked is always the local date of the evaluation time."""

    days: frozenset[int]
    start_minute: int
    end_minute: int
    timezone: str
    zone: ZoneInfo = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class VelocityCondition:
    """Holds when the aggregate of the past ``window_seconds`` (history that shares the
    ``per`` key with the request) plus the request itself lies within ``bounds``.

    ``measure`` is ``amount`` (whole units of the request's asset on its network),
    ``value`` (reference currency at the context's prices) or ``count``.
    """

    window_seconds: int
    per: Scope
    measure: Measure
    bounds: Bounds
    label: str = field(init=False, compare=False, repr=False)
    aggregate: tuple[Scope, int, Measure] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # What identifies the aggregate (rules sharing it compute it once per
        # evaluation), and the condition's name in explanations, computed once.
        object.__setattr__(self, "aggregate", (self.per, self.window_seconds, self.measure))
        window = self.window_seconds
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
            if window % size == 0:
                span = f"{window // size}{unit}"
                break
        label = f"velocity {self.measure.value} per {self.per.value} in {span}"
        object.__setattr__(self, "label", label)


@dataclass(frozen=True, slots=True)
class When:
    """The conditions of a rule; ``None`` means "not constrained"."""

    initiator: InitiatorCondition | None = None
    operations: frozenset[Operation] | None = None
    source: SourceCondition | None = None
    destination: DestinationCondition | None = None
    assets: frozenset[str] | None = None
    networks: frozenset[str] | None = None
    amount: Bounds | None = None
    value: Bounds | None = None
    time: TimeWindow | None = None
    velocity: tuple[VelocityCondition, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupRequirement:
    """``count`` distinct approvals from members of ``group``."""

    group: str
    count: int


@dataclass(frozen=True, slots=True)
class ApprovalRequirement:
    """The approvals a ``require_approvals`` rule asks for: every group's count, within
    ``deadline_seconds`` of the request's creation, each approval counting only for
    ``deadline_seconds`` from its own signed time."""

    groups: tuple[GroupRequirement, ...]
    deadline_seconds: int


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: conditions and the action taken when they all hold."""

    name: str
    when: When
    action: Decision
    approvals: ApprovalRequirement | None = None
    description: str = ""


MAX_WEI_DIGITS = 78
"""The most decimal digits a fee cap in wei may have (2**256 - 1 has 78)."""


class ChainFamily(StrEnum):
    """The kind of chain a network belongs to, which decides the fields its fee cap may
    name (:mod:`.fee_caps`)."""

    EVM = "evm"
    BITCOIN = "bitcoin"
    SOLANA = "solana"


@dataclass(frozen=True, slots=True)
class EvmFeeCap:
    """The most an EVM transaction on one network may commit to in fees.

    ``max_fee_wei`` bounds the worst-case fee: the gas limit times the most the sender
    pays per gas (``max_fee_per_gas`` of a fee-market transaction, ``gas_price`` of a
    legacy or access-list one). ``max_priority_fee_per_gas_wei`` bounds a fee-market
    transaction's tip per gas. ``None`` leaves that amount uncapped; a cap names at
    least one of the two.
    """

    family: ClassVar[ChainFamily] = ChainFamily.EVM
    max_fee_wei: int | None = None
    max_priority_fee_per_gas_wei: int | None = None


@dataclass(frozen=True, slots=True)
class BitcoinFeeCap:
    """The most a Bitcoin transaction on one network may pay in fees.

    ``max_fee_sat`` bounds the fee, the sum of the amounts the inputs spend less the sum
    of the outputs, in satoshi. ``max_fee_rate_sat_per_vb`` bounds that fee divided by
    the virtual size the transaction will have once signed (BIP141), in satoshi per
    virtual byte: an exact :class:`~decimal.Decimal` with at most three decimals (Bitcoin
    Core's fee rates are whole satoshi per 1,000 vbytes). ``None`` leaves that amount
    uncapped; a cap names at least one of the two.
    """

    family: ClassVar[ChainFamily] = ChainFamily.BITCOIN
    max_fee_sat: int | None = None
    max_fee_rate_sat_per_vb: Decimal | None = None


@dataclass(frozen=True, slots=True)
class SolanaFeeCap:
    """The most a Solana transaction on one network may pay in fees.

    ``max_compute_unit_price_micro_lamports`` bounds the priority fee per compute unit
    (``SetComputeUnitPrice``), ``max_compute_unit_limit`` the compute units the
    transaction may use (``SetComputeUnitLimit``, or the runtime's default), and
    ``max_fee_lamports`` the whole fee: 5,000 lamports per signature plus the priority
    fee, ceil(price x limit / 10**6) lamports. ``None`` leaves that amount uncapped; a
    cap names at least one of the three.
    """

    family: ClassVar[ChainFamily] = ChainFamily.SOLANA
    max_compute_unit_price_micro_lamports: int | None = None
    max_compute_unit_limit: int | None = None
    max_fee_lamports: int | None = None


FeeCap = EvmFeeCap | BitcoinFeeCap | SolanaFeeCap
"""A network's fee cap: the class of its chain family."""


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed, validated policy document.

    ``approvers`` map a member id to the public key that signs its approvals; ``groups``
    map a group name to its member ids (users or API keys; one namespace). A group member
    without an approver key can initiate but never approve. ``fee_caps`` map a network
    name (as co-signers name the network of a payload) to the :data:`FeeCap` of its
    chain family that every co-signer enforces there; a network without an entry has
    no fee cap (docs/policy.md "Fee caps").
    """

    version: int
    reference_currency: str
    approvers: dict[str, PublicKey]
    groups: dict[str, frozenset[str]]
    rules: tuple[Rule, ...]
    description: str = ""
    fee_caps: dict[str, FeeCap] = field(default_factory=dict)
    _groups_by_member: dict[str, frozenset[str]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        members: dict[str, set[str]] = {}
        for name, ids in self.groups.items():
            for member in ids:
                members.setdefault(member, set()).add(name)
        self._groups_by_member.update({m: frozenset(g) for m, g in members.items()})

    def groups_of(self, member: str) -> frozenset[str]:
        """The names of the groups ``member`` belongs to."""
        return self._groups_by_member.get(member, frozenset())


@dataclass(frozen=True, slots=True)
class AddressBookEntry:
    """A named, admin-approved destination on one network."""

    name: str
    network: str
    address: str
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AddressBook:
    """Address-book entries and whitelists: policy data, signed with the policy.

    ``whitelists`` map a whitelist name to the names of its entries.
    """

    entries: tuple[AddressBookEntry, ...] = ()
    whitelists: dict[str, frozenset[str]] = field(default_factory=dict)
    _by_address: dict[tuple[str, str], AddressBookEntry] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        for entry in self.entries:
            self._by_address[(entry.network, normalize_address(entry.address))] = entry

    def lookup(self, network: str, address: str) -> AddressBookEntry | None:
        """The entry for ``address`` on ``network``, if there is one."""
        return self._by_address.get((network, normalize_address(address)))

    def whitelists_of(self, entry_name: str) -> frozenset[str]:
        """The names of the whitelists that include ``entry_name``."""
        return frozenset(name for name, names in self.whitelists.items() if entry_name in names)
