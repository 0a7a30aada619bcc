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
   rejected or the deadline (``created_at`` + deadline) has passed at ``context.now``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from shardvault.policy._exact import EXACT, ZERO, add, units, value_of
from shardvault.policy.approvals import ApprovalTally, GroupStatus, SignedApproval, tally
from shardvault.policy.context import EvaluationContext, scope_key
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
    SourceCondition,
    TimeWindow,
    VelocityCondition,
    When,
)
from shardvault.policy.request import TransactionRequest


class Outcome(StrEnum):
    """The result of checking one condition, or one rule."""

    MATCHED = "matched"
    NOT_MATCHED = "not_matched"
    INDETERMINATE = "indeterminate"


@dataclass(frozen=True, slots=True)
class Check:
    """One condition checked: its name, outcome and a sentence explaining it."""

    condition: str
    outcome: Outcome
    detail: str


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """The conditions checked for one rule, in order, and the rule's outcome."""

    index: int
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
            lines.append(f"rule {trace.index} {trace.rule!r}: {trace.outcome.value}")
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


_MATCH = Outcome.MATCHED
_MISS = Outcome.NOT_MATCHED
_UNKNOWN = Outcome.INDETERMINATE


class _Evaluator:
    """One evaluation's state: the request, context and memoized aggregates."""

    __slots__ = ("context", "policy", "request", "units", "velocity_memo")

    def __init__(
        self, policy: Policy, request: TransactionRequest, context: EvaluationContext
    ) -> None:
        self.policy = policy
        self.request = request
        self.context = context
        self.units = request.amount_in_units()
        self.velocity_memo: dict[tuple[object, ...], tuple[Outcome, Decimal | int, str]] = {}

    def rule(self, index: int, rule: Rule) -> RuleTrace:
        """Check ``rule``'s conditions in order, stopping at the first that fails."""
        checks: list[Check] = []
        outcome = _MATCH
        for check in self.checks(rule.when):
            checks.append(check)
            if check.outcome is _MISS:
                return RuleTrace(index, rule.name, _MISS, tuple(checks))
            if check.outcome is _UNKNOWN:
                outcome = _UNKNOWN
        return RuleTrace(index, rule.name, outcome, tuple(checks))

    def checks(self, when: When) -> Iterator[Check]:
        """The checks of a rule, lazily, in evaluation order: cheapest first."""
        yield self.check_operation(when.operations)
        if when.initiator is not None:
            yield self.check_initiator(when.initiator)
        if when.source is not None:
            yield self.check_source(when.source)
        if when.assets is not None:
            yield self.check_asset(when.assets)
        if when.networks is not None:
            yield self.check_network(when.networks)
        if when.destination is not None:
            yield self.check_destination(when.destination)
        if when.amount is not None:
            yield self.check_amount(when.amount)
        if when.value is not None:
            yield self.check_value(when.value)
        if when.time is not None:
            yield self.check_time(when.time)
        for velocity in when.velocity:
            yield self.check_velocity(velocity)

    # --- conditions -----------------------------------------------------------------

    def check_operation(self, operations: frozenset[Operation] | None) -> Check:
        op = self.request.operation
        if operations is None:
            if op is Operation.RAW_DIGEST_SIGNING:
                return Check(
                    "operation",
                    _MISS,
                    "raw_digest_signing is matched only by rules that name it",
                )
            return Check("operation", _MATCH, f"{op.value} (rule names no operation)")
        if op in operations:
            return Check("operation", _MATCH, f"{op.value} is listed")
        return Check("operation", _MISS, f"{op.value} is not in {_list(operations)}")

    def check_initiator(self, cond: InitiatorCondition) -> Check:
        init = self.request.initiator
        who = f"{init.kind.value} {init.id!r}"
        if init.kind is InitiatorKind.USER and init.id in cond.users:
            return Check("initiator", _MATCH, f"{who} is a listed user")
        if init.kind is InitiatorKind.API_KEY and init.id in cond.api_keys:
            return Check("initiator", _MATCH, f"{who} is a listed API key")
        shared = self.policy.groups_of(init.id) & cond.groups
        if shared:
            return Check("initiator", _MATCH, f"{who} is in group {_list(shared)}")
        return Check("initiator", _MISS, f"{who} is not among the rule's initiators")

    def check_source(self, cond: SourceCondition) -> Check:
        src = self.request.source
        if src.vault in cond.vaults:
            return Check("source", _MATCH, f"vault {src.vault!r} is listed")
        if src.wallet is not None and src.wallet in cond.wallets:
            return Check("source", _MATCH, f"wallet {src.wallet!r} is listed")
        shared = src.tags & cond.tags
        if shared:
            return Check("source", _MATCH, f"source is tagged {_list(shared)}")
        return Check("source", _MISS, f"vault {src.vault!r} is not among the rule's sources")

    def check_asset(self, assets: frozenset[str]) -> Check:
        asset = self.request.asset
        if asset is None:
            return Check("asset", _MISS, "the request moves no asset")
        if asset.id in assets:
            return Check("asset", _MATCH, f"{asset.id} is listed")
        return Check("asset", _MISS, f"{asset.id} is not in {_list(assets)}")

    def check_network(self, networks: frozenset[str]) -> Check:
        network = self.request.network
        if network is None:
            return Check("network", _MISS, "the request names no network")
        if network in networks:
            return Check("network", _MATCH, f"{network} is listed")
        return Check("network", _MISS, f"{network} is not in {_list(networks)}")

    def check_destination(self, cond: DestinationCondition) -> Check:
        req = self.request
        dest = req.destination_key
        if dest is None or req.network is None:
            return Check("destination", _MISS, "the request has no destination")
        if cond.any_destination:
            return Check("destination", _MATCH, "any destination")
        entry = self.context.address_book.lookup(req.network, dest)
        if entry is not None:
            if cond.all_address_book or entry.name in cond.address_book:
                return Check("destination", _MATCH, f"address-book entry {entry.name!r}")
            lists = self.context.address_book.whitelists_of(entry.name) & cond.whitelists
            if lists:
                return Check(
                    "destination", _MATCH, f"entry {entry.name!r} is on whitelist {_list(lists)}"
                )
        elif cond.one_time:
            return Check("destination", _MATCH, f"{dest} is a one-time address")
        for target in cond.contracts:
            if target.address != dest or (target.network not in (None, req.network)):
                continue
            if target.selectors is None:
                return Check("destination", _MATCH, f"contract {dest}")
            call = req.contract_call
            if call is not None and call.selector in target.selectors:
                return Check(
                    "destination", _MATCH, f"contract {dest} method 0x{call.selector.hex()}"
                )
        what = f"address-book entry {entry.name!r}" if entry else f"one-time address {dest}"
        return Check("destination", _MISS, f"{what} is not among the rule's destinations")

    def check_amount(self, bounds: Bounds) -> Check:
        amount = self.units
        asset = self.request.asset
        if amount is None or asset is None:
            return Check("amount", _MISS, "the request carries no amount")
        outcome = _MATCH if bounds.contains(amount) else _MISS
        verb = "is" if outcome is _MATCH else "is not"
        return Check("amount", outcome, f"{_show(amount)} {asset.id} {verb} {bounds.describe()}")

    def request_value(self) -> Decimal | str:
        """The request's value in the reference currency, or why it is unknown."""
        req = self.request
        if req.amount is None or req.asset is None:
            return ZERO
        price = self.context.price(req.asset.id)
        if price is None:
            return f"no price for {req.asset.id} in {self.policy.reference_currency}"
        return value_of(req.amount, req.asset.decimals, price)

    def check_value(self, bounds: Bounds) -> Check:
        if self.request.amount is None:
            return Check("value", _MISS, "the request carries no amount")
        value = self.request_value()
        if isinstance(value, str):
            return Check("value", _UNKNOWN, f"{value}: failing closed")
        outcome = _MATCH if bounds.contains(value) else _MISS
        verb = "is" if outcome is _MATCH else "is not"
        currency = self.policy.reference_currency
        return Check("value", outcome, f"{_show(value)} {currency} {verb} {bounds.describe()}")

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
            return Check("time", _MATCH, f"{stamp} is inside {span}")
        if not day_ok:
            return Check("time", _MISS, f"{stamp}: day not in {_days(window.days)}")
        return Check("time", _MISS, f"{stamp} is outside {span}")

    def check_velocity(self, cond: VelocityCondition) -> Check:
        outcome, total, note = self.velocity_total(cond)
        window = _duration(cond.window_seconds)
        label = f"velocity {cond.measure.value} per {cond.per.value} in {window}"
        if outcome is _UNKNOWN:
            return Check(label, _UNKNOWN, f"{note}: failing closed")
        outcome = _MATCH if cond.bounds.contains(total) else _MISS
        verb = "is" if outcome is _MATCH else "is not"
        return Check(
            label,
            outcome,
            f"{_show(total)}{note} with this request {verb} {cond.bounds.describe()}",
        )

    def velocity_total(self, cond: VelocityCondition) -> tuple[Outcome, Decimal | int, str]:
        """The aggregate of ``cond``'s window including this request, memoized: rules
        that share an aggregate compute it once per evaluation."""
        memo_key = (cond.per, cond.window_seconds, cond.measure)
        cached = self.velocity_memo.get(memo_key)
        if cached is not None:
            return cached
        result = self._velocity_total(cond)
        self.velocity_memo[memo_key] = result
        return result

    def _velocity_total(self, cond: VelocityCondition) -> tuple[Outcome, Decimal | int, str]:
        req = self.request
        ctx = self.context
        history = ctx.history
        key = scope_key(cond.per, req)
        lower = history.lower_bound(ctx.now - cond.window_seconds)
        upper = history.upper_bound(ctx.now, ctx.history_before)
        if cond.measure is Measure.COUNT:
            past = history.count(cond.per, key, lower, upper) if key is not None else 0
            return _MATCH, past + 1, ""
        if cond.measure is Measure.AMOUNT:
            asset = req.asset
            if asset is None:  # pragma: no cover - the asset condition runs first
                return _UNKNOWN, 0, "the request moves no asset"
            past_base = (
                history.amount(cond.per, key, (asset.id, req.network), lower, upper)
                if key is not None
                else 0
            )
            total = units(past_base + int(req.amount or 0), asset.decimals)
            return _MATCH, total, f" {asset.id}"
        if cond.measure is Measure.VALUE:
            current = self.request_value()
            if isinstance(current, str):
                return _UNKNOWN, 0, current
            total = current
            if key is not None:
                for (asset_id, _network), decimals, base in history.amounts(
                    cond.per, key, lower, upper
                ):
                    price = ctx.price(asset_id)
                    if price is None:
                        return _UNKNOWN, 0, f"no price for {asset_id} (in history)"
                    total = add(total, value_of(base, decimals, price))
            return _MATCH, total, f" {self.policy.reference_currency}"
        raise AssertionError(cond.measure)  # pragma: no cover - exhaustive


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
            return Evaluation(
                Decision.BLOCK,
                rule.name,
                index,
                policy.version,
                f"rule {rule.name!r} could not be decided; failing closed",
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
    counted = tally(policy, requirement, request.digest, approvals)
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


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
