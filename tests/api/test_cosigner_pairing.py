"""Pairing remote co-signers through the API (docs/cosigner.md, "Pairing").

An admin makes a one-time token for a party id; the co-signer presents it with its
identity, signed by its identity key; the next policy bundle carries the directory of the
paired co-signers, which the admins sign after comparing fingerprints. Every refusal is a
401/400/409 problem, changes nothing, and lands in the workspace's audit chain.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select

from shardvault.cli.main import cli
from shardvault.cosigner.pairing import pairing_document
from shardvault.crypto.channel import PartyIdentity
from shardvault.crypto.rng import system_random
from shardvault.policy import parse_bundle
from shardvault.sdk import ShardvaultClient
from shardvault.sdk.cosigners import submit_pairing
from shardvault.sdk.custody import sign_bundle
from shardvault.sdk.errors import ApiError
from shardvault.service.platform import Platform
from shardvault.store.models import AuditEvent
from shardvault.store.models_cosigners import PairedCosigner
from tests.api.support import Tenant

POLICY = {
    "format": "shardvault.policy/v1",
    "version": 1,
    "reference_currency": "USD",
    "rules": [{"name": "all", "action": "allow"}],
}


def _raw(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _pair(url: str, identity: PartyIdentity, workspace: str, token: str, **changes):
    document, signature = pairing_document(
        identity,
        workspace=workspace,
        token=token,
        timestamp=int(time.time()),
        version="0.1.0",
        label=f"host-{identity.party}",
        details={"unlock": "passphrase"},
    )
    document.update(changes.pop("document", {}))
    if changes.pop("resign", False):
        from shardvault.cosigner.pairing import pairing_message

        signature = identity.sign(pairing_message(document)).hex()
    return submit_pairing(url, document, changes.pop("signature", signature))


def _audit(platform: Platform, workspace_id: str, action: str) -> list[AuditEvent]:
    with platform.unit_of_work(read_only=True) as uow:
        return list(
            uow.session.scalars(
                select(AuditEvent).where(
                    AuditEvent.workspace_id == workspace_id, AuditEvent.action == action
                )
            )
        )


def _paired(platform: Platform) -> list[PairedCosigner]:
    with platform.unit_of_work(read_only=True) as uow:
        return list(uow.session.scalars(select(PairedCosigner)))


def test_pair_three_then_the_next_bundle_carries_their_directory(
    server_url: str, tenant: Tenant, platform: Platform
) -> None:
    identities = {p: PartyIdentity.generate(p, system_random) for p in (1, 2, 3)}
    admin = Ed25519PrivateKey.generate()
    with ShardvaultClient(server_url, tenant.owner) as owner:
        for party, identity in identities.items():
            token = owner.create_pairing_token(party=party)
            assert token.token.startswith("svpair_")
            answer = _pair(server_url, identity, tenant.workspace_id, token.token)
            assert answer == {
                "workspace_id": tenant.workspace_id,
                "party": party,
                "fingerprint": identity.public.fingerprint(),
            }
        listed = owner.list_cosigners().data
        assert [(c.party, c.fingerprint, c.in_signed_directory) for c in listed] == [
            (p, i.public.fingerprint(), False) for p, i in identities.items()
        ]
        draft = owner.create_policy(document=POLICY)
        proposed = owner.propose_policy(
            draft.id,
            admins={
                "quorum": 1,
                "members": [{"id": "ada", "algorithm": "ed25519", "public_key": _raw(admin)}],
            },
        )
        bundle = parse_bundle(proposed.bundle)
        assert bundle.cosigners is not None
        # What the admins compare with the fingerprints read on each co-signer's host.
        assert bundle.cosigners.fingerprints() == {
            p: i.public.fingerprint() for p, i in identities.items()
        }
        assert proposed.signing_message is not None
        owner.sign_policy(
            draft.id, signer="ada", signature=sign_bundle(admin, proposed.signing_message)
        )
        owner.activate_policy(draft.id)
        assert all(c.in_signed_directory for c in owner.list_cosigners().data)
        # A directory of a chosen subset, for the next version.
        second = owner.create_policy(document=dict(POLICY, version=2))
        subset = parse_bundle(owner.propose_policy(second.id, cosigners=[1, 3]).bundle)
        assert subset.cosigners is not None
        assert subset.cosigners.parties == (1, 3)
        third = owner.create_policy(document=dict(POLICY, version=2))
        with pytest.raises(ApiError) as missing:
            owner.propose_policy(third.id, cosigners=[1, 4])
        assert missing.value.status == 400
        assert "[4] are not paired" in missing.value.detail
    paired_events = _audit(platform, tenant.workspace_id, "cosigner.pair")
    assert len(paired_events) == 3
    assert len(_audit(platform, tenant.workspace_id, "cosigner.pairing_token")) == 3


def test_refused_pairings_name_their_reason_and_change_nothing(
    server_url: str, tenant: Tenant, other_tenant: Tenant, platform: Platform
) -> None:
    identity = PartyIdentity.generate(2, system_random)
    stranger = PartyIdentity.generate(2, system_random)
    with ShardvaultClient(server_url, tenant.owner) as owner:
        token = owner.create_pairing_token(party=2).token
        cases = [
            ({"token": "svpair_" + "x" * 40}, "unknown pairing token"),
            ({"document": {"workspace": other_tenant.workspace_id}, "resign": True}, "another"),
            ({"document": {"timestamp": int(time.time()) - 3600}, "resign": True}, "timestamp"),
            ({"signature": stranger.sign(b"anything").hex()}, "does not verify"),
            ({"document": {"label": "changed after signing"}}, "does not verify"),
        ]
        for changes, reason in cases:
            token_used = changes.pop("token", token)
            with pytest.raises(ApiError) as refused:
                _pair(server_url, identity, tenant.workspace_id, token_used, **changes)
            assert refused.value.status == 401, changes
            assert reason in refused.value.detail
        assert _paired(platform) == []
        # A token for party 2 cannot pair party 3.
        with pytest.raises(ApiError) as wrong_party:
            _pair(server_url, PartyIdentity.generate(3, system_random), tenant.workspace_id, token)
        assert "for co-signer 2" in wrong_party.value.detail
        first = _pair(server_url, identity, tenant.workspace_id, token)
        # The same co-signer again (its answer was lost): the same answer; another
        # identity with the used token: refused.
        assert _pair(server_url, identity, tenant.workspace_id, token) == first
        assert len(_paired(platform)) == 1
        with pytest.raises(ApiError) as reused:
            _pair(server_url, PartyIdentity.generate(2, system_random), tenant.workspace_id, token)
        assert "already used" in reused.value.detail
        # A paired party needs unpairing before a new token.
        with pytest.raises(ApiError) as conflict:
            owner.create_pairing_token(party=2)
        assert conflict.value.status == 409
        assert owner.unpair_cosigner(2).unpaired
        assert owner.list_cosigners().data == []
        with pytest.raises(ApiError) as malformed:
            submit_pairing(server_url, {"format": "nope"}, "00" * 64)
        assert malformed.value.status == 400
    assert [e.outcome for e in _audit(platform, tenant.workspace_id, "cosigner.pair")] == [
        "success"
    ]
    # Refusals land in the token's workspace chain (an unknown token's in the system's).
    refused = [
        e
        for e in _audit(platform, tenant.workspace_id, "request.refused")
        if '"/v1/cosigners/pair"' in e.details
    ]
    assert len(refused) == 6
    assert all("pairing refused" in e.details for e in refused)
    assert len(_audit(platform, tenant.workspace_id, "cosigner.unpair")) == 1


def test_only_policy_managers_make_tokens_and_tenants_are_isolated(
    server_url: str, tenant: Tenant, other_tenant: Tenant
) -> None:
    with ShardvaultClient(server_url, tenant.owner) as owner:
        token = owner.create_pairing_token(party=1).token
        _pair(server_url, PartyIdentity.generate(1, system_random), tenant.workspace_id, token)
    with ShardvaultClient(server_url, other_tenant.owner) as other:
        assert other.list_cosigners().data == []
        with pytest.raises(ApiError) as missing:
            other.unpair_cosigner(1)
        assert missing.value.status == 404


def test_policy_apply_signs_a_directory_only_as_the_operators_read_it(
    server_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    """``shardvault policy apply`` refuses to sign a directory unless each co-signer's
    fingerprint is the one given (read on its own host), and signs it when it is."""
    identities = {p: PartyIdentity.generate(p, system_random) for p in (1, 2)}
    with ShardvaultClient(server_url, tenant.owner) as owner:
        for party, identity in identities.items():
            token = owner.create_pairing_token(party=party).token
            _pair(server_url, identity, tenant.workspace_id, token)
    key_file = tmp_path / "owner.pem"
    key_file.write_bytes(
        tenant.owner.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    admin_file = tmp_path / "admin.pem"
    admin_file.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(POLICY))
    api = ["--url", server_url, "--api-key", tenant.owner.api_key_id, "--key-file", str(key_file)]
    base = ["policy", "apply", str(policy), "--admin-key", f"ada={admin_file}", *api, "--json"]
    right = [f"--expect-cosigner={p}={i.public.fingerprint()}" for p, i in identities.items()]
    wrong = [right[0], f"--expect-cosigner=2={identities[1].public.fingerprint()}"]
    runner = CliRunner()
    for expectations in ([], wrong):
        refused = runner.invoke(cli, [*base, *expectations])
        assert refused.exit_code == 1
        assert "not the one expected" in refused.output
        assert identities[2].public.fingerprint() in refused.output
    applied = runner.invoke(cli, [*base, *right])
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.stdout)["status"] == "active"
