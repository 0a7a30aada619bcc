"""The evaluator: (policy, request, context, approvals) -> decision.

Semantics (``docs/policy.md`` has the worked examples):

1. Rules are tried in order; the first rule whose conditions all hold decides. When no
   rule holds, the request is blocked (default deny).
2. A rule's conditions are checked in a fixed order, cheapest first, and checking stops
   at the first condition that does not hold. Every condition checked is recorded with
   a sentence saying why it held or not.
3. Raw-digest signing is matched only by a rule whose ``operation`` condition names
   ``raw_digest_signing``: a rule without an operation condition never lets it through.
4. A condition that cannot be decided (a price missing for a value limit) makes the
   rule fail closed: unless another condition of the same rule does not hold, the
   request is blocked by that rule.
5. ``require_approvals`` becomes ``allow`` once every required group has its count of
   valid approvals and nobody eligible rejected, ``block`` when an eligible approver
   rejected or the request's deadline (``created_at`` + deadline) has passed at
   ``context.now``. Each approval also lives only for the deadline from its own signed
   time (``signed_at``), checked at ``context.now``: where ``created_at`` is someone
   else's word (a co-signer's coordinator), that lifetime is what bounds an approval,
   and the request's deadline can only make the evaluation refuse sooner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple, assert_never

from shardvault.policy._exact import EXACT, ZERO, add, units, value_of
from shardvault.policy.approvals import ApprovalTally, GroupStatus, SignedApproval, tally
from shardvault.policy.context import EvaluationContext, PricedHistory, scope_key
from shardvault.policy.errors import ContextError
from shardvault.policy.model import (
    WEEKDAYS,
    Bounds,
    Decision,
    DestinationCondition,
    InitiatorCondition,
    InitiatorKind,
    Measure,
    Operation,
    Policy,
    Rule,
    Scope,
    SourceCondition,
    TimeWindow,
    VelocityCondition,
)
from shardvault.policy.request import TransactionRequest


class Outcome(StrEnum):
    """The result of checking one condition, or one rule."""

    MATCHED = "matched"
    NOT_MATCHED = "not_matched"
    INDETERMINATE = "indeterminate"


class Check(NamedTuple):
    """One condition checked: its name, outcome and a sentence explaining it.

    The sentence is kept as a constant template and the values it quotes, and written
    out only when :attr:`detail` is read: deciding never pays for formatting. (A
    NamedTuple rather than a frozen dataclass: equally immutable, and several times
    cheaper to create on the evaluator's hot path.)
    """

    condition: str
    outcome: Outcome
    template: str
    args: tuple[object, ...] = ()

    @property
    def detail(self) -> str:
        """The sentence explaining the outcome."""
        return self.template.format(*(_show(a) if isinstance(a, Decimal) else a for a in self.args))


class RuleTrace(NamedTuple):
    """The conditions checked for one rule, in order, and the rule's outcome."""

    rule_index: int
    rule: str
    outcome: Outcome
    checks: tuple[Check, ...]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The decision on one request, with the reasons.

    ``rule`` is the name of the deciding rule (``None`` under default deny), ``trace``
    every rule tried and every condition checked, ``approvals`` the state of each
    required group when the rule requires approvals, ``deadline`` the Unix time by
    which they must be complete.
    """

    decision: Decision
    rule: str | None
    rule_index: int | None
    policy_version: int
    summary: str
    trace: tuple[RuleTrace, ...]
    approvals: tuple[GroupStatus, ...] = ()
    deadline: int | None = None
    approval_tally: ApprovalTally | None = field(default=None, compare=False, repr=False)

    @property
    def approvals_needed(self) -> dict[str, int]:
        """Group name to the number of approvals it still needs."""
        return {g.group: g.missing for g in self.approvals if g.missing}

    def explanation(self) -> list[str]:
        """The human-readable explanation: one line per condition checked, then the
        decision."""
        lines = []
        for trace in self.trace:
            lines.append(f"rule {trace.rule_index} {trace.rule!r}: {trace.outcome.value}")
            lines.extend(f"  {c.condition}: {c.outcome.value}: {c.detail}" for c in trace.checks)
        lines.append(f"decision: {self.decision.value}: {self.summary}")
        return lines

    def to_json(self) -> dict[str, object]:
        """The JSON form printed by ``shardvault policy evaluate``."""
        out: dict[str, object] = {
            "decision": self.decision.value,
            "rule": self.rule,
            "rule_index": self.rule_index,
            "policy_version": self.policy_version,
            "summary": self.summary,
            "explanation": self.explanation(),
            "approvals_needed": self.approvals_needed,
            "approvals": [
                {
                    "group": g.group,
                    "required": g.required,
                    "approved_by": list(g.approved_by),
                    "missing": g.missing,
                }
                for g in self.approvals
            ],
            "deadline": self.deadline,
        }
        if self.approval_tally is not None and self.approval_tally.refused:
            out["refused_approvals"] = [
                {"approver": a.approver, "error": type(e).__name__, "reason": str(e)}
                for a, e in self.approval_tally.refused
            ]
        return out


_NO_KEY = "\x00 not computed"
_RAW_DIGEST_NOT_NAMED = "raw_digest_signing is matched only by rules that name it"
_NO_AMOUNT = "the request carries no amount"
_VELOCITY_IN = "{}{} with this request is {}"
_VELOCITY_OUT = "{}{} with this request is not {}"


class _Listed:
    """A set of names quoted in an explanation, sorted when written out."""

    __slots__ = ("items",)

    def __init__(self, items: frozenset[str] | frozenset[Operation]) -> None:
        self.items = items

    def __str__(self) -> str:
        return _list(self.items)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


_MATCH = Outcome.MATCHED
_MISS = Outcome.NOT_MATCHED
_UNKNOWN = Outcome.INDETERMINATE


class _Evaluator:
    """One evaluation's state: the request, context and memoized aggregates."""

    __slots__ = (
        "asset_id",
        "context",
        "destination",
        "policy",
        "priced",
        "request",
        "scope_keys",
        "units",
        "upper",
        "value",
        "velocity_memo",
    )

    def __init__(
        self, policy: Policy, request: TransactionRequest, context: EvaluationContext
    ) -> None:
        self.policy = policy
        self.request = request
        self.context = context
        self.units = request.amount_in_units()
        self.asset_id = None if request.asset is None else request.asset.id
        self.destination = request.destination_key
        self.velocity_memo: dict[
            tuple[Scope, int, Measure], tuple[Outcome, Decimal | int, str]
        ] = {}
        self.scope_keys: dict[Scope, str | None] = {}
        self.upper = context.history.upper_bound(context.now, context.history_before)
        self.value: Decimal | str | None = None
        self.priced: PricedHistory | None = None

    def rule(self, index: int, rule: Rule) -> RuleTrace:
        """Check ``rule``'s conditions in order, cheapest first, stopping at the first
        that fails. (Written out rather than looped: this is the evaluator's hot path.)"""
        when = rule.when
        checks: list[Check] = []
        check = self.check_operation(when.operations)
        checks.append(check)
        if check.outcome is _MISS:
            return RuleTrace(index, rule.name, _MISS, tuple(checks))
        if when.initiator is not None:
            check = self.check_initiator(when.initiator)
            checks.append(check)
            if check.outcome is _MISS:
                return RuleTrace(index, rule.name, _MISS, tuple(checks))
        if when.source is not None:
            check = self.check_source(when.source)
            checks.append(check)
            if check.outcome is _MISS:
                return RuleTrace(index, rule.name, _MISS, tuple(checks))
        if when.assets is not None:
            check = self.check_asset(when.assets)
            checks.append(check)
            if check.outcome is _MISS:
                return RuleTrace(index, rule.name, _MISS, tuple(checks))
        if when.networks is not None:
            check = self.check_network(when.networks)
            checks.append(check)
            if check.outcome is _MISS:
                return RuleTrace(index, rule.name, _MISS, tuple(checks))
        if when.destination is not None:
            check = self.check_destination(when.destination)
            checks.append(check)
            if check.outcome is _MISS:
                return RuleTrace(index, rule.name, _MISS, tuple(checks))
        if when.amount is not None:
            check = self.check_amount(when.amount)
            checks.append(check)
            if check.outcome is _MISS:
                return RuleTrace(index, rule.name, _MISS, tuple(checks))
        # From here on a condition may be undecidable; the rule then fails closed
        # unless a later condition does not hold.
        unknown = False
        if when.value is not None:
            check = self.check_value(when.value)
            checks.append(check)
            if check.outcome is _MISS:
                return RuleTrace(index, rule.name, _MISS, tuple(checks))
            unknown = check.outcome is _UNKNOWN
        if when.time is not None:
            check = self.check_time(when.time)
            checks.append(check)
            if check.outcome is _MISS:
                return RuleTrace(index, rule.name, _MISS, tuple(checks))
        for velocity in when.velocity:
            check = self.check_velocity(velocity)
            checks.append(check)
            if check.outcome is _MISS:
                return RuleTrace(index, rule.name, _MISS, tuple(checks))
            if check.outcome is _UNKNOWN:
                unknown = True
        return RuleTrace(index, rule.name, _UNKNOWN if unknown else _MATCH, tuple(checks))

    # --- conditions -----------------------------------------------------------------

    def check_operation(self, operations: frozenset[Operation] | None) -> Check:
        op = self.request.operation
        if operations is None:
            if op is Operation.RAW_DIGEST_SIGNING:
                return Check("operation", _MISS, _RAW_DIGEST_NOT_NAMED)
            return Check("operation", _MATCH, "{} (rule names no operation)", (op,))
        if op in operations:
            return Check("operation", _MATCH, "{} is listed", (op,))
        return Check("operation", _MISS, "{} is not in {}", (op, _Listed(operations)))

    def check_initiator(self, cond: InitiatorCondition) -> Check:
        init = self.request.initiator
        args = (init.kind, init.id)
        if init.kind is InitiatorKind.USER and init.id in cond.users:
            return Check("initiator", _MATCH, "{} {!r} is a listed user", args)
        if init.kind is InitiatorKind.API_KEY and init.id in cond.api_keys:
            return Check("initiator", _MATCH, "{} {!r} is a listed API key", args)
        shared = self.policy.groups_of(init.id) & cond.groups
        if shared:
            return Check("initiator", _MATCH, "{} {!r} is in group {}", (*args, _Listed(shared)))
        return Check("initiator", _MISS, "{} {!r} is not among the rule's initiators", args)

    def check_source(self, cond: SourceCondition) -> Check:
        src = self.request.source
        if src.vault in cond.vaults:
            return Check("source", _MATCH, "vault {!r} is listed", (src.vault,))
        if src.wallet is not None and src.wallet in cond.wallets:
            return Check("source", _MATCH, "wallet {!r} is listed", (src.wallet,))
        shared = src.tags & cond.tags
        if shared:
            return Check("source", _MATCH, "source is tagged {}", (_Listed(shared),))
        return Check("source", _MISS, "vault {!r} is not among the rule's sources", (src.vault,))

    def check_asset(self, assets: frozenset[str]) -> Check:
        asset_id = self.asset_id
        if asset_id is None:
            return Check("asset", _MISS, "the request moves no asset")
        if asset_id in assets:
            return Check("asset", _MATCH, "{} is listed", (asset_id,))
        return Check("asset", _MISS, "{} is not in {}", (asset_id, _Listed(assets)))

    def check_network(self, networks: frozenset[str]) -> Check:
        network = self.request.network
        if network is None:
            return Check("network", _MISS, "the request names no network")
        if network in networks:
            return Check("network", _MATCH, "{} is listed", (network,))
        return Check("network", _MISS, "{} is not in {}", (network, _Listed(networks)))

    def check_destination(self, cond: DestinationCondition) -> Check:
        req = self.request
        dest = self.destination
        if dest is None or req.network is None:
            return Check("destination", _MISS, "the request has no destination")
        if cond.any_destination:
            return Check("destination", _MATCH, "any destination")
        entry = self.context.address_book.lookup(req.network, dest)
        if entry is not None:
            if cond.all_address_book or entry.name in cond.address_book:
                return Check("destination", _MATCH, "address-book entry {!r}", (entry.name,))
            lists = self.context.address_book.whitelists_of(entry.name) & cond.whitelists
            if lists:
                return Check(
                    "destination",
                    _MATCH,
                    "entry {!r} is on whitelist {}",
                    (entry.name, _Listed(lists)),
                )
        elif cond.one_time:
            return Check("destination", _MATCH, "{} is a one-time address", (dest,))
        for target in cond.contracts:
            if target.address != dest or (target.network not in (None, req.network)):
                continue
            if target.selectors is None:
                return Check("destination", _MATCH, "contract {}", (dest,))
            call = req.contract_call
            if call is not None and call.selector in target.selectors:
                return Check(
                    "destination", _MATCH, "contract {} method 0x{}", (dest, call.selector.hex())
                )
        if entry is not None:
            return Check(
                "destination",
                _MISS,
                "address-book entry {!r} is not among the rule's destinations",
                (entry.name,),
            )
        return Check(
            "destination",
            _MISS,
            "one-time address {} is not among the rule's destinations",
            (dest,),
        )

    def check_amount(self, bounds: Bounds) -> Check:
        amount = self.units
        asset = self.request.asset
        if amount is None or asset is None:
            return Check("amount", _MISS, _NO_AMOUNT)
        if bounds.contains(amount):
            return Check("amount", _MATCH, "{} {} is {}", (amount, asset.id, bounds.text))
        return Check("amount", _MISS, "{} {} is not {}", (amount, asset.id, bounds.text))

    def request_value(self) -> Decimal | str:
        """The request's value in the reference currency, or why it is unknown."""
        req = self.request
        if req.amount is None or req.asset is None:
            return ZERO
        price = self.context.price(req.asset.id, req.network)
        if price is None:
            note = self.context.price_notes.get((req.asset.id, req.network))
            reason = f"no price for {req.asset.id} in {self.policy.reference_currency}"
            return reason if note is None else f"{reason} ({note})"
        return value_of(req.amount, req.asset.decimals, price)

    def check_value(self, bounds: Bounds) -> Check:
        if self.request.amount is None:
            return Check("value", _MISS, _NO_AMOUNT)
        value = self.request_value()
        if isinstance(value, str):
            return Check("value", _UNKNOWN, "{}: failing closed", (value,))
        currency = self.policy.reference_currency
        if bounds.contains(value):
            return Check("value", _MATCH, "{} {} is {}", (value, currency, bounds.text))
        return Check("value", _MISS, "{} {} is not {}", (value, currency, bounds.text))

    def check_time(self, window: TimeWindow) -> Check:
        local = datetime.fromtimestamp(self.context.now, tz=window.zone)
        minute = local.hour * 60 + local.minute
        day_ok = local.weekday() in window.days
        if window.start_minute < window.end_minute:
            time_ok = window.start_minute <= minute < window.end_minute
        else:
            time_ok = minute >= window.start_minute or minute < window.end_minute
        stamp = f"{WEEKDAYS[local.weekday()]} {local:%H:%M} {window.timezone}"
        span = f"{_clock(window.start_minute)}-{_clock(window.end_minute)}"
        if day_ok and time_ok:
            return Check("time", _MATCH, "{} is inside {}", (stamp, span))
        if not day_ok:
            return Check("time", _MISS, "{}: day not in {}", (stamp, _days(window.days)))
        return Check("time", _MISS, "{} is outside {}", (stamp, span))

    def check_velocity(self, cond: VelocityCondition) -> Check:
        # Rules that share an aggregate (same grouping, window and measure) compute it
        # once per evaluation.
        result = self.velocity_memo.get(cond.aggregate)
        if result is None:
            result = self.velocity_memo[cond.aggregate] = self.velocity_total(cond)
        outcome, total, note = result
        if outcome is _UNKNOWN:
            return Check(cond.label, _UNKNOWN, "{}: failing closed", (note,))
        bounds = cond.bounds
        if bounds.contains(total):
            return Check(cond.label, _MATCH, _VELOCITY_IN, (total, note, bounds.text))
        return Check(cond.label, _MISS, _VELOCITY_OUT, (total, note, bounds.text))

    def velocity_total(self, cond: VelocityCondition) -> tuple[Outcome, Decimal | int, str]:
        """The aggregate of ``cond``'s window, this request included, from the index:
        ``now - window < created_at <= now`` (and before ``history_before`` in a replay)."""
        req = self.request
        ctx = self.context
        history = ctx.history
        key = self.scope_keys.get(cond.per, _NO_KEY)
        if key is _NO_KEY:
            key = self.scope_keys[cond.per] = scope_key(cond.per, req)
        lower = history.lower_bound(ctx.now - cond.window_seconds)
        upper = self.upper
        measure = cond.measure
        if measure is Measure.COUNT:
            past = history.count(cond.per, key, lower, upper) if key is not None else 0
            return _MATCH, past + 1, ""
        if measure is Measure.AMOUNT:
            asset = req.asset
            if asset is None:  # pragma: no cover - the asset condition runs first
                return _UNKNOWN, 0, "the request moves no asset"
            past_base = (
                history.amount(cond.per, key, (asset.id, req.network), lower, upper)
                if key is not None
                else 0
            )
            total = units(past_base + int(req.amount or 0), asset.decimals)
            return _MATCH, total, " " + asset.id
        if measure is Measure.VALUE:
            current = self.value
            if current is None:
                current = self.value = self.request_value()
            if isinstance(current, str):
                return _UNKNOWN, 0, current
            total = current
            if key is not None:
                priced = self.priced
                if priced is None:
                    priced = self.priced = ctx.history.priced(ctx.prices, ctx.network_prices)
                past_value = priced.value(cond.per, key, lower, upper)
                if isinstance(past_value, str):
                    return _UNKNOWN, 0, past_value
                total = add(total, past_value)
            return _MATCH, total, " " + self.policy.reference_currency
        assert_never(measure)


def evaluate(
    policy: Policy,
    request: TransactionRequest,
    context: EvaluationContext,
    approvals: Sequence[SignedApproval] = (),
) -> Evaluation:
    """Decide ``request`` under ``policy``.

    Pure: the same arguments always give the same evaluation.

    Raises:
        ContextError: the context's reference currency is not the policy's.
    """
    if (
        context.reference_currency is not None
        and context.reference_currency != policy.reference_currency
    ):
        raise ContextError(
            f"prices are in {context.reference_currency}, the policy's limits in "
            f"{policy.reference_currency}",
            path="context.reference_currency",
        )
    evaluator = _Evaluator(policy, request, context)
    traces = []
    for index, rule in enumerate(policy.rules):
        trace = evaluator.rule(index, rule)
        traces.append(trace)
        if trace.outcome is _MISS:
            continue
        if trace.outcome is _UNKNOWN:
            # Name the condition that could not be decided and why (a missing price),
            # so a refusal says what to fix.
            why = next(c for c in trace.checks if c.outcome is _UNKNOWN)
            return Evaluation(
                Decision.BLOCK,
                rule.name,
                index,
                policy.version,
                f"rule {rule.name!r} could not be decided ({why.condition}: {why.detail})",
                tuple(traces),
            )
        return _decide(policy, request, context, rule, index, tuple(traces), approvals)
    return Evaluation(
        Decision.BLOCK,
        None,
        None,
        policy.version,
        "no rule matched: default deny",
        tuple(traces),
    )


def _decide(
    policy: Policy,
    request: TransactionRequest,
    context: EvaluationContext,
    rule: Rule,
    index: int,
    traces: tuple[RuleTrace, ...],
    approvals: Sequence[SignedApproval],
) -> Evaluation:
    if rule.action is Decision.ALLOW:
        return Evaluation(
            Decision.ALLOW, rule.name, index, policy.version, f"allowed by {rule.name!r}", traces
        )
    if rule.action is Decision.BLOCK:
        return Evaluation(
            Decision.BLOCK, rule.name, index, policy.version, f"blocked by {rule.name!r}", traces
        )
    requirement = rule.approvals
    assert requirement is not None  # load.py guarantees it for require_approvals
    counted = tally(
        policy,
        requirement,
        request.digest,
        approvals,
        now=context.now,
        initiator=request.initiator.id,
    )
    deadline = int(request.created_at) + requirement.deadline_seconds
    if counted.rejected_by:
        decision = Decision.BLOCK
        summary = f"rejected by {', '.join(counted.rejected_by)}"
    elif context.now > deadline:
        decision = Decision.BLOCK
        summary = f"the approval deadline ({deadline}) has passed"
    elif counted.satisfied:
        decision = Decision.ALLOW
        names = sorted({a for g in counted.groups for a in g.approved_by})
        summary = f"{rule.name!r} requires approvals; approved by {', '.join(names)}"
    else:
        decision = Decision.REQUIRE_APPROVALS
        missing = ", ".join(f"{g.missing} of {g.group}" for g in counted.groups if g.missing)
        summary = f"{rule.name!r} requires approvals: still {missing}"
    return Evaluation(
        decision,
        rule.name,
        index,
        policy.version,
        summary,
        traces,
        approvals=counted.groups,
        deadline=deadline,
        approval_tally=counted,
    )


def _list(items: frozenset[str] | frozenset[Operation]) -> str:
    return "[" + ", ".join(sorted(str(i) for i in items)) + "]"


def _show(number: Decimal | int) -> str:
    """A number for explanations, without trailing zeros."""
    if isinstance(number, int):
        return str(number)
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(EXACT), "f")


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _days(days: frozenset[int]) -> str:
    return "[" + ", ".join(WEEKDAYS[d] for d in sorted(days)) + "]"
