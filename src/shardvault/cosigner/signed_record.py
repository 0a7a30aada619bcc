"""The record of every transaction a co-signer signed (DESIGN.md invariant 11).

``signed.jsonl`` in the data directory holds one JSON line per signature this co-signer
started, oldest first. Each line is the canonical JSON (sorted keys, no spaces, ASCII)
of::

    format          "shardvault.cosigner.signed/v2" (v1 lines of earlier releases are
                    read as they are: they carry no party and no request)
    party           the co-signer's party id
    workspace_id    the intent's workspace id (metadata), or null
    transaction_id  the intent's transaction id (metadata), or null
    intent_digest   hex of the intent digest approvals were counted over, or null
    replay_key      what the chain spends once (checks.SigningTarget.replay_key), or null
    signer_key      hex of the public key that signs (the derived key, or the group key)
    payload_digest  hex of the payload's own digest
    request         the policy's view of the request as this co-signer formed it from the
                    payload (``policy.request_to_json``): what velocity limits sum
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
session then fails or times out still counts as signed, for replays and for velocity;
that errs on the safe side (the transfer needs a new transaction id, or a replacement of
the same replay key, which counts once).

Every line is signed by the co-signer that wrote it, so the lines can be handed to its
peers as they are: :mod:`.record_exchange` shares them within each signing quorum and
:mod:`.peer_records` keeps the peers' copies. :func:`check_replay` is the refusal rule
(check ``replay``), applied to this co-signer's entries and to every peer's:

1. a request naming a transaction id is refused when that (workspace id, transaction
   id) was signed before under another replay key, or without one;
2. a request whose payload digest was signed before by the same key is refused unless
   both carry the same replay key (the same transaction signed again: a failover
   quorum, another input of the same PSBT). The same digest under another key is
   another transaction (another sender);
3. a request carrying an initiator's signed request (check ``initiator``) is refused
   when that signed request was recorded for another transaction: another (workspace
   id, transaction id), or, without ids, another replay key. One signed request makes
   one transaction.

So a fee bump or a cancel of the same nonce (same blockhash, same outpoints) may be
signed again; another nonce is refused. A raw digest has no replay key: it is recorded,
and refused only when the same digest comes again.

Opening verifies every line's signature and the hash chain, so an edited, reordered or
inserted line refuses the start. Lines removed from the end are not detected here; a
peer that holds a copy detects it at the next session they share (:mod:`.peer_records`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.exceptions import CryptoError as NaclCryptoError
from nacl.signing import VerifyKey

from shardvault.cosigner.config import append_private_line, check_private_file
from shardvault.cosigner.errors import ConfigurationError, RequestRefused
from shardvault.crypto.channel import PartyIdentity, PublicIdentity
from shardvault.policy import (
    Decision,
    PastTransaction,
    PolicyError,
    TransactionRequest,
    parse_request,
    request_to_json,
)

RECORD_FILE = "signed.jsonl"
"""The record's file name in the data directory."""

RECORD_FORMAT = "shardvault.cosigner.signed/v2"
"""The ``format`` of every entry written now."""

RECORD_FORMAT_V1 = "shardvault.cosigner.signed/v1"
"""The ``format`` of entries written by earlier releases (no party, no request)."""

RECORD_DOMAIN = b"shardvault/cosigner/signed-record/v1\x00"
"""Prefix of the bytes an entry's signature and hash cover."""

GENESIS = bytes(32)
"""The ``previous`` hash of the first entry."""

_OPTIONAL = ("workspace_id", "transaction_id", "intent_digest", "replay_key")
_REQUIRED = ("signer_key", "payload_digest", "signed_at", "previous")
_V2 = ("party", "request")


@dataclass(frozen=True, slots=True)
class SignedEntry:
    """One signature a co-signer started, as its record keeps it."""

    workspace_id: str | None
    transaction_id: str | None
    intent_digest: str | None
    replay_key: str | None
    signer_key: str
    payload_digest: str
    signed_at: int
    previous: str
    party: int | None = None
    request: Mapping[str, object] | None = field(default=None, hash=False, compare=False)
    format: str = RECORD_FORMAT
    initiator_request: str | None = None
    past: PastTransaction | None = field(
        default=None, init=False, repr=False, hash=False, compare=False
    )
    """The entry as velocity history, parsed once (:meth:`past_transaction`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "past", self.past_transaction())

    def body(self) -> dict[str, object]:
        """The fields the signature covers."""
        out: dict[str, object] = {
            "format": self.format,
            "workspace_id": self.workspace_id,
            "transaction_id": self.transaction_id,
            "intent_digest": self.intent_digest,
            "replay_key": self.replay_key,
            "signer_key": self.signer_key,
            "payload_digest": self.payload_digest,
            "signed_at": self.signed_at,
            "previous": self.previous,
        }
        if self.format == RECORD_FORMAT:
            out["party"] = self.party
            out["request"] = None if self.request is None else dict(self.request)
            if self.initiator_request is not None:
                out["initiator_request"] = self.initiator_request
        return out

    @property
    def ids(self) -> tuple[str, str] | None:
        """The (workspace id, transaction id) of the intent, if the entry names one."""
        if self.workspace_id is None or self.transaction_id is None:
            return None
        return self.workspace_id, self.transaction_id

    def past_transaction(self) -> PastTransaction | None:
        """The entry as velocity history: the request it signed, placed at the time the
        co-signer signed it (its own clock, not the coordinator's ``created_at``);
        ``None`` for an entry without a request (a v1 line, a raw digest)."""
        if self.request is None:
            return None
        try:
            request = parse_request({**self.request, "created_at": self.signed_at})
        except PolicyError:
            return None
        return PastTransaction(request, Decision.ALLOW)


def canonical(document: Mapping[str, object]) -> bytes:
    """Canonical JSON: sorted keys, no spaces, ASCII."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii")


def line_hash(line: bytes) -> bytes:
    """The hash of one record line, which the next line names as ``previous``."""
    return hashlib.sha256(RECORD_DOMAIN + line).digest()


def parse_entry(raw: object, where: str) -> tuple[SignedEntry, bytes]:
    """Parse one line's document into an entry and its signature.

    Raises:
        ConfigurationError: a field missing or of the wrong type, naming the line.
    """
    if not isinstance(raw, dict) or raw.get("format") not in (RECORD_FORMAT, RECORD_FORMAT_V1):
        raise ConfigurationError(f"{where}: not a record entry")
    v2 = raw["format"] == RECORD_FORMAT
    expected = {"format", "signature", *_OPTIONAL, *_REQUIRED, *(_V2 if v2 else ())}
    if set(raw) - ({"initiator_request"} if v2 else set()) != expected:
        raise ConfigurationError(f"{where}: unexpected or missing fields")
    initiator_request = raw.get("initiator_request")
    if "initiator_request" in raw and not isinstance(initiator_request, str):
        raise ConfigurationError(f"{where}: initiator_request must be a string")
    if any(raw[name] is not None and not isinstance(raw[name], str) for name in _OPTIONAL):
        raise ConfigurationError(f"{where}: ids, digests and keys must be strings or null")
    strings = ("signer_key", "payload_digest", "previous", "signature")
    if not all(isinstance(raw[name], str) for name in strings):
        raise ConfigurationError(f"{where}: {', '.join(strings)} must be strings")
    signed_at = raw["signed_at"]
    if not isinstance(signed_at, int) or isinstance(signed_at, bool):
        raise ConfigurationError(f"{where}: signed_at must be an integer")
    party = raw.get("party")
    request = raw.get("request")
    if v2 and (not isinstance(party, int) or isinstance(party, bool)):
        raise ConfigurationError(f"{where}: party must be an integer")
    if request is not None and not isinstance(request, dict):
        raise ConfigurationError(f"{where}: request must be an object or null")
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
        party if v2 else None,
        request,
        raw["format"],
        initiator_request,
    )
    return entry, signature


def read_line(line: bytes, verify: VerifyKey, previous: bytes, where: str) -> SignedEntry:
    """Parse and verify one record line: canonical, signed under ``verify``, following
    the line whose hash is ``previous``.

    Raises:
        ConfigurationError: naming ``where`` and what is wrong.
    """
    try:
        raw = json.loads(line)
    except ValueError:
        raise ConfigurationError(f"{where}: not JSON (the record was changed)") from None
    entry, signature = parse_entry(raw, where)
    if canonical(raw) != line:
        raise ConfigurationError(f"{where}: not in canonical form (the record was changed)")
    try:
        verify.verify(RECORD_DOMAIN + canonical(entry.body()), signature)
    except (BadSignatureError, NaclCryptoError, ValueError):
        raise ConfigurationError(
            f"{where}: signature does not verify (the record was changed)"
        ) from None
    if entry.previous != previous.hex():
        raise ConfigurationError(
            f"{where}: does not follow the entry before it (the record was changed)"
        )
    return entry


def check_replay(
    entries: Iterable[SignedEntry],
    ids: tuple[str, str] | None,
    replay_key: str | None,
    signer_key: bytes,
    payload_digest: bytes,
    *,
    initiator_request: str | None = None,
) -> None:
    """Refuse a second signature of one approval, or one signed initiator request for a
    second transaction (the rules of the module docstring), over ``entries`` (this
    co-signer's and its peers').

    Raises:
        RequestRefused: check ``replay``, naming the transaction or the payload; check
            ``initiator``, naming the transaction the signed request made.
    """
    digest, signer = payload_digest.hex(), signer_key.hex()
    for entry in entries:
        if initiator_request is not None and entry.initiator_request == initiator_request:
            same = (
                entry.ids == ids
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
        if ids is not None and entry.ids == ids:
            if replay_key is None or entry.replay_key != replay_key:
                who = "" if entry.party is None else f" (by co-signer {entry.party})"
                raise RequestRefused(
                    "replay",
                    f"transaction {ids[1]!r} was already signed as {entry.replay_key}{who}; "
                    "only a replacement of the same nonce (blockhash, outpoints) is signed",
                )
        if (entry.signer_key, entry.payload_digest) == (signer, digest) and (
            replay_key is None or entry.replay_key != replay_key
        ):
            raise RequestRefused("replay", "this payload was already signed")


def velocity_history(
    entries: Iterable[SignedEntry], since: int | None = None
) -> list[PastTransaction]:
    """The transactions ``entries`` signed, each once: the entries of one transaction
    (its quorum's members, a failover, a fee bump) share its transaction id; without
    one, its payload. Two transactions of one nonce under different ids both count
    (only one can confirm, but either may be the one). With ``since``, entries signed
    before it are left out (no velocity window reaches them)."""
    seen: set[tuple[str, ...]] = set()
    out = []
    for entry in entries:
        if since is not None and entry.signed_at < since:
            continue
        ids = entry.ids
        key = ("tx", *ids) if ids is not None else ("payload", entry.payload_digest)
        if key in seen:
            continue
        past = entry.past
        if past is not None:
            seen.add(key)
            out.append(past)
    return out


class SignedRecord:
    """The hash-chained record of what this co-signer signed, held in memory and
    appended to ``signed.jsonl``.

    Security: holds no secret; the identity that signs entries is passed in per append.
    """

    def __init__(
        self, path: Path, entries: list[SignedEntry], lines: list[bytes], party: int
    ) -> None:
        self.path = path
        self.party = party
        self.entries = entries
        self.lines = lines
        self._hashes = [line_hash(line) for line in lines]

    def __repr__(self) -> str:
        return f"SignedRecord({self.path}, {len(self.entries)} entries)"

    @property
    def head(self) -> bytes:
        """The hash of the last line (:data:`GENESIS` when empty)."""
        return self.hash_at(len(self.lines))

    def hash_at(self, length: int) -> bytes:
        """The hash of the first ``length`` lines' last one (:data:`GENESIS` for 0)."""
        return self._hashes[length - 1] if length else GENESIS

    @classmethod
    def open(cls, data_dir: Path, identity: PublicIdentity, party: int) -> SignedRecord:
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
            return cls(path, [], [], party)
        check_private_file(path)
        verify = VerifyKey(identity.signing_key)
        entries: list[SignedEntry] = []
        head = GENESIS
        try:
            lines = path.read_bytes().splitlines()
        except OSError as exc:
            raise ConfigurationError(f"{path} cannot be read: {exc}") from None
        for number, line in enumerate(lines, start=1):
            entries.append(read_line(line, verify, head, f"{path} line {number}"))
            head = line_hash(line)
        return cls(path, entries, lines, party)

    def check(
        self,
        ids: tuple[str, str] | None,
        replay_key: str | None,
        signer_key: bytes,
        payload_digest: bytes,
        *,
        initiator_request: str | None = None,
    ) -> None:
        """:func:`check_replay` over this co-signer's own entries.

        Raises:
            RequestRefused: check ``replay`` or ``initiator``.
        """
        check_replay(
            self.entries,
            ids,
            replay_key,
            signer_key,
            payload_digest,
            initiator_request=initiator_request,
        )

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
        request: TransactionRequest | None = None,
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
            previous=self.head.hex(),
            party=self.party,
            request=None if request is None else request_to_json(request),
            initiator_request=initiator_request,
        )
        body = entry.body()
        signature = identity.sign(RECORD_DOMAIN + canonical(body))
        line = canonical({**body, "signature": signature.hex()})
        append_private_line(self.path, line.decode("ascii"))
        self.entries.append(entry)
        self.lines.append(line)
        self._hashes.append(line_hash(line))
        return entry
