"""Dry runs: what a draft policy would decide, before anyone signs it.

:func:`dry_run` evaluates a draft against one request. :func:`replay` evaluates it
against a list of past transactions, each at its own time and with the velocity history
of the transactions before it, and compares each decision with the one recorded (or with
a baseline policy's): "which past transactions would this draft have blocked?".

Replay counts toward velocity limits what actually happened (entries whose recorded
decision is ``allow``, or that carry none), not what the draft would have let through:
the question is how the draft judges the real past.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from shardvault.policy.context import EvaluationContext, History
from shardvault.policy.errors import RequestError
from shardvault.policy.evaluate import Evaluation, evaluate
from shardvault.policy.model import AddressBook, Decision, Policy
from shardvault.policy.request import PastTransaction, TransactionRequest, UnixSeconds


def dry_run(draft: Policy, request: TransactionRequest, context: EvaluationContext) -> Evaluation:
    """Evaluate ``request`` under ``draft`` without approvals (a pure what-if)."""
    return evaluate(draft, request, context)


@dataclass(frozen=True, slots=True)
class ReplayItem:
    """One past transaction: what was decided then and what the draft decides."""

    index: int
    request: TransactionRequest
    before: Decision
    before_rule: str | None
    after: Evaluation

    @property
    def changed(self) -> bool:
        """Whether the draft decides differently."""
        return self.before is not self.after.decision

    def to_json(self) -> dict[str, object]:
        """The JSON form printed by ``shardvault policy replay``."""
        return {
            "index": self.index,
            "digest": self.request.digest.hex(),
            "created_at": int(self.request.created_at),
            "before": self.before.value,
            "before_rule": self.before_rule,
            "after": self.after.decision.value,
            "after_rule": self.after.rule,
            "summary": self.after.summary,
        }


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """Every replayed transaction, and those decided differently."""

    items: tuple[ReplayItem, ...]

    @property
    def differences(self) -> tuple[ReplayItem, ...]:
        """The transactions the draft decides differently."""
        return tuple(item for item in self.items if item.changed)

    def to_json(self) -> dict[str, object]:
        """The JSON form printed by ``shardvault policy replay``."""
        counts: dict[str, int] = {}
        for item in self.differences:
            key = f"{item.before.value}->{item.after.decision.value}"
            counts[key] = counts.get(key, 0) + 1
        return {
            "replayed": len(self.items),
            "changed": len(self.differences),
            "changes_by_kind": dict(sorted(counts.items())),
            "differences": [item.to_json() for item in self.differences],
        }


def replay(
    draft: Policy,
    history: Sequence[PastTransaction],
    *,
    prices: Mapping[str, Decimal] | None = None,
    address_book: AddressBook | None = None,
    baseline: Policy | None = None,
) -> ReplayReport:
    """Evaluate every entry of ``history`` under ``draft``, each at its ``created_at``.

    Without ``baseline`` the draft is compared with each entry's recorded decision;
    with it, with the baseline policy's decision under the same context.

    Raises:
        RequestError: an entry without a recorded decision when no baseline is given.
        ContextError: inconsistent history (see :class:`History`).
    """
    index = History(history)
    book = address_book if address_book is not None else AddressBook()
    price_map = dict(prices or {})
    items = []
    for i, entry in enumerate(history):
        request = entry.request
        context = EvaluationContext(
            now=UnixSeconds(request.created_at),
            prices=price_map,
            address_book=book,
            history=index,
            history_before=i,
        )
        after = evaluate(draft, request, context)
        if baseline is not None:
            base = evaluate(baseline, request, context)
            before, before_rule = base.decision, base.rule
        elif entry.decision is not None:
            before, before_rule = entry.decision, None
        else:
            raise RequestError(
                "no recorded decision to compare with (give a baseline policy)",
                path=f"history[{i}].decision",
            )
        items.append(ReplayItem(i, request, before, before_rule, after))
    return ReplayReport(tuple(items))
