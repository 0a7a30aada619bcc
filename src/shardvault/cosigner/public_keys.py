"""The public part of every key this co-signer holds a share of, signed by the node.

An address attestation (:mod:`.attest`) needs only a key's public material: the group's
root public key, its BIP32 chain code and the thresholds. Opening the share for that
would decrypt a secret (and, in ``attested`` unlock mode, ask the release service) for
a request anyone who reaches the relay can send; so when a key generation ends, and
the first time a share of an earlier release is opened for any reason, the node writes
its public part to ``public_keys.jsonl`` in the data directory (0600), one canonical JSON
line (sorted keys, no spaces, ASCII) per key::

    format       "shardvault.cosigner.public-key/v1"
    vault        the vault id of the request that generated the key
    key_id       its key id
    scheme       "ecdsa-secp256k1", "eddsa-ed25519", "schnorr-bip340" (a FROST suite name)
    public_key   hex of the root key in the chain's encoding (33-byte compressed
                 secp256k1 for ECDSA, 32 bytes for Ed25519, 32-byte x-only for BIP340)
    chain_code   hex of the BIP32 chain code
    min_signers  the key's threshold
    max_signers  how many parties hold a share
    signature    Ed25519 by the node's identity key (RFC 8032) over
                 PUBLIC_KEY_DOMAIN || the canonical JSON of every other field

Opening verifies every line, so an edited or inserted line refuses the start; a removed
line only makes the node open that share once more, to write it again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shardvault.cosigner.config import append_private_line, signed_lines
from shardvault.cosigner.errors import ConfigurationError
from shardvault.crypto.channel import PartyIdentity, PublicIdentity
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.frost import KeyPackage
from shardvault.policy.bundle import canonical_json

log = logging.getLogger("shardvault.cosigner")

PUBLIC_KEYS_FILE = "public_keys.jsonl"
"""The file's name in the data directory."""

PUBLIC_KEY_FORMAT = "shardvault.cosigner.public-key/v1"
"""The ``format`` of every line."""

PUBLIC_KEY_DOMAIN = b"shardvault/cosigner/public-key/v1\x00"
"""Prefix of the bytes a line's signature covers."""

_FIELDS = frozenset(
    {
        "format",
        "vault",
        "key_id",
        "scheme",
        "public_key",
        "chain_code",
        "min_signers",
        "max_signers",
        "signature",
    }
)


@dataclass(frozen=True, slots=True)
class PublicKeyRecord:
    """The public part of one key (module docstring)."""

    vault: str
    key_id: str
    scheme: str
    public_key: bytes
    chain_code: bytes
    min_signers: int
    max_signers: int

    @classmethod
    def of_key(cls, vault: str, key_id: str, key: KeyPackage | KeyShare) -> PublicKeyRecord:
        """The public part of a FROST key package or a CGGMP21 key share."""
        if isinstance(key, KeyPackage):
            public = key.public
            return cls(
                vault,
                key_id,
                public.suite.name,
                public.public_key_bytes,
                public.chain_code,
                public.min_signers,
                public.max_signers,
            )
        return cls(
            vault,
            key_id,
            "ecdsa-secp256k1",
            key.public_key.to_bytes(),
            key.chain_code,
            key.min_signers,
            key.max_signers,
        )

    def body(self) -> dict[str, object]:
        """The fields the signature covers."""
        return {
            "format": PUBLIC_KEY_FORMAT,
            "vault": self.vault,
            "key_id": self.key_id,
            "scheme": self.scheme,
            "public_key": self.public_key.hex(),
            "chain_code": self.chain_code.hex(),
            "min_signers": self.min_signers,
            "max_signers": self.max_signers,
        }


def _record(raw: object, where: str) -> tuple[PublicKeyRecord, Mapping[str, object], bytes]:
    """Parse one line's document.

    Raises:
        ConfigurationError: a field missing, unknown or of the wrong type, naming the line.
    """
    if not isinstance(raw, dict) or set(raw) != _FIELDS or raw["format"] != PUBLIC_KEY_FORMAT:
        raise ConfigurationError(f"{where}: not a public key record")
    texts = ("vault", "key_id", "scheme", "public_key", "chain_code", "signature")
    numbers = ("min_signers", "max_signers")
    if not all(isinstance(raw[n], str) for n in texts) or not all(
        isinstance(raw[n], int) and not isinstance(raw[n], bool) for n in numbers
    ):
        raise ConfigurationError(f"{where}: wrongly typed fields")
    try:
        record = PublicKeyRecord(
            raw["vault"],
            raw["key_id"],
            raw["scheme"],
            bytes.fromhex(raw["public_key"]),
            bytes.fromhex(raw["chain_code"]),
            raw["min_signers"],
            raw["max_signers"],
        )
        return record, record.body(), bytes.fromhex(raw["signature"])
    except ValueError:
        raise ConfigurationError(f"{where}: keys and signature must be hex") from None


class PublicKeys:
    """The public key records of this node, in memory and in ``public_keys.jsonl``.

    Security: holds no secret; the identity that signs a new line is passed in.
    """

    def __init__(self, path: Path, records: dict[tuple[str, str], PublicKeyRecord]) -> None:
        self.path = path
        self._records = records

    def __repr__(self) -> str:
        return f"PublicKeys({self.path}, {len(self._records)} keys)"

    @classmethod
    def open(cls, data_dir: Path, identity: PublicIdentity) -> PublicKeys:
        """Read and verify the records of ``data_dir`` (none yet: an empty set).

        Raises:
            ConfigurationError: a file group or others can access, a line that is not a
                record or not in canonical form, a signature that does not verify under
                ``identity``, or two different records of one key, naming the line.
        """
        path = Path(data_dir) / PUBLIC_KEYS_FILE
        records: dict[tuple[str, str], PublicKeyRecord] = {}
        if not path.exists():
            return cls(path, records)
        for where, _, record in signed_lines(path, identity, PUBLIC_KEY_DOMAIN, _record, "file"):
            known = records.setdefault((record.vault, record.key_id), record)
            if known != record:
                raise ConfigurationError(f"{where}: a second, different record of one key")
        return cls(path, records)

    def get(self, vault: str, key_id: str) -> PublicKeyRecord | None:
        """The record of ``key_id`` in ``vault``, if one was written."""
        return self._records.get((vault, key_id))

    def remember(
        self, identity: PartyIdentity, vault: str, key_id: str, key: KeyPackage | KeyShare
    ) -> None:
        """Sign and append the public part of ``key`` unless it has a record already
        (flushed to disk before this returns). A write that fails is logged and left
        out, so the next opening of the share tries again; the key itself is unharmed."""
        if (vault, key_id) in self._records:
            return
        record = PublicKeyRecord.of_key(vault, key_id, key)
        body = record.body()
        signature = identity.sign(PUBLIC_KEY_DOMAIN + canonical_json(body))
        line = canonical_json({**body, "signature": signature.hex()}).decode()
        try:
            append_private_line(self.path, line)
        except OSError as exc:
            log.warning("public key record not written", extra={"error": type(exc).__name__})
            return
        self._records[(vault, key_id)] = record
