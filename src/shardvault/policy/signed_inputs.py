"""Which rules decide on facts that only a signature can vouch for (DESIGN.md invariant 12).

A co-signer rebuilds the policy's view of a request from the payload it signs, the key
and derivation path it holds, and statements signed by keys it trusts. A rule whose
outcome turns on anything else would turn on the coordinator's word, so:

* **The initiator.** A rule depends on it through an ``initiator`` condition, a velocity
  limit ``per: initiator``, or ``require_approvals`` (the member who initiated a request
  never approves it, so the initiator decides whose approvals count). The initiator is
  signed only when the bundle lists the initiator keys (:mod:`.initiators`) and the
  request carries the initiator's own signed API request.
* **Source tags.** Nothing signs them yet: a rule with a ``source.tags`` condition is
  refused.
* **Source wallets.** A co-signer names the wallet a request spends from by the BIP32
  derivation path it signs along (``m`` for a key used at its root, ``m/44/60/3/0/0``
  for a derived one); a ``source.wallets`` entry that is not such a path could never
  match and is refused, so a rule written for the server's wallet ids does not silently
  stop applying.
* **Prices.** A rule with a ``value`` condition needs a price for every asset it can
  match (narrowed by its ``asset`` and ``network`` conditions), and a ``value`` velocity
  condition for every asset (its sum covers them all): a static price in the bundle's
  asset registry (:mod:`.registry`), or price keys in it (whose signed reports,
  :mod:`.prices`, may price any asset). Without a registry there is no signed price at
  all. (A rule naming an asset or network the registry does not list is not refused: it
  never matches, which is fail-closed for ``allow`` rules.)

:func:`refuse_unsigned_inputs`, the one load-time check, applies all of these when a
holder accepts a newly offered bundle (:meth:`.bundle.BundleChain.accept`; a bundle it
stored earlier is exempt) and when the server proposes one;
:func:`initiator_decides` tells a co-signer, after an evaluation, whether the initiator
could have changed its outcome (a request without a signed initiator is then refused).
"""

from __future__ import annotations

import re

from shardvault.policy.errors import UnsignedInputError
from shardvault.policy.evaluate import Evaluation, Outcome, RuleTrace
from shardvault.policy.initiators import InitiatorKeys
from shardvault.policy.model import Decision, Measure, Policy, Rule, Scope
from shardvault.policy.registry import AssetRegistry

MAX_PATH_INDEX = (1 << 31) - 1
"""The largest non-hardened BIP32 index (co-signers derive non-hardened steps only)."""

_PATH = re.compile(r"m(/(0|[1-9][0-9]{0,9}))*")


def is_derivation_path(text: str) -> bool:
    """Whether ``text`` is a non-hardened BIP32 path such as ``m`` or ``m/44/60/0/0/7``."""
    if not _PATH.fullmatch(text):
        return False
    return all(int(step) <= MAX_PATH_INDEX for step in text.split("/")[1:])


_APPROVALS = "its approvals: nobody approves their own request"


def _condition_dependency(rule: Rule) -> str | None:
    """How ``rule``'s conditions depend on the initiator, in words, or ``None``."""
    if rule.when.initiator is not None:
        return "an initiator condition"
    if any(v.per is Scope.INITIATOR for v in rule.when.velocity):
        return "a velocity limit per initiator"
    return None


def initiator_dependency(rule: Rule) -> str | None:
    """How ``rule`` depends on who initiated the request, in words, or ``None``."""
    reason = _condition_dependency(rule)
    if reason is None and rule.action is Decision.REQUIRE_APPROVALS:
        return _APPROVALS
    return reason


def refuse_unsigned_inputs(
    policy: Policy, initiators: InitiatorKeys | None, assets: AssetRegistry | None
) -> None:
    """Refuse a policy that would decide on an unsigned fact (module docstring), given
    the bundle's initiator keys and asset registry.

    Raises:
        UnsignedInputError: naming the first rule at fault (and its path) and what it
            depends on: the initiator, source tags, a wallet that is not a derivation
            path, or an asset left without a signed price.
    """
    for index, rule in enumerate(policy.rules):
        _refuse_unsigned_initiator_or_source(rule, index, initiators)
        _refuse_unpriced_value(policy, rule, index, assets)


def _refuse_unsigned_initiator_or_source(
    rule: Rule, index: int, initiators: InitiatorKeys | None
) -> None:
    """The initiator and source rules of :func:`refuse_unsigned_inputs` for one rule."""
    where = f"policy.rules[{index}]"
    reason = initiator_dependency(rule)
    if reason is not None and initiators is None:
        raise UnsignedInputError(
            f"rule {rule.name!r} depends on the initiator ({reason}), but the bundle "
            "lists no initiator keys: co-signers would take the initiator from the "
            "coordinator's word",
            path=where,
        )
    source = rule.when.source
    if source is None:
        return
    if source.tags:
        raise UnsignedInputError(
            f"rule {rule.name!r} conditions on source tags, which nothing signs",
            path=f"{where}.when.source.tags",
        )
    for wallet in sorted(source.wallets):
        if not is_derivation_path(wallet):
            raise UnsignedInputError(
                f"rule {rule.name!r} names source wallet {wallet!r}, which is not a "
                "derivation path: co-signers name a wallet by the path they sign along "
                "(m/44/60/0/0/0)",
                path=f"{where}.when.source.wallets",
            )


def _refuse_unpriced_value(
    policy: Policy, rule: Rule, index: int, registry: AssetRegistry | None
) -> None:
    """The price rule of :func:`refuse_unsigned_inputs` for one rule: a value limit
    needs a signed price for every asset it can see."""
    when = rule.when
    in_value = when.value is not None
    in_velocity = any(v.measure is Measure.VALUE for v in when.velocity)
    if not (in_value or in_velocity):
        return
    currency = policy.reference_currency
    path = f"policy.rules[{index}].when.{'value' if in_value else 'velocity'}"
    if registry is None:
        raise UnsignedInputError(
            f"rule {rule.name!r} limits value in {currency}, but the bundle carries no "
            "asset registry: no signed price (static or from a price key) exists",
            path=path,
        )
    if registry.price_keys:
        return
    for network, asset in registry.all_assets():
        visible = in_velocity or (
            (when.assets is None or asset.id in when.assets)
            and (when.networks is None or network.name in when.networks)
        )
        if visible and asset.price is None:
            raise UnsignedInputError(
                f"rule {rule.name!r} limits value in {currency}, but {asset.id} on "
                f"{network.name} has no static price and the registry names no price key",
                path=path,
            )


def initiator_decides(policy: Policy, evaluation: Evaluation) -> tuple[str, str] | None:
    """Whether the initiator could have changed ``evaluation`` (of ``policy``): a rule
    tried up to the deciding one that depends on the initiator and did not fail on a
    condition that has nothing to do with it, or the deciding rule itself when it
    requires approvals. Returns that rule's name and the dependency in words, or
    ``None``.

    A rule that missed on its operation, asset, destination or any other condition
    that is not the initiator would have missed whoever initiated the request; one that
    missed on its initiator condition, or matched, might not have.
    """
    for trace in evaluation.trace:
        rule = policy.rules[trace.rule_index]
        reason = _condition_dependency(rule)
        deciding = trace.rule_index == evaluation.rule_index
        if reason is not None and not deciding and _missed_regardless(rule, trace):
            continue
        # An approvals rule that did not decide counted nobody's approvals.
        if reason is None and deciding and rule.action is Decision.REQUIRE_APPROVALS:
            reason = _APPROVALS
        if reason is not None:
            return rule.name, reason
    return None


def _missed_regardless(rule: Rule, trace: RuleTrace) -> bool:
    """Whether ``trace`` shows ``rule`` missing on a condition the initiator plays no
    part in (the evaluator stops at a rule's first failing condition)."""
    initiator_checks = {"initiator"} | {
        v.label for v in rule.when.velocity if v.per is Scope.INITIATOR
    }
    return any(
        check.outcome is Outcome.NOT_MATCHED and check.condition not in initiator_checks
        for check in trace.checks
    )
