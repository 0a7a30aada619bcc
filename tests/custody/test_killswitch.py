"""The kill switch: a disabled, deleted or policy-denied key stops every unlock.

moto 5.2.5 does not enforce key state or key policies (a disabled key still decrypts
there; see docs/environment.md). So the kill switch is tested twice: on the
project's stub KMS (disabled, pending deletion, policy deny), and on the ``aws-kms``
backend over HTTP against moto launched with the AWS key-state rule added
(moto_keystate.py; key policies remain unenforced there).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from shardvault.custody.backends.aws_kms import AwsKmsBackend
from shardvault.custody.envelope import ShareAddress, ShareSlot
from shardvault.custody.errors import KeyDisabledError
from shardvault.custody.secret import SecretBytes
from shardvault.custody.shares import ShareCustody
from shardvault.custody.sharestore.local import LocalShareStore
from tests.custody.conftest import boto_client
from tests.custody.stub_kms import StubKmsBackend, StubKmsService

ADDRESS = ShareAddress("ws1", "vault-a", "key-1", "party-1")


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("switch", "restore"),
    [
        (lambda k: setattr(k, "state", "Disabled"), lambda k: setattr(k, "state", "Enabled")),
        (
            lambda k: setattr(k, "state", "PendingDeletion"),
            lambda k: setattr(k, "state", "Enabled"),
        ),
        (lambda k: setattr(k, "policy_allows", False), lambda k: setattr(k, "policy_allows", True)),
    ],
    ids=["disabled", "pending-deletion", "policy-deny"],
)
def test_kill_switch_blocks_unlock_and_keeps_the_store(
    tmp_path: Path, switch: object, restore: object
) -> None:
    service = StubKmsService()
    backend = StubKmsBackend(service, service.create())
    custody = ShareCustody(backend, LocalShareStore(tmp_path))
    share = secrets.token_bytes(32)
    custody.store_share(ShareSlot(ADDRESS, 1), SecretBytes(share), 0)
    target = backend.create_key()
    before = _snapshot(tmp_path)

    key = service.keys[backend.kek_id]
    switch(key)  # type: ignore[operator]
    with pytest.raises(KeyDisabledError):
        custody.load_share(ADDRESS)
    with pytest.raises(KeyDisabledError):
        custody.rotate(ADDRESS, target_kek_id=target)
    with pytest.raises(KeyDisabledError):
        custody.store_share(ShareSlot(ADDRESS, 2), SecretBytes(share), 1)
    assert _snapshot(tmp_path) == before

    restore(key)  # type: ignore[operator]
    with custody.load_share(ADDRESS) as opened:
        assert opened.share.equals(share)


def test_disabling_the_rotation_target_leaves_the_old_revision(tmp_path: Path) -> None:
    service = StubKmsService()
    backend = StubKmsBackend(service, service.create())
    custody = ShareCustody(backend, LocalShareStore(tmp_path))
    custody.store_share(ShareSlot(ADDRESS, 1), SecretBytes(b"k" * 32), 0)
    target = backend.create_key()
    service.keys[target].state = "Disabled"
    with pytest.raises(KeyDisabledError):
        custody.rotate(ADDRESS, target_kek_id=target)
    assert custody.store.revisions(ADDRESS) == [1]
    with custody.load_share(ADDRESS) as opened:
        assert opened.share.equals(b"k" * 32)


def _raw_id(arn: str) -> str:
    # moto's key-management handlers want the bare key id, not the ARN.
    return arn.rsplit("/", 1)[-1]


def test_kill_switch_on_kms_over_http(moto_server: str, tmp_path: Path) -> None:
    """The aws-kms backend against moto with AWS's key-state rule (moto_keystate.py):
    DisableKey and ScheduleKeyDeletion stop every unlock with KeyDisabledError."""
    kms = boto_client("kms", moto_server)
    backend = AwsKmsBackend(kms, "unset")
    backend.use_key(backend.create_key())
    custody = ShareCustody(backend, LocalShareStore(tmp_path))
    custody.store_share(ShareSlot(ADDRESS, 1), SecretBytes(b"q" * 32), 0)
    before = _snapshot(tmp_path)

    kms.disable_key(KeyId=_raw_id(backend.kek_id))
    with pytest.raises(KeyDisabledError):
        custody.load_share(ADDRESS)
    with pytest.raises(KeyDisabledError):
        custody.store_share(ShareSlot(ADDRESS, 2), SecretBytes(b"q" * 32), 1)
    kms.enable_key(KeyId=_raw_id(backend.kek_id))
    with custody.load_share(ADDRESS) as opened:
        assert opened.share.equals(b"q" * 32)

    target = backend.create_key()
    kms.schedule_key_deletion(KeyId=_raw_id(target), PendingWindowInDays=7)
    with pytest.raises(KeyDisabledError):
        custody.rotate(ADDRESS, target_kek_id=target)
    kms.schedule_key_deletion(KeyId=_raw_id(backend.kek_id), PendingWindowInDays=7)
    with pytest.raises(KeyDisabledError):
        custody.load_share(ADDRESS)
    assert _snapshot(tmp_path) == before
