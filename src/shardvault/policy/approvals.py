"""Approvals as signed statements, and how the evaluator counts them.

An approver signs, with the key the policy lists for them, the statement

    "shardvault/policy/approval/v2" || 0x00 || canonical JSON of
    {"approver": id, "decision": "approve" | "reject", "digest": hex,
     "policy_version": n, "signed_at": Unix seconds}

(canonical JSON: keys sorted, no spaces, ASCII only; see :func:`approval_message`). The
domain prefix keeps the signature from being valid for anything else the same key signs
(a bundle, a login). Binding the digest and the policy version means an approval counts
for one transaction under one policy version only. ``signed_at`` is the approver's own
clock when they signed: a statement's lifetime counts from it, so whoever holds an
approval (a compromised coordinator) cannot make it count again later by presenting it
with a fresh request ``created_at``. Format v1 statements carried no time and are
refused as they are read.

Counting (:func:`tally`): a statement counts only if its approver has a key in the
policy, belongs to a group the matched rule requires, signed this transaction's digest
under this policy version, the signature verifies, and it is alive at the evaluation's
``now``: ``signed_at <= now + APPROVAL_MAX_SKEW_SECONDS`` (not from the future) and
``now <= signed_at + deadline`` (the rule's approval deadline, counted from the
statement's own time). Each approver counts once, for at most one group, so one person
never fills two groups' quotas (a maximum bipartite matching between approvers and group
seats decides who fills which seat); and the member who initiated the request never
approves it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from shardvault.policy.errors import (
    ApprovalError,
    ApprovalExpiredError,
    ApprovalForAnotherPolicyError,
    ApprovalForAnotherTransactionError,
    ApprovalFromTheFutureError,
    ApproverNotInGroupError,
    BadApprovalSignatureError,
    ConfigurationKeyError,
    DuplicateApproverError,
    RequestError,
    SelfApprovalError,
    UnknownApproverError,
)
from shardvault.policy.keys import SignatureCheckFailed
from shardvault.policy.model import ApprovalRequirement, Policy
from shardvault.policy.request import UnixSeconds

APPROVAL_DOMAIN = b"shardvault/policy/approval/v2\x00"
"""Prefix of every approval statement: protocol, object and format version (v2: the
statement carries ``signed_at``)."""

APPROVAL_MAX_SKEW_SECONDS = 300
"""How far ahead of the evaluating clock a statement's ``signed_at`` may lie and still
count: the approver's and the evaluator's clocks disagree a little (five minutes, as a
co-signer allows a request's ``created_at``). Further ahead, the statement is refused
(:class:`ApprovalFromTheFutureError`): counted from a future time it would outlive its
lifetime."""

MAX_SIGNED_AT = 2**53 - 1
"""The largest ``signed_at`` read: the largest integer every JSON reader (a browser's
included) keeps exact."""

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


class ApprovalVerdict(StrEnum):
    """What an approver decided."""

    APPROVE = "approve"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class SignedApproval:
    """One approver's signed statement about one transaction."""

    approver: str
    digest: bytes
    verdict: ApprovalVerdict
    policy_version: int
    signed_at: UnixSeconds
    """When the approver signed, by their own clock; the statement's lifetime counts
    from it."""
    signature: bytes

    def message(self) -> bytes:
        """The bytes the approver signed."""
        return approval_message(
            self.approver, self.digest, self.verdict, self.policy_version, self.signed_at
        )


def approval_message(
    approver: str,
    digest: bytes,
    verdict: ApprovalVerdict,
    policy_version: int,
    signed_at: int,
) -> bytes:
    """The exact bytes an approver signs for ``(digest, verdict, policy_version)`` at
    ``signed_at`` (Unix seconds, the approver's clock)."""
    body = {
        "approver": approver,
        "decision": verdict.value,
        "digest": digest.hex(),
        "policy_version": policy_version,
        "signed_at": signed_at,
    }
    return APPROVAL_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def parse_approval(data: object, path: str = "approval") -> SignedApproval:
    """Read the JSON form ``{approver, digest, decision, policy_version, signed_at,
    signature}`` (digest and signature in hex, ``signed_at`` integer Unix seconds).

    Raises:
        RequestError: a missing, unknown or malformed field; a v1 statement (no
            ``signed_at``) is refused here.
    """
    if not isinstance(data, Mapping):
        raise RequestError("expected an object", path=path)
    fields = {"approver", "digest", "decision", "policy_version", "signed_at", "signature"}
    for key in data:
        if key not in fields:
            raise RequestError(f"unknown field {key!r}", path=path)
    if fields - set(data) == {"signed_at"}:
        raise RequestError(
            "missing field 'signed_at': a statement without its signing time (format v1) "
            "no longer counts; the approver must sign it again",
            path=path,
        )
    for key in sorted(fields - set(data)):
        raise RequestError(f"missing field {key!r}", path=path)
    approver = data["approver"]
    if not isinstance(approver, str) or not approver:
        raise RequestError("expected a member id", path=f"{path}.approver")
    digest = _hex(data["digest"], f"{path}.digest")
    if len(digest) != 32:
        raise RequestError("expected 32 bytes", path=f"{path}.digest")
    try:
        verdict = ApprovalVerdict(data["decision"])
    except ValueError:
        raise RequestError("expected approve or reject", path=f"{path}.decision") from None
    version = data["policy_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise RequestError("expected a positive integer", path=f"{path}.policy_version")
    signed_at = data["signed_at"]
    if (
        isinstance(signed_at, bool)
        or not isinstance(signed_at, int)
        or not 0 <= signed_at <= MAX_SIGNED_AT
    ):
        raise RequestError(
            f"expected integer Unix seconds 0..{MAX_SIGNED_AT}", path=f"{path}.signed_at"
        )
    return SignedApproval(
        approver,
        digest,
        verdict,
        version,
        UnixSeconds(signed_at),
        _hex(data["signature"], f"{path}.signature"),
    )


def _hex(value: object, path: str) -> bytes:
    if not isinstance(value, str):
        raise RequestError("expected hex", path=path)
    text = value[2:] if value.startswith("0x") else value
    if not _HEX.fullmatch(text):
        raise RequestError("expected hex", path=path)
    return bytes.fromhex(text)


def approval_to_json(approval: SignedApproval) -> dict[str, object]:
    """The JSON form :func:`parse_approval` reads."""
    return {
        "approver": approval.approver,
        "digest": approval.digest.hex(),
        "decision": approval.verdict.value,
        "policy_version": approval.policy_version,
        "signed_at": approval.signed_at,
        "signature": approval.signature.hex(),
    }


def verify_approval(
    policy: Policy,
    approval: SignedApproval,
    *,
    digest: bytes,
    groups: frozenset[str],
    now: int,
    deadline_seconds: int,
) -> None:
    """Check that ``approval`` may count for the transaction ``digest`` towards one of
    ``groups`` under ``policy`` at ``now``, given a lifetime of ``deadline_seconds``
    (the rule's approval deadline) from the statement's ``signed_at``.

    The times are checked last, once the signature has shown that ``signed_at`` is the
    approver's.

    Raises:
        UnknownApproverError: the approver has no key in the policy.
        ApproverNotInGroupError: the approver belongs to none of ``groups``.
        ApprovalForAnotherTransactionError: the signed digest is not ``digest``.
        ApprovalForAnotherPolicyError: signed under another policy version.
        BadApprovalSignatureError: the signature is malformed or does not verify.
        ApprovalFromTheFutureError: ``signed_at`` is more than
            :data:`APPROVAL_MAX_SKEW_SECONDS` after ``now``.
        ApprovalExpiredError: ``now`` is past ``signed_at + deadline_seconds``.
    """
    key = policy.approvers.get(approval.approver)
    if key is None:
        raise UnknownApproverError(f"{approval.approver!r} has no approver key in the policy")
    if not policy.groups_of(approval.approver) & groups:
        raise ApproverNotInGroupError(
            f"{approval.approver!r} is in none of the required groups {sorted(groups)}"
        )
    if approval.digest != digest:
        raise ApprovalForAnotherTransactionError(
            f"{approval.approver!r} signed digest {approval.digest.hex()[:16]}..., "
            f"not this transaction's {digest.hex()[:16]}..."
        )
    if approval.policy_version != policy.version:
        raise ApprovalForAnotherPolicyError(
            f"{approval.approver!r} signed under policy version {approval.policy_version}, "
            f"not {policy.version}"
        )
    try:
        key.verify(approval.message(), approval.signature)
    except (SignatureCheckFailed, ConfigurationKeyError):
        raise BadApprovalSignatureError(
            f"the signature of {approval.approver!r} does not verify"
        ) from None
    signed_at = approval.signed_at
    if signed_at > now + APPROVAL_MAX_SKEW_SECONDS:
        raise ApprovalFromTheFutureError(
            f"{approval.approver!r} signed at {signed_at}, more than "
            f"{APPROVAL_MAX_SKEW_SECONDS} s after now ({now}): a statement from the future "
            "does not count"
        )
    expires = signed_at + deadline_seconds
    if now > expires:
        raise ApprovalExpiredError(
            f"the approval deadline of {approval.approver!r}'s statement has passed: "
            f"signed at {signed_at}, valid for {deadline_seconds} s until {expires}, "
            f"now {now}"
        )


@dataclass(frozen=True, slots=True)
class GroupStatus:
    """How far one required group is: who counts for it and how many are missing."""

    group: str
    required: int
    approved_by: tuple[str, ...]

    @property
    def missing(self) -> int:
        """Approvals this group still needs."""
        return max(0, self.required - len(self.approved_by))


@dataclass(frozen=True, slots=True)
class ApprovalTally:
    """The outcome of counting approvals for one rule's requirement."""

    groups: tuple[GroupStatus, ...]
    rejected_by: tuple[str, ...]
    refused: tuple[tuple[SignedApproval, ApprovalError], ...]

    @property
    def satisfied(self) -> bool:
        """Every group has its count and nobody eligible rejected."""
        return not self.rejected_by and all(g.missing == 0 for g in self.groups)

    def raise_first_refusal(self) -> None:
        """Raise the typed error of the first statement that did not count, if any.

        Raises:
            ApprovalError: that statement's error.
        """
        if self.refused:
            raise self.refused[0][1]


def tally(
    policy: Policy,
    requirement: ApprovalRequirement,
    digest: bytes,
    approvals: Sequence[SignedApproval],
    *,
    now: int,
    initiator: str | None = None,
) -> ApprovalTally:
    """Count ``approvals`` of the transaction ``digest`` against ``requirement`` at
    ``now`` (each statement's lifetime is the requirement's deadline from its own
    ``signed_at``; :func:`verify_approval`).

    ``initiator`` is the member id that started the request; their own statements never
    count (:class:`SelfApprovalError`).

    Statements that do not count are kept in :attr:`ApprovalTally.refused` with their
    typed error (never silently dropped, never raised: one bad statement must not stop
    the honest ones from counting).
    """
    required = frozenset(g.group for g in requirement.groups)
    approvers: list[str] = []
    rejecters: list[str] = []
    seen: set[str] = set()
    refused: list[tuple[SignedApproval, ApprovalError]] = []
    for approval in approvals:
        try:
            verify_approval(
                policy,
                approval,
                digest=digest,
                groups=required,
                now=now,
                deadline_seconds=requirement.deadline_seconds,
            )
            if approval.approver == initiator:
                raise SelfApprovalError(
                    f"{approval.approver!r} initiated this request and cannot approve it"
                )
            if approval.approver in seen:
                raise DuplicateApproverError(
                    f"{approval.approver!r} already gave a statement for this transaction"
                )
        except ApprovalError as exc:
            refused.append((approval, exc))
            continue
        seen.add(approval.approver)
        if approval.verdict is ApprovalVerdict.REJECT:
            rejecters.append(approval.approver)
        else:
            approvers.append(approval.approver)
    seats = [g.group for g in requirement.groups for _ in range(g.count)]
    assignment = _assign(approvers, seats, policy)
    counted: dict[str, list[str]] = {g.group: [] for g in requirement.groups}
    for approver, seat in sorted(assignment.items(), key=lambda kv: kv[1]):
        counted[seats[seat]].append(approver)
    return ApprovalTally(
        groups=tuple(
            GroupStatus(g.group, g.count, tuple(sorted(counted[g.group])))
            for g in requirement.groups
        ),
        rejected_by=tuple(rejecters),
        refused=tuple(refused),
    )


def _assign(approvers: list[str], seats: list[str], policy: Policy) -> dict[str, int]:
    """A maximum matching of approvers to seats (Kuhn's augmenting paths): each
    approver fills at most one seat of a group they belong to."""
    seat_holder: dict[int, str] = {}

    def place(approver: str, visited: set[int]) -> bool:
        member_of = policy.groups_of(approver)
        for seat, group in enumerate(seats):
            if group not in member_of or seat in visited:
                continue
            visited.add(seat)
            holder = seat_holder.get(seat)
            if holder is None or place(holder, visited):
                seat_holder[seat] = approver
                return True
        return False

    for approver in approvers:
        place(approver, set())
    return {approver: seat for seat, approver in seat_holder.items()}
