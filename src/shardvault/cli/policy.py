"""``shardvault policy``: Transaction authorization policy: evaluate and replay.

The commands read files here and hand their contents to the pure policy layer; the
layer itself never touches the file system. Files ending in ``.json`` are read as JSON,
anything else as YAML (a superset of JSON for these documents).
"""

from __future__ import annotations

from pathlib import Path

import click

from shardvault.cli._output import emit_json, fail, fail_on
from shardvault.policy import (
    EvaluationContext,
    History,
    PolicyError,
    evaluate,
    load_policy,
    parse_approval,
    parse_context,
    parse_history,
    parse_request,
    parse_text,
    replay,
)
from shardvault.policy.load import DocumentFormat
from shardvault.policy.model import Policy


def _format_of(path: Path) -> DocumentFormat:
    return "json" if path.suffix.lower() == ".json" else "yaml"


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}")


def _data(path: Path) -> object:
    return parse_text(_read(path), _format_of(path))


def _policy(path: Path) -> Policy:
    return load_policy(_read(path), _format_of(path))


_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group(name="policy")
def group() -> None:
    """Transaction authorization policy: evaluate and replay."""


@group.command(name="evaluate")
@click.option("--policy", "policy_file", type=_FILE, required=True, help="Policy document.")
@click.option("--request", "request_file", type=_FILE, required=True, help="Request (JSON).")
@click.option("--history", "history_file", type=_FILE, help="Past transactions (JSON list).")
@click.option(
    "--context",
    "context_file",
    type=_FILE,
    help="now, prices, reference_currency, address_book (JSON).",
)
@click.option("--approvals", "approvals_file", type=_FILE, help="Signed approvals (JSON list).")
def evaluate_command(
    policy_file: Path,
    request_file: Path,
    history_file: Path | None,
    context_file: Path | None,
    approvals_file: Path | None,
) -> None:
    """Decide one request; print decision, rule, explanation and approvals needed.

    Without --context the evaluation time is the request's created_at and no prices or
    address book are known (conditions that need them fail closed or do not match).
    """
    try:
        policy = _policy(policy_file)
        request = parse_request(_data(request_file))
        history = History(parse_history(_data(history_file)) if history_file else ())
        if context_file is not None:
            context = parse_context(_data(context_file), history=history)
        else:
            context = EvaluationContext(now=request.created_at, history=history)
        approvals = []
        if approvals_file is not None:
            items = _data(approvals_file)
            if not isinstance(items, list):
                fail("--approvals: expected a JSON list of approvals")
            approvals = [parse_approval(item, f"approvals[{i}]") for i, item in enumerate(items)]
        result = evaluate(policy, request, context, approvals)
    except PolicyError as exc:
        fail_on(exc)
    emit_json(result.to_json())


@group.command(name="replay")
@click.option("--policy", "policy_file", type=_FILE, required=True, help="Draft policy.")
@click.option("--history", "history_file", type=_FILE, required=True, help="Past transactions.")
@click.option(
    "--baseline",
    "baseline_file",
    type=_FILE,
    help="Compare with this policy instead of the recorded decisions.",
)
@click.option("--context", "context_file", type=_FILE, help="prices and address_book (JSON).")
def replay_command(
    policy_file: Path,
    history_file: Path,
    baseline_file: Path | None,
    context_file: Path | None,
) -> None:
    """List the past transactions a draft policy would have decided differently."""
    try:
        draft = _policy(policy_file)
        baseline = _policy(baseline_file) if baseline_file else None
        history = parse_history(_data(history_file))
        prices = None
        book = None
        if context_file is not None:
            data = _data(context_file)
            if isinstance(data, dict) and "now" not in data:
                # Replay takes each transaction's own time; "now" is not needed.
                data = {**data, "now": 0}
            context = parse_context(data)
            prices, book = context.prices, context.address_book
        report = replay(draft, history, prices=prices, address_book=book, baseline=baseline)
    except PolicyError as exc:
        fail_on(exc)
    emit_json(report.to_json())
