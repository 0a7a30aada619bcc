"""The initiators section through the API: proposing a bundle that lists the keys whose
signed requests name a transfer's initiator, and typed refusals of policies that would
decide on unsigned inputs (docs/api.md; docs/policy.md "Signed inputs")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from sqlalchemy import select

from shardvault.cli.main import cli
from shardvault.policy import parse_bundle
from shardvault.sdk import ApiKeyCredentials, ShardvaultClient, generate_key_pair
from shardvault.sdk.custody import sign_bundle
from shardvault.sdk.errors import ApiError
from shardvault.service.platform import Platform
from shardvault.store.models_vaults import PolicyVersion
from tests.api.support import Tenant
from tests.cosigner.initiator_support import ALICE, INITIATORS

ADMIN = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
"""A TEST-ONLY admin key."""


def _admins() -> dict[str, object]:
    public = ADMIN.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    return {"quorum": 1, "members": [{"id": "admin", "algorithm": "ed25519", "public_key": public}]}


def _policy(version: int = 1) -> dict[str, object]:
    return {
        "format": "shardvault.policy/v1",
        "version": version,
        "reference_currency": "USD",
        "groups": {"traders": ["sam@acme.example"]},
        "rules": [
            {"name": "traders", "when": {"initiator": {"groups": ["traders"]}}, "action": "allow"}
        ],
    }


def _member(client: ShardvaultClient, email: str, role: str) -> ApiKeyCredentials:
    private_pem, public_pem = generate_key_pair("EdDSA")
    user = client.create_user(name=email.split("@")[0], email=email, role=role)  # type: ignore[arg-type]
    key = client.create_api_key(user_id=user.id, name="key", public_key_pem=public_pem)
    return ApiKeyCredentials.from_pem(key.id, private_pem)


def test_a_rule_on_the_initiator_needs_initiator_keys(
    server_url: str, tenant: Tenant, platform: Platform
) -> None:
    with ShardvaultClient(server_url, tenant.owner) as owner:
        draft = owner.create_policy(document=_policy())
        with pytest.raises(ApiError) as refused:
            owner.propose_policy(draft.id, admins=_admins())
        assert refused.value.status == 400
        assert refused.value.slug == "policy-refused"
        assert "rule 'traders' depends on the initiator" in refused.value.detail
        with pytest.raises(ApiError) as both:
            owner.propose_policy(
                draft.id, admins=_admins(), initiators=INITIATORS, initiators_from_api_keys=True
            )
        assert both.value.status == 400
        malformed = {"members": [{"initiator": {"type": "robot", "id": "x"}, "keys": []}]}
        with pytest.raises(ApiError) as bad:
            owner.propose_policy(draft.id, admins=_admins(), initiators=malformed)
        assert bad.value.status == 400
        assert "expected user or api_key" in bad.value.detail
        # Nothing changed: the draft is still a draft.
        assert owner.get_policy(draft.id).status == "draft"
    with platform.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(PolicyVersion.bundle)) is None


def test_keys_from_the_server_list_who_may_create_transfers(
    server_url: str, tenant: Tenant
) -> None:
    with ShardvaultClient(server_url, tenant.owner) as owner:
        sam = _member(owner, "sam@acme.example", "signer")
        _member(owner, "carol@acme.example", "approver")
        draft = owner.create_policy(document=_policy())
        proposed = owner.propose_policy(draft.id, admins=_admins(), initiators_from_api_keys=True)
        listed = parse_bundle(proposed.bundle).initiators
        assert listed is not None
        # The owner and the signer may create transfers; the approver may not.
        keys = {line.split(": API key ")[1].split()[0]: line for line in listed.listing()}
        assert set(keys) == {tenant.owner.api_key_id, sam.api_key_id}
        assert keys[sam.api_key_id].startswith("user sam@acme.example: ")
        assert proposed.signing_message is not None
        owner.sign_policy(
            draft.id, signer="admin", signature=sign_bundle(ADMIN, proposed.signing_message)
        )
        owner.activate_policy(draft.id)
        # The next version carries the same section unless told otherwise.
        second = owner.create_policy(document=_policy(2))
        carried = parse_bundle(owner.propose_policy(second.id).bundle)
        assert carried.initiators == listed
        third = owner.create_policy(document=_policy(2))
        given = parse_bundle(owner.propose_policy(third.id, initiators=INITIATORS).bundle)
        assert given.initiators is not None
        assert given.initiators.for_key(ALICE.api_key_id) is not None


def _apply(server_url: str, tenant: Tenant, tmp_path: Path, *extra: str, answer: str = "") -> Any:
    """``shardvault policy apply`` of the traders policy, signed by the TEST-ONLY admin."""
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(_policy()))
    admin = tmp_path / "admin.pem"
    admin.write_bytes(ADMIN.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    owner = tmp_path / "owner.pem"
    owner.write_bytes(
        tenant.owner.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    args = ["policy", "apply", str(policy), "--admin-key", f"admin={admin}", *extra, "--json"]
    api = ["--url", server_url, "--api-key", tenant.owner.api_key_id, "--key-file", str(owner)]
    return CliRunner().invoke(cli, [*args, *api], input=answer, catch_exceptions=False)


def test_policy_apply_shows_the_initiator_keys_and_signs_only_when_confirmed(
    server_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    refused = _apply(server_url, tenant, tmp_path, "--initiators-from-keys", answer="n\n")
    assert refused.exit_code == 1
    assert f"user owner@acme.example: API key {tenant.owner.api_key_id} ed25519" in refused.stderr
    assert "not signing" in refused.stderr
    with ShardvaultClient(server_url, tenant.owner) as owner:
        assert [p.status for p in owner.list_policies().data] == ["proposed"]
    applied = _apply(server_url, tenant, tmp_path, "--initiators-from-keys", "--yes")
    assert applied.exit_code == 0, applied.output
    assert tenant.owner.api_key_id in applied.stderr  # shown even with --yes
    assert json.loads(applied.stdout)["status"] == "active"


def test_policy_apply_signs_a_section_from_a_file_only_if_the_bundle_carries_it(
    server_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    section = tmp_path / "initiators.json"
    section.write_text(json.dumps(INITIATORS))
    applied = _apply(server_url, tenant, tmp_path, "--initiators", str(section))
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.stdout)["status"] == "active"
    both = _apply(
        server_url, tenant, tmp_path, "--initiators", str(section), "--initiators-from-keys"
    )
    assert both.exit_code == 1
    assert "not both" in both.stderr
