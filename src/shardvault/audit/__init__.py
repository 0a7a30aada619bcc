"""The hash-chained audit log, written in the same transaction as each change.

:class:`AuditLog` appends (inside the caller's unit of work); :func:`verify_chain` checks a
chain end to end and raises :class:`AuditChainBroken` naming where it was altered. The
encoding is in :mod:`shardvault.audit.encoding`.
"""

from shardvault.audit.encoding import GENESIS_HASH, JsonValue, canonical_json
from shardvault.audit.errors import (
    AuditChainBroken,
    AuditDetailsError,
    AuditError,
    AuditKeyError,
    AuditSignatureInvalid,
)
from shardvault.audit.keys import AuditKeyring, AuditSigner, key_id_of
from shardvault.audit.log import DEFAULT_CHECKPOINT_INTERVAL, Actor, AuditLog, chain_of
from shardvault.audit.verify import ChainReport, all_chains, verify_chain

__all__ = [
    "DEFAULT_CHECKPOINT_INTERVAL",
    "GENESIS_HASH",
    "Actor",
    "AuditChainBroken",
    "AuditDetailsError",
    "AuditError",
    "AuditKeyError",
    "AuditKeyring",
    "AuditLog",
    "AuditSignatureInvalid",
    "AuditSigner",
    "ChainReport",
    "JsonValue",
    "all_chains",
    "canonical_json",
    "chain_of",
    "key_id_of",
    "verify_chain",
]
