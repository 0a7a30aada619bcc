"""Signed approvals: which statements count, and the typed error of those that do not."""

from __future__ import annotations

from typing import Any

import pytest

from shardvault.policy import (
    APPROVAL_MAX_SKEW_SECONDS,
    ApprovalError,
    ApprovalExpiredError,
    ApprovalForAnotherPolicyError,
    ApprovalForAnotherTransactionError,
    ApprovalFromTheFutureError,
    ApprovalVerdict,
    ApproverNotInGroupError,
    BadApprovalSignatureError,
    Decision,
    DuplicateApproverError,
    RequestError,
    SelfApprovalError,
    SignedApproval,
    UnknownApproverError,
    approval_message,
    approval_to_json,
    evaluate,
    load_policy,
    parse_approval,
    verify_approval,
)
from shardvault.policy.request import UnixSeconds

from ._support import (
    HEADER,
    NOW,
    ed25519_key,
    make_context,
    make_request,
    p256_key,
    p256_public_hex,
    p256_sign_raw,
    policy_with,
    sign_approval,
    statement_json,
    statement_message,
)

RULES = """rules:
  - name: treasury-2
    action: require_approvals
    approvals: {groups: [{group: treasury, count: 2}], deadline: 1h}
"""
POLICY = policy_with(RULES)
REQUEST = make_request()
OTHER = make_request(digest="ef" * 32)
TREASURY = frozenset({"treasury"})


def verify(approval: SignedApproval) -> None:
    """Whether ``approval`` counts for REQUEST towards treasury at NOW (1h lifetime)."""
    verify_approval(
        POLICY,
        approval,
        digest=REQUEST.digest,
        groups=TREASURY,
        now=NOW,
        deadline_seconds=3600,
    )


def run(*approvals: SignedApproval) -> Any:
    return evaluate(POLICY, REQUEST, make_context(), list(approvals))


def refused(result: Any) -> list[type[ApprovalError]]:
    return [type(error) for _, error in result.approval_tally.refused]


def test_two_valid_approvals_allow() -> None:
    result = run(sign_approval("carol", REQUEST.digest), sign_approval("dave", REQUEST.digest))
    assert result.decision is Decision.ALLOW
    assert result.approvals[0].approved_by == ("carol", "dave")


def test_approval_signed_for_another_transaction() -> None:
    stray = sign_approval("dave", OTHER.digest)
    with pytest.raises(ApprovalForAnotherTransactionError, match="dave"):
        verify(stray)
    result = run(sign_approval("carol", REQUEST.digest), stray)
    assert result.decision is Decision.REQUIRE_APPROVALS
    assert result.approvals_needed == {"treasury": 1}
    assert refused(result) == [ApprovalForAnotherTransactionError]


def test_approval_relabelled_for_this_transaction_does_not_verify() -> None:
    """Changing the digest field of a statement signed for another transaction makes
    its signature invalid: the digest is inside the signed bytes."""
    stray = sign_approval("dave", OTHER.digest)
    relabelled = SignedApproval(
        "dave", REQUEST.digest, stray.verdict, 7, stray.signed_at, stray.signature
    )
    with pytest.raises(BadApprovalSignatureError):
        verify(relabelled)


def test_duplicated_approver_counts_once() -> None:
    carol = sign_approval("carol", REQUEST.digest)
    result = run(carol, carol)
    assert result.decision is Decision.REQUIRE_APPROVALS
    assert result.approvals[0].approved_by == ("carol",)
    assert refused(result) == [DuplicateApproverError]
    with pytest.raises(DuplicateApproverError):
        result.approval_tally.raise_first_refusal()


def test_approval_from_outside_the_group() -> None:
    alice = sign_approval("alice", REQUEST.digest)  # alice has a key but is a trader
    with pytest.raises(ApproverNotInGroupError, match="alice"):
        verify(alice)
    result = run(alice, sign_approval("carol", REQUEST.digest))
    assert result.decision is Decision.REQUIRE_APPROVALS
    assert refused(result) == [ApproverNotInGroupError]


def test_rejection_from_outside_the_group_does_not_block() -> None:
    result = run(
        sign_approval("carol", REQUEST.digest),
        sign_approval("dave", REQUEST.digest),
        sign_approval("alice", REQUEST.digest, verdict=ApprovalVerdict.REJECT),
    )
    assert result.decision is Decision.ALLOW


def test_the_initiator_cannot_approve_their_own_request() -> None:
    request = make_request(initiator={"type": "user", "id": "carol"})
    approvals = [sign_approval("carol", request.digest), sign_approval("dave", request.digest)]
    result = evaluate(POLICY, request, make_context(), approvals)
    assert result.decision is Decision.REQUIRE_APPROVALS
    assert refused(result) == [SelfApprovalError]


def test_approval_from_someone_without_a_key() -> None:
    stranger = sign_approval("zed", REQUEST.digest)
    with pytest.raises(UnknownApproverError):
        verify(stranger)


def test_approval_under_another_policy_version() -> None:
    old = sign_approval("carol", REQUEST.digest, version=6)
    with pytest.raises(ApprovalForAnotherPolicyError, match="version 6"):
        verify(old)


def test_approval_signed_with_another_key() -> None:
    forged = sign_approval("carol", REQUEST.digest, signer="mallory")
    with pytest.raises(BadApprovalSignatureError, match="carol"):
        verify(forged)
    malformed = SignedApproval(
        "carol", REQUEST.digest, ApprovalVerdict.APPROVE, 7, UnixSeconds(NOW), b"\x00"
    )
    with pytest.raises(BadApprovalSignatureError):
        verify(malformed)


def test_webcrypto_p256_approver() -> None:
    """A browser approver: P-256 key, raw r||s signature as WebCrypto returns it."""
    key = p256_key("carol-browser")
    header = HEADER.replace(
        "approvers:\n",
        f"approvers:\n  frank: {{algorithm: p256, public_key: {p256_public_hex(key)}}}\n",
    ).replace("treasury: [carol, dave, erin]", "treasury: [carol, dave, erin, frank]")
    policy = load_policy(header + RULES)
    message = approval_message("frank", REQUEST.digest, ApprovalVerdict.APPROVE, 7, NOW)
    frank = SignedApproval(
        "frank",
        REQUEST.digest,
        ApprovalVerdict.APPROVE,
        7,
        UnixSeconds(NOW),
        p256_sign_raw(key, message),
    )
    result = evaluate(
        policy, REQUEST, make_context(), [frank, sign_approval("dave", REQUEST.digest)]
    )
    assert result.decision is Decision.ALLOW


def test_json_form_round_trips() -> None:
    carol = sign_approval("carol", REQUEST.digest)
    assert parse_approval(approval_to_json(carol)) == carol


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"extra": 1}, "approval"),
        ({"digest": "00"}, "approval.digest"),
        ({"digest": "zz"}, "approval.digest"),
        ({"decision": "maybe"}, "approval.decision"),
        ({"policy_version": 0}, "approval.policy_version"),
        ({"approver": ""}, "approval.approver"),
        ({"signature": 5}, "approval.signature"),
    ],
)
def test_malformed_approvals(change: dict[str, Any], where: str) -> None:
    data = approval_to_json(sign_approval("carol", REQUEST.digest))
    data.update(change)
    with pytest.raises(RequestError) as info:
        parse_approval(data)
    assert info.value.path == where


# Lifetimes count from the approval's own signed time (issue #18), never from the
# request's created_at, which at a co-signer is whatever the coordinator sends.

HOUR = 3600
LIFETIME_RULES = """rules:
  - name: treasury-1
    action: require_approvals
    approvals: {groups: [{group: treasury, count: 1}], deadline: 1h}
"""


def _stated(name: str, signed_at: int | None) -> SignedApproval:
    key = ed25519_key(name)
    return parse_approval(statement_json(key, name, REQUEST.digest, signed_at=signed_at))


def _evaluate_at(now: int, *approvals: SignedApproval) -> Any:
    """One treasury approval needed; the request was created (it says) just now."""
    request = make_request(created_at=now)
    return evaluate(policy_with(LIFETIME_RULES), request, make_context(now=now), list(approvals))


def test_an_approval_past_its_lifetime_does_not_count_whatever_created_at_says() -> None:
    """Carol approved two hours ago; the rule gives approvals one hour; the request
    arrives with a fresh created_at."""
    result = _evaluate_at(NOW, _stated("carol", NOW - 2 * HOUR))
    assert result.decision is Decision.REQUIRE_APPROVALS
    [(_, error)] = result.approval_tally.refused
    assert isinstance(error, ApprovalExpiredError)
    assert "deadline" in str(error)
    assert str(NOW - 2 * HOUR) in str(error)
    assert str(NOW - HOUR) in str(error)  # the statement's own deadline
    # At the last second of its lifetime it still counts.
    assert _evaluate_at(NOW, _stated("carol", NOW - HOUR)).decision is Decision.ALLOW
    with pytest.raises(ApprovalExpiredError, match="carol"):
        verify(sign_approval("carol", REQUEST.digest, signed_at=NOW - HOUR - 1))


def test_an_approval_from_the_future_does_not_count() -> None:
    """A statement dated beyond the clock skew allowed would outlive its lifetime."""
    result = _evaluate_at(NOW, _stated("carol", NOW + APPROVAL_MAX_SKEW_SECONDS + 1))
    assert result.decision is Decision.REQUIRE_APPROVALS
    [(_, error)] = result.approval_tally.refused
    assert isinstance(error, ApprovalFromTheFutureError)
    assert "future" in str(error)
    ahead = _stated("carol", NOW + APPROVAL_MAX_SKEW_SECONDS)
    assert _evaluate_at(NOW, ahead).decision is Decision.ALLOW
    with pytest.raises(ApprovalFromTheFutureError, match="carol"):
        verify(sign_approval("carol", REQUEST.digest, signed_at=NOW + HOUR))


def test_a_v1_statement_without_a_signed_time_is_refused() -> None:
    """A v1 statement says nothing of when it was given, so it could be replayed
    forever: it is refused as it is read, never counted."""
    v1 = statement_json(ed25519_key("carol"), "carol", REQUEST.digest, signed_at=None)
    with pytest.raises(RequestError, match="signed_at") as info:
        parse_approval(v1)
    assert info.value.path == "approval"
    assert "format v1" in info.value.reason


def test_a_signed_at_changed_after_signing_does_not_verify() -> None:
    """The time is inside the signed bytes: a holder who redates a stale statement
    breaks its signature."""
    stale = statement_json(ed25519_key("carol"), "carol", REQUEST.digest, signed_at=NOW - 2 * HOUR)
    redated = parse_approval({**stale, "signed_at": NOW})
    with pytest.raises(BadApprovalSignatureError):
        verify(redated)
    assert refused(_evaluate_at(NOW, redated)) == [BadApprovalSignatureError]


def test_the_statement_bytes_are_the_documented_ones() -> None:
    """approval_message against the bytes docs/policy.md specifies, built in the tests."""
    for verdict in ApprovalVerdict:
        _, expected = statement_message(
            "carol", REQUEST.digest, signed_at=NOW, version=7, decision=verdict.value
        )
        assert approval_message("carol", REQUEST.digest, verdict, 7, NOW) == expected
    assert expected.startswith(b'shardvault/policy/approval/v2\x00{"approver":"carol",')
    assert expected.endswith(b'"policy_version":7,"signed_at":1764064800}')


@pytest.mark.parametrize("signed_at", [-1, "1764064800", 1.5e9, True, None, 2**53])
def test_malformed_signed_at_is_refused(signed_at: object) -> None:
    data = approval_to_json(sign_approval("carol", REQUEST.digest))
    data["signed_at"] = signed_at
    with pytest.raises(RequestError) as info:
        parse_approval(data)
    assert info.value.path == "approval.signed_at"
