"""No share in clear anywhere: every byte written during a full custody workout is
searched for every plaintext share (raw, hex and base64).

Searched: every file under the test's directory (share store, local keyring, backup
bundle), the SoftHSM2 token directory, every object of the S3 bucket on the moto
server, every log record captured at DEBUG level (all loggers, boto included), the
repr/str of the objects handed out and the messages of the errors raised. The custody
layer writes no database; the store layer's own test covers its tables.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
from pathlib import Path

import pytest

from shardvault.custody.backup import export_party, generate_recovery_key, restore_bundle
from shardvault.custody.envelope import ShareAddress, ShareSlot
from shardvault.custody.errors import CustodyError
from shardvault.custody.secret import SecretBytes
from shardvault.custody.shares import ShareCustody
from shardvault.custody.sharestore.local import LocalShareStore
from shardvault.custody.sharestore.s3 import S3ShareStore
from tests.custody.conftest import BackendHarness, boto_client


def _forms(share: bytes) -> list[bytes]:
    return [
        share,
        share.hex().encode(),
        share.hex().upper().encode(),
        base64.b64encode(share),
        base64.urlsafe_b64encode(share).rstrip(b"="),
    ]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_no_plaintext_share_is_ever_written(
    harness: BackendHarness,
    tmp_path: Path,
    moto_server: str,
    softhsm: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    s3 = boto_client("s3", moto_server)
    bucket = f"np-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=bucket)
    stores = [LocalShareStore(tmp_path / "store"), S3ShareStore(s3, bucket)]
    shares = {
        ShareAddress("ws1", "vault-a", "key-1", f"party-{i}"): secrets.token_bytes(48)
        for i in range(3)
    }
    seen_text: list[str] = []
    recovery = generate_recovery_key()
    for store in stores:
        custody = ShareCustody(harness.backend, store)
        for address, share in shares.items():
            custody.store_share(ShareSlot(address, 1), SecretBytes(share), 0)
        new_kek = harness.backend.create_key()
        custody.rotate_all(target_kek_id=new_kek)
        for address, share in shares.items():
            with custody.load_share(address) as opened:
                assert opened.share.equals(share)
                seen_text += [repr(opened), str(opened), f"{opened.share}"]
        # A failing open (blob of another slot) must not leak either.
        first, second = list(shares)[:2]
        _, other_blob = custody.load_blob(second)
        try:
            custody.import_blob(first, other_blob, custody.store.latest_revision(first))
        except CustodyError as exc:
            seen_text.append(str(exc))
        bundle = export_party(custody, "ws1", "party-1", recovery.public_key())
        (tmp_path / f"bundle-{type(store).__name__}.svbk").write_bytes(bundle)
        restore_bundle(custody, bundle, recovery)
        for address in shares:
            store.prune(address, keep=1)

    written = _files(tmp_path)
    token_dir = Path(os.environ["SOFTHSM2_CONF"]).parent
    written.update(_files(token_dir))
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            written[f"s3://{bucket}/{obj['Key']}"] = body
    logs = caplog.text.encode() + b"\n".join(repr(r.__dict__).encode() for r in caplog.records)
    written["logs"] = logs
    written["repr-and-errors"] = "\n".join(seen_text).encode()
    assert len(written) > 10
    assert any(k.startswith("s3://") for k in written)
    for address, share in shares.items():
        for form in _forms(share):
            for where, data in written.items():
                assert form not in data, f"share of {address} found in {where}"


def test_the_search_finds_a_planted_leak(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Control: the same search does find a share that was written or logged."""
    caplog.set_level(logging.DEBUG)
    share = secrets.token_bytes(48)
    (tmp_path / "leak").write_bytes(b"prefix" + base64.b64encode(share) + b"suffix")
    logging.getLogger("shardvault.test").debug("oops %s", share.hex())
    # Where the share was found; a place counts once however many of its forms match (the
    # URL-safe base64 equals the standard one when the share has no '+' or '/').
    places = {
        where
        for where, data in {**_files(tmp_path), "logs": caplog.text.encode()}.items()
        for form in _forms(share)
        if form in data
    }
    assert len(places) == 2


def test_kms_data_keys_stay_out_of_debug_logs(
    moto_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    """botocore logs request and response bodies at DEBUG (an Encrypt's Plaintext, a
    GenerateDataKey's Plaintext); the aws-kms backend redacts them."""
    from shardvault.custody.backends.aws_kms import AwsKmsBackend

    caplog.set_level(logging.DEBUG)
    backend = AwsKmsBackend(boto_client("kms", moto_server), "unset")
    backend.use_key(backend.create_key())
    data_key, wrapped = backend.generate_data_key({"a": "b"})
    given = SecretBytes(secrets.token_bytes(32))
    backend.wrap(given, {"a": "b"})
    backend.unwrap(wrapped, {"a": "b"})
    logs = caplog.text.encode()
    assert b"redacted by shardvault" in logs
    for key in (data_key.reveal(), given.reveal()):
        for form in _forms(key):
            assert form not in logs
