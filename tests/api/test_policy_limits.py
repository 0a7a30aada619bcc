"""Policy documents that used to crash the server (a 500) are a typed 400 that stores
nothing: nested thousands of levels deep (YAML or JSON text, or a JSON object in the
request), or with a version beyond what the database's INTEGER column holds (32 bits on
PostgreSQL)."""

import json
import sys

import httpx
import pytest

from shardvault.policy.load import MAX_DEPTH, MAX_VERSION
from shardvault.service.platform import Platform
from shardvault.store.models_vaults import PolicyVersion
from tests.api.support import Tenant, assert_problem, count_rows, signed_post

POLICY: dict[str, object] = {
    "format": "shardvault.policy/v1",
    "version": 1,
    "reference_currency": "USD",
    "rules": [{"name": "everything", "action": "allow"}],
}


def nested_json(depth: int) -> str:
    """``{"a": {"a": ... 1 ...}}``, ``depth`` objects deep."""
    return '{"a": ' * depth + "1" + "}" * depth


def nested_yaml(depth: int) -> str:
    """A flow sequence ``depth`` lists deep (PyYAML composes it recursively)."""
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        ("yaml", nested_yaml(5000)),
        ("yaml", "format: shardvault.policy/v1\ndescription: " + nested_yaml(5000)),
        ("json", nested_json(5000)),
        ("json", "[" * 5000 + "]" * 5000),
        ("yaml", nested_yaml(MAX_DEPTH + 1)),
        ("json", nested_json(MAX_DEPTH + 1)),
    ],
)
def test_a_deeply_nested_policy_text_is_refused(
    http: httpx.Client, platform: Platform, tenant: Tenant, fmt: str, text: str
) -> None:
    body = json.dumps({"text": text, "format": fmt}).encode()
    refused = signed_post(http, tenant, "/v1/policies", body, f"deep-{fmt}-{len(text)}")
    problem = assert_problem(refused, 400, "policy-refused")
    assert f"nested deeper than {MAX_DEPTH} levels" in problem["detail"]
    assert count_rows(platform, PolicyVersion) == 0


@pytest.mark.parametrize("depth", [MAX_DEPTH, 500])
def test_a_deeply_nested_policy_object_is_refused(
    http: httpx.Client, platform: Platform, tenant: Tenant, depth: int
) -> None:
    """As ``document`` (a JSON object in the request): refused by the policy layer,
    whatever field the nesting hides in."""
    document = nested_json(depth)
    body = ('{"document": {"format": "shardvault.policy/v1", "rules": ' + document + "}}").encode()
    refused = signed_post(http, tenant, "/v1/policies", body, f"deep-object-{depth}")
    problem = assert_problem(refused, 400, "policy-refused")
    assert problem["detail"] == f"policy: nested deeper than {MAX_DEPTH} levels"
    assert count_rows(platform, PolicyVersion) == 0


def test_a_request_body_too_deep_to_decode_is_a_400(
    http: httpx.Client, platform: Platform, tenant: Tenant
) -> None:
    """5,000 levels as a JSON object: deeper than the JSON decoder goes with the
    interpreter's default recursion limit (1,000, the server's), so the request body is
    refused as it is decoded, before the route runs. Where some library raised the
    limit (py-evm and py_ecc set 100,000 when imported, as in this test process once a
    test has loaded them), the body decodes and the policy layer's bound refuses it.
    Either way a 400 and nothing stored."""
    body = ('{"document": ' + nested_json(5000) + "}").encode()
    refused = signed_post(http, tenant, "/v1/policies", body, "deep-body")
    assert refused.status_code == 400, refused.text
    problem = refused.json()["type"].removeprefix("urn:shardvault:problem:")
    if sys.getrecursionlimit() <= 1000:
        assert problem == "bad-request"
    else:
        assert problem == "policy-refused"
        assert f"nested deeper than {MAX_DEPTH} levels" in refused.json()["detail"]
    assert count_rows(platform, PolicyVersion) == 0


@pytest.mark.parametrize("version", [2**31, 2**63, 2**64 + 5, 10**30])
def test_a_policy_version_beyond_the_column_is_refused(
    http: httpx.Client, platform: Platform, tenant: Tenant, version: int
) -> None:
    for form in ("document", "text"):
        document = {**POLICY, "version": version}
        payload: dict[str, object] = (
            {"document": document}
            if form == "document"
            else {"text": json.dumps(document), "format": "json"}
        )
        body = json.dumps(payload).encode()
        refused = signed_post(http, tenant, "/v1/policies", body, f"v-{form}-{version}")
        problem = assert_problem(refused, 400, "policy-refused")
        assert problem["detail"].startswith("policy.version: must be at most 2^31 - 1")
    assert count_rows(platform, PolicyVersion) == 0


def test_the_largest_policy_version_is_stored(
    http: httpx.Client, platform: Platform, tenant: Tenant
) -> None:
    body = json.dumps({"document": {**POLICY, "version": MAX_VERSION}}).encode()
    created = signed_post(http, tenant, "/v1/policies", body, "v-max")
    assert created.status_code == 201, created.text
    assert created.json()["version"] == MAX_VERSION == 2**31 - 1
    assert count_rows(platform, PolicyVersion) == 1
