"""A vault quorum the signing backend cannot make (another number of co-signers than the
workspace has), or a 1-of-n MPC key, is a 400 naming the field and what it may be; no
key generation starts and nothing is stored. The backend used to raise: a 500."""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shardvault.api import create_app
from shardvault.service.cosigner_backend import CosignerBackend
from shardvault.service.pipeline import PipelineRuntime
from shardvault.service.platform import Platform
from shardvault.store.models import SYSTEM_CHAIN
from shardvault.store.models_vaults import Vault, VaultKey
from tests.api.support import Tenant, assert_problem, count_rows, refusals, signed_post


class _Relays:
    """The co-signers' relays of a workspace with three co-signers; a refused request
    never gets as far as asking for them."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, workspace_id: str) -> Any:
        self.asked.append(workspace_id)
        raise AssertionError("a refused vault request reached the co-signers")


@pytest.fixture
def relays() -> _Relays:
    return _Relays()


@pytest.fixture
def app(platform: Platform, relays: _Relays) -> Iterator[FastAPI]:
    """The API with the co-signer backend of ``shardvault server`` (three co-signers)."""
    backend = CosignerBackend(relays, lambda _workspace: [])
    try:
        yield create_app(platform, pipeline_runtime=PipelineRuntime(backend))
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("quorum", "field", "allowed"),
    [
        ({"min_signers": 2, "max_signers": 5}, "max_signers", "must be 3 "),
        ({"min_signers": 2, "max_signers": 2}, "max_signers", "must be 3 "),
        ({"min_signers": 4, "max_signers": 3}, "min_signers", "must be 2 to max_signers (3)"),
        ({"min_signers": 1, "max_signers": 3}, "min_signers", "greater than or equal to 2"),
        ({"min_signers": 2, "max_signers": 17}, "max_signers", "less than or equal to 16"),
    ],
)
def test_a_vault_quorum_the_backend_cannot_make_is_refused(
    http: httpx.Client,
    platform: Platform,
    tenant: Tenant,
    relays: _Relays,
    quorum: dict[str, int],
    field: str,
    allowed: str,
) -> None:
    body = json.dumps({"name": "ops", "schemes": ["eddsa-ed25519"], **quorum}).encode()
    key = f"vault-{quorum['min_signers']}-of-{quorum['max_signers']}"
    refused = signed_post(http, tenant, "/v1/vaults", body, key)
    problem = assert_problem(refused, 400, "invalid-request")
    assert field in problem["detail"]
    assert allowed in problem["detail"]
    assert relays.asked == []
    assert count_rows(platform, Vault, VaultKey) == 0
    # The refusal is on the record, in the workspace's chain (after authentication).
    assert refusals(platform, tenant.workspace_id)
    assert refusals(platform, SYSTEM_CHAIN) == []


def test_a_vault_before_any_policy_is_a_conflict_naming_the_missing_step(
    http: httpx.Client, platform: Platform, tenant: Tenant, relays: _Relays
) -> None:
    """The co-signers make keys only under a signed policy: a vault asked for before one
    is active is a 409 saying which step comes first (it was a 500), no co-signer is
    asked (or, embedded, created) and nothing is stored."""
    body = json.dumps({"name": "ops", "schemes": ["eddsa-ed25519"]}).encode()
    refused = signed_post(http, tenant, "/v1/vaults", body, "vault-before-policy")
    problem = assert_problem(refused, 409, "no-active-policy")
    assert "no active policy" in problem["detail"]
    assert "shardvault policy apply" in problem["detail"]
    assert relays.asked == []
    assert count_rows(platform, Vault, VaultKey) == 0
