"""The record of every transaction a co-signer signed (DESIGN.md invariant 11).

``signed.jsonl`` in the data directory holds one JSON line per signature this co-signer
started, oldest first. Each line is the canonical JSON (sorted keys, no spaces, ASCII)
of::

    format          "shardvault.cosigner.signed/v1"
    workspace_id    the intent's workspace id (metadata), or null
    transaction_id  the intent's transaction id (metadata), or null
    intent_digest   hex of the intent digest approvals were counted over, or null
    replay_key      what the chain spends once (checks.SigningTarget.replay_key), or null
    signer_key      hex of the public key that signs (the derived key, or the group key)
    payload_digest  hex of the payload's own digest
    signed_at       the co-signer's clock, Unix seconds
    initiator_request  hex digest of the initiator's own signed request when one
                    verified (:func:`.initiator.request_digest`); absent otherwise, so
                    the lines written before the field existed verify unchanged
    previous        hex of the previous line's hash (32 zero bytes for the first)
    signature       Ed25519 signature by the node's identity key (RFC 8032) over
                    RECORD_DOMAIN || the canonical JSON of every other field

and a line's hash is SHA-256(RECORD_DOMAIN || the line). An entry is appended, flushed
and fsynced *before* the signing session starts, so before any share of the signature
leaves the node: a crash can lose a signature, never the record of one. An entry whose
session then fails or times out still counts as signed; that errs on the safe side (the
transfer needs a new transaction id, or a replacement of the same replay key).

:meth:`SignedRecord.check` is the refusal rule (check ``replay``):

1. a request naming a transaction id is refused when that (workspace id, transaction
   id) was signed before under another replay key, or without one;
2. a request whose payload digest was signed before by the same key is refused unless
   both carry the same replay key (the same transaction signed again: a failover
   quorum, another input of the same PSBT). The same digest under another key is
   another transaction (another sender).

3. a request carrying an initiator's signed request (check ``initiator``) is refused
   when that signed request was recorded for another transaction: another (workspace
   id, transaction id), or, without ids, another replay key. One signed request makes
   one transaction.

So a fee bump or a cancel of the same nonce (same blockhash, same outpoints) may be
signed again; another nonce is refused. A raw digest has no replay key: it is recorded,
and refused only when the same digest comes again.

Opening verifies every line's signature and the hash chain, so an edited, reordered or
inserted line refuses the start. Removing lines from the end is not detected here (the
record is per co-signer; see docs/threat-model.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.exceptions import CryptoError as NaclCryptoError
from nacl.signing import VerifyKey

from shardvault.cosigner.config import append_private_line, check_private_file
from shardvault.cosigner.errors import ConfigurationError, RequestRefused
from shardvault.crypto.channel import PartyIdentity, PublicIdentity

RECORD_FILE = "signed.jsonl"
"""The record's file name in the data directory."""

RECORD_FORMAT = "shardvault.cosigner.signed/v1"
"""The ``format`` of every entry."""

RECORD_DOMAIN = b"shardvault/cosigner/signed-record/v1\x00"
"""Prefix of the bytes an entry's signature and hash cover."""

GENESIS = bytes(32)
"""The ``previous`` hash of the first entry."""


@dataclass(frozen=True, slots=True)
class SignedEntry:
    """One signature this co-signer started, as the record keeps it."""

    workspace_id: str | None
    transaction_id: str | None
    intent_digest: str | None
    replay_key: str | None
    signer_key: str
    payload_digest: str
    signed_at: int
    previous: str
    initiator_request: str | None = None

    def body(self) -> dict[str, object]:
        """The fields the signature covers (``initiator_request`` only when set)."""
        fields = asdict(self)
        if fields["initiator_request"] is None:
            del fields["initiator_request"]
        return {"format": RECORD_FORMAT, **fields}


def _canonical(document: Mapping[str, object]) -> bytes:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii")


def _entry(raw: object, where: str) -> tuple[SignedEntry, bytes]:
    """Parse one line's document into an entry and its signature.

    Raises:
        ConfigurationError: a field missing or of the wrong type, naming the line.
    """
    if not isinstance(raw, dict) or raw.get("format") != RECORD_FORMAT:
        raise ConfigurationError(f"{where}: not a record entry")
    optional = ("workspace_id", "transaction_id", "intent_digest", "replay_key")
    required = ("signer_key", "payload_digest", "signed_at", "previous")
    if set(raw) - {"initiator_request"} != {"format", "signature", *optional, *required}:
        raise ConfigurationError(f"{where}: unexpected or missing fields")
    initiator_request = raw.get("initiator_request")
    if "initiator_request" in raw and not isinstance(initiator_request, str):
        raise ConfigurationError(f"{where}: initiator_request must be a string")
    if any(raw[name] is not None and not isinstance(raw[name], str) for name in optional):
        raise ConfigurationError(f"{where}: ids, digests and keys must be strings or null")
    strings = ("signer_key", "payload_digest", "previous", "signature")
    if not all(isinstance(raw[name], str) for name in strings):
        raise ConfigurationError(f"{where}: {', '.join(strings)} must be strings")
    signed_at = raw["signed_at"]
    if not isinstance(signed_at, int) or isinstance(signed_at, bool):
        raise ConfigurationError(f"{where}: signed_at must be an integer")
    try:
        signature = bytes.fromhex(raw["signature"])
    except ValueError:
        raise ConfigurationError(f"{where}: signature is not hex") from None
    entry = SignedEntry(
        raw["workspace_id"],
        raw["transaction_id"],
        raw["intent_digest"],
        raw["replay_key"],
        raw["signer_key"],
        raw["payload_digest"],
        signed_at,
        raw["previous"],
        initiator_request,
    )
    return entry, signature


class SignedRecord:
    """The hash-chained record of what this co-signer signed, held in memory and
    appended to ``signed.jsonl``.

    Security: holds no secret; the identity that signs entries is passed in per append.
    """

    def __init__(self, path: Path, entries: list[SignedEntry], head: bytes) -> None:
        self.path = path
        self.entries = entries
        self._head = head

    def __repr__(self) -> str:
        return f"SignedRecord({self.path}, {len(self.entries)} entries)"

    @classmethod
    def open(cls, data_dir: Path, identity: PublicIdentity) -> SignedRecord:
        """Read and verify the record of ``data_dir``; a missing file is an empty record
        (a data directory of an earlier release).

        Raises:
            ConfigurationError: a file group or others can access, a line that is not an
                entry, a signature that does not verify under ``identity``, or a line
                whose ``previous`` is not the hash of the line before (an edited,
                removed, inserted or reordered entry), naming the line.
        """
        path = Path(data_dir) / RECORD_FILE
        if not path.exists():
            return cls(path, [], GENESIS)
        check_private_file(path)
        verify = VerifyKey(identity.signing_key)
        entries: list[SignedEntry] = []
        head = GENESIS
        try:
            lines = path.read_bytes().splitlines()
        except OSError as exc:
            raise ConfigurationError(f"{path} cannot be read: {exc}") from None
        for number, line in enumerate(lines, start=1):
            where = f"{path} line {number}"
            try:
                raw = json.loads(line)
            except ValueError:
                raise ConfigurationError(f"{where}: not JSON (the record was changed)") from None
            entry, signature = _entry(raw, where)
            if _canonical(raw) != line:
                raise ConfigurationError(f"{where}: not in canonical form (the record was changed)")
            try:
                verify.verify(RECORD_DOMAIN + _canonical(entry.body()), signature)
            except (BadSignatureError, NaclCryptoError, ValueError):
                raise ConfigurationError(
                    f"{where}: signature does not verify (the record was changed)"
                ) from None
            if entry.previous != head.hex():
                raise ConfigurationError(
                    f"{where}: does not follow the entry before it (the record was changed)"
                )
            entries.append(entry)
            head = hashlib.sha256(RECORD_DOMAIN + line).digest()
        return cls(path, entries, head)

    def check(
        self,
        ids: tuple[str, str] | None,
        replay_key: str | None,
        signer_key: bytes,
        payload_digest: bytes,
        *,
        initiator_request: str | None = None,
    ) -> None:
        """Refuse a second signature of one approval, or one signed request for a
        second transaction (the rules of the module docstring).

        Raises:
            RequestRefused: check ``replay``, naming the transaction or the payload;
                check ``initiator``, naming the transaction the signed request made.
        """
        digest, signer = payload_digest.hex(), signer_key.hex()
        for entry in self.entries:
            if initiator_request is not None and entry.initiator_request == initiator_request:
                same = (
                    (entry.workspace_id, entry.transaction_id) == ids
                    if ids is not None
                    else entry.transaction_id is None
                    and replay_key is not None
                    and entry.replay_key == replay_key
                )
                if not same:
                    raise RequestRefused(
                        "initiator",
                        "this signed initiator request was already used for transaction "
                        f"{entry.transaction_id or entry.replay_key!r}; one signed request "
                        "makes one transaction",
                    )
            if ids is not None and (entry.workspace_id, entry.transaction_id) == ids:
                if replay_key is None or entry.replay_key != replay_key:
                    raise RequestRefused(
                        "replay",
                        f"transaction {ids[1]!r} was already signed as {entry.replay_key}; "
                        "only a replacement of the same nonce (blockhash, outpoints) is signed",
                    )
            if (entry.signer_key, entry.payload_digest) == (signer, digest) and (
                replay_key is None or entry.replay_key != replay_key
            ):
                raise RequestRefused("replay", "this payload was already signed")

    def append(
        self,
        identity: PartyIdentity,
        *,
        ids: tuple[str, str] | None,
        intent_digest: bytes | None,
        replay_key: str | None,
        signer_key: bytes,
        payload_digest: bytes,
        now: int,
        initiator_request: str | None = None,
    ) -> SignedEntry:
        """Sign an entry with the node's identity, append it and fsync it.

        Raises:
            OSError: the entry could not be written; nothing is held in memory then.
        """
        entry = SignedEntry(
            workspace_id=None if ids is None else ids[0],
            transaction_id=None if ids is None else ids[1],
            intent_digest=None if intent_digest is None else intent_digest.hex(),
            replay_key=replay_key,
            signer_key=signer_key.hex(),
            payload_digest=payload_digest.hex(),
            signed_at=now,
            previous=self._head.hex(),
            initiator_request=initiator_request,
        )
        body = entry.body()
        signature = identity.sign(RECORD_DOMAIN + _canonical(body))
        line = _canonical({**body, "signature": signature.hex()})
        append_private_line(self.path, line.decode("ascii"))
        self.entries.append(entry)
        self._head = hashlib.sha256(RECORD_DOMAIN + line).digest()
        return entry
