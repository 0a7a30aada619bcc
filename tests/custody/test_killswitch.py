"""The kill switch: a disabled, deleted or policy-denied key stops every unlock.

Tested on the project's stub KMS because moto 5.2.5 does not enforce key state or key
policies (a disabled key still decrypts there; see ../shared/notes/ENVIRONMENT.md). The
stub raises what the ``aws-kms`` backend maps AWS's DisabledException,
KMSInvalidStateException and AccessDeniedException to.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from shardvault.custody.envelope import ShareAddress, ShareSlot
from shardvault.custody.errors import KeyDisabledError
from shardvault.custody.secret import SecretBytes
from shardvault.custody.shares import ShareCustody
from shardvault.custody.sharestore.local import LocalShareStore
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
