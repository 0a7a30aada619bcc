"""Share stores: versioned, atomic, compare-and-swap storage of encrypted share blobs."""

from shardvault.custody.sharestore.base import ShareStore, StoredRecord
from shardvault.custody.sharestore.local import LocalShareStore
from shardvault.custody.sharestore.s3 import S3ShareStore

__all__ = ["LocalShareStore", "S3ShareStore", "ShareStore", "StoredRecord"]
