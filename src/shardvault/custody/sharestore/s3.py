"""A share store in an S3-compatible bucket (boto3).

Layout: ``<prefix><workspace>/<vault>/<key_id>/<party_id>/r<revision>.blob``, one
immutable object per revision. A write lists the record's revisions, checks the
writer's expected revision, and creates the next object with a conditional
``PutObject`` carrying ``If-None-Match: *`` (S3 conditional writes, 2024): if another
writer created that revision first, S3 answers 412 PreconditionFailed (or 409
ConditionalRequestConflict while a concurrent write is in flight) and the write fails
with :class:`ConflictError`. A single ``PutObject`` is atomic in S3, so an object is
either wholly there or absent; the revisions never change once written.

Tested against moto 5.2.5's server mode. Gaps of that emulator, by reading its source:
it evaluates ``If-None-Match`` by a lookup followed by a store without a lock, so it
does not guarantee that two *simultaneous* puts of the same new object cannot both
succeed (real S3 does; 8 concurrent creators x 20 rounds on moto here still gave one
winner each round). The tests show the sequential race (both writers read revision N,
one wins, the other is refused). ``If-Match`` on PutObject also works in moto but is not
needed by this design, which never overwrites an object.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shardvault.custody.envelope import ShareAddress
from shardvault.custody.errors import (
    ConflictError,
    RecordNotFoundError,
    StoreError,
    StoreUnavailableError,
)
from shardvault.custody.sharestore.base import (
    MAX_REVISION,
    ShareStore,
    StoredRecord,
    parse_revision_name,
    revision_name,
)


def _code(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return str(error.get("Code", ""))


class S3ShareStore(ShareStore):
    """Versioned share blobs in an S3 bucket.

    ``client`` is a boto3 S3 client (its endpoint, region and credentials come from the
    configuration); ``prefix`` is prepended to every object key.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "shares/") -> None:
        self._s3 = client
        self._bucket = bucket
        self._prefix = prefix

    def _dir(self, address: ShareAddress) -> str:
        a = address
        return f"{self._prefix}{a.workspace}/{a.vault}/{a.key_id}/{a.party_id}/"

    def _unavailable(self, what: str, exc: Exception) -> StoreUnavailableError:
        kind = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        return StoreUnavailableError(f"S3 bucket {self._bucket}: cannot {what} ({kind})")

    def _list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        try:
            paginator = self._s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable(f"list {prefix}", exc) from None
        return keys

    def revisions(self, address: ShareAddress) -> list[int]:
        prefix = self._dir(address)
        found = []
        for key in self._list(prefix):
            rest = key[len(prefix) :]
            if "/" in rest:
                continue
            revision = parse_revision_name(rest)
            if revision is not None:
                found.append(revision)
        return sorted(found)

    def read(self, address: ShareAddress, revision: int | None = None) -> StoredRecord:
        if revision is None:
            revision = self.latest_revision(address)
            if revision == 0:
                raise RecordNotFoundError(f"no share record at {address}")
        key = self._dir(address) + revision_name(revision)
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
            blob = response["Body"].read()
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                raise RecordNotFoundError(f"no revision {revision} at {address}") from None
            raise self._unavailable(f"read {address}", exc) from None
        except BotoCoreError as exc:
            raise self._unavailable(f"read {address}", exc) from None
        return StoredRecord(address, revision, bytes(blob))

    def write(self, address: ShareAddress, blob: bytes, expected_revision: int) -> int:
        current = self.latest_revision(address)
        if current != expected_revision:
            raise ConflictError(
                f"{address} is at revision {current}, the writer expected {expected_revision}"
            )
        new = current + 1
        if new > MAX_REVISION:
            raise StoreError(f"{address} has no revision numbers left")
        key = self._dir(address) + revision_name(new)
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=blob,
                IfNoneMatch="*",
                ContentType="application/octet-stream",
            )
        except ClientError as exc:
            if _code(exc) in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                raise ConflictError(
                    f"{address}: another writer created revision {new} first"
                ) from None
            raise self._unavailable(f"write {address}", exc) from None
        except BotoCoreError as exc:
            raise self._unavailable(f"write {address}", exc) from None
        return new

    def delete_revision(self, address: ShareAddress, revision: int) -> None:
        if revision >= self.latest_revision(address):
            raise StoreError(f"refusing to delete the newest revision of {address}")
        if revision not in self.revisions(address):
            raise RecordNotFoundError(f"no revision {revision} at {address}")
        try:
            self._s3.delete_object(
                Bucket=self._bucket, Key=self._dir(address) + revision_name(revision)
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable(f"remove a revision of {address}", exc) from None

    def addresses(self) -> list[ShareAddress]:
        seen: dict[ShareAddress, None] = {}
        for key in self._list(self._prefix):
            parts = key[len(self._prefix) :].split("/")
            if len(parts) != 5 or parse_revision_name(parts[4]) is None:
                continue
            try:
                seen[ShareAddress(*parts[:4])] = None
            except ValueError:
                continue
        return list(seen)
