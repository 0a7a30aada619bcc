"""The copies a co-signer keeps of its peers' records of signed transactions.

Each co-signer signs every entry of its own record (:mod:`.signed_record`). When two
co-signers take part in a signing session, each hands the other the entries of its own
record the other does not hold yet (:mod:`.record_exchange`); the receiver verifies them
under the sender's identity from the session's directory and appends them to its copy:

    records/<party>.jsonl   the lines of party's record, as that party wrote them
    records/acks.json       {party: how many lines of *our* record that party said it
                            holds}, so the next offer to it starts there

Merging an offer (:meth:`PeerRecords.merge`) checks that the peer's record only ever
grows: the lines it sends again must be the lines held, the new ones must be signed by it
and chained to the last held one, and the length and head it states must be those of
the copy once the new lines are added. A peer whose record shrank (a rolled-back data
directory) or forked (two different entries at one position, both signed by it) is named
as the culprit (:class:`RecordConflict`); the session ends without a signature. An offer
that starts after the end of the copy (this co-signer lost lines of its copy) or that
stops short of the stated length (a long record is sent in pieces) is a
:class:`RecordGap`: the session is refused, nobody is blamed, and the next session
continues from what is held now.

Security: holds no secret. The files are 0600 in the co-signer's 0700 data directory;
what a co-signer holds of its peers only ever adds refusals (more history, more replays
seen), so a copy that lost lines weakens nothing its peers' own records do not cover.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import VerifyKey

from shardvault.cosigner.config import (
    PRIVATE_FILE_MODE,
    check_private_file,
    make_private_dir,
    write_private_json,
)
from shardvault.cosigner.errors import ConfigurationError
from shardvault.cosigner.signed_record import (
    GENESIS,
    SignedEntry,
    line_hash,
    parse_entry,
    read_line,
)
from shardvault.crypto.channel import PublicIdentity

RECORDS_DIR = "records"
"""The folder of the peers' copies in the data directory."""

MAX_OFFER_LINES = 512
"""The most lines one offer carries; a longer backlog is sent over several sessions."""


class RecordConflict(Exception):
    """A peer's record does not extend what it showed before (rolled back or forked)."""

    def __init__(self, party: int, reason: str) -> None:
        super().__init__(reason)
        self.party = party
        self.reason = reason


class RecordGap(Exception):
    """An offer cannot be merged yet (a gap, or a backlog sent in pieces); no culprit."""


@dataclass(frozen=True, slots=True)
class Offer:
    """What a co-signer sends its session peers: the tail of its record, and how much
    it holds of each of theirs."""

    party: int
    length: int
    head: bytes
    start: int
    lines: tuple[bytes, ...]
    holds: Mapping[int, tuple[int, bytes]]

    def to_json(self) -> dict[str, object]:
        return {
            "format": "shardvault.cosigner.records-offer/v1",
            "party": self.party,
            "length": self.length,
            "head": self.head.hex(),
            "start": self.start,
            "lines": [line.decode("ascii") for line in self.lines],
            "holds": {
                str(p): {"length": n, "head": h.hex()} for p, (n, h) in sorted(self.holds.items())
            },
        }

    @classmethod
    def from_json(cls, data: object) -> Offer:
        """Read an offer.

        Raises:
            ValueError: anything malformed (the sender signed it: it is the sender's).
        """
        if (
            not isinstance(data, dict)
            or data.get("format") != "shardvault.cosigner.records-offer/v1"
        ):
            raise ValueError("not a records offer")
        if set(data) != {"format", "party", "length", "head", "start", "lines", "holds"}:
            raise ValueError("unexpected or missing fields")
        party, length, start = data["party"], data["length"], data["start"]
        numbers = (party, length, start)
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
            raise ValueError("party, length and start must be non-negative integers")
        lines, holds = data["lines"], data["holds"]
        if not isinstance(lines, list) or len(lines) > MAX_OFFER_LINES:
            raise ValueError(f"lines must be a list of at most {MAX_OFFER_LINES}")
        if not all(isinstance(line, str) and line.isascii() for line in lines):
            raise ValueError("lines must be ASCII strings")
        if start + len(lines) > length:
            raise ValueError("lines run past the stated length")
        if not isinstance(holds, dict):
            raise ValueError("holds must be an object")
        held: dict[int, tuple[int, bytes]] = {}
        for key, value in holds.items():
            if not isinstance(value, dict) or set(value) != {"length", "head"}:
                raise ValueError("holds entries are {length, head}")
            count, head = value["length"], value["head"]
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ValueError("holds lengths are non-negative integers")
            held[int(key)] = (count, _digest(head))
        return cls(
            party,
            length,
            _digest(data["head"]),
            start,
            tuple(line.encode("ascii") for line in lines),
            held,
        )


def _digest(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("expected 32 bytes of hex")
    raw = bytes.fromhex(value)
    if len(raw) != 32:
        raise ValueError("expected 32 bytes of hex")
    return raw


@dataclass
class _Copy:
    lines: list[bytes]
    hashes: list[bytes]
    entries: list[SignedEntry]

    @property
    def head(self) -> bytes:
        return self.hashes[-1] if self.hashes else GENESIS


class PeerRecords:
    """The peers' records this co-signer holds, and what each peer holds of its own."""

    def __init__(self, directory: Path, copies: dict[int, _Copy], acks: dict[int, int]) -> None:
        self._dir = directory
        self._copies = copies
        self._acks = acks

    def __repr__(self) -> str:
        return f"PeerRecords({self._dir}, parties={sorted(self._copies)})"

    @classmethod
    def open(cls, data_dir: Path) -> PeerRecords:
        """Read the copies of ``data_dir`` (none yet: empty), checking each chain.

        Raises:
            ConfigurationError: a copy group or others can access, or whose lines do not
                chain (the copy was edited).
        """
        directory = Path(data_dir) / RECORDS_DIR
        copies: dict[int, _Copy] = {}
        acks: dict[int, int] = {}
        if directory.exists():
            for path in sorted(directory.glob("*.jsonl")):
                check_private_file(path)
                copies[int(path.stem)] = _read_copy(path)
            acks_path = directory / "acks.json"
            if acks_path.exists():
                check_private_file(acks_path)
                try:
                    raw = json.loads(acks_path.read_text("utf-8"))
                    acks = {int(k): int(v) for k, v in raw.items()}
                except (ValueError, AttributeError, TypeError):
                    raise ConfigurationError(f"{acks_path} is not a map of counts") from None
        return cls(directory, copies, acks)

    def held(self, party: int) -> tuple[int, bytes]:
        """How many lines of ``party``'s record are held, and the last one's hash."""
        copy = self._copies.get(party)
        return (0, GENESIS) if copy is None else (len(copy.lines), copy.head)

    def acknowledged(self, party: int) -> int:
        """How many lines of our record ``party`` said it holds."""
        return self._acks.get(party, 0)

    def entries(self) -> Iterator[SignedEntry]:
        """Every entry held of every peer."""
        for copy in self._copies.values():
            yield from copy.entries

    def acknowledge(self, party: int, length: int) -> None:
        """Remember that ``party`` holds ``length`` lines of our record. Not flushed to
        disk: an acknowledgement a crash loses only makes the next offer resend lines
        the peer holds (it compares them and takes none twice), and peers restate what
        they hold in every offer."""
        if self._acks.get(party) != length:
            self._acks[party] = length
            write_private_json(
                self._dir / "acks.json",
                {str(k): v for k, v in self._acks.items()},
                durable=False,
            )

    def merge(self, offer: Offer, identity: PublicIdentity) -> int:
        """Add ``offer``'s new lines to the copy of its sender's record; answers how many
        were new.

        Raises:
            RecordConflict: the sender's record shrank or forked, a line is not signed by
                it or does not chain, or its stated head is not the head of its lines.
            RecordGap: the offer starts after the held lines, or stops short of its
                stated length (new lines up to there are kept).
        """
        party = offer.party
        copy = self._copies.setdefault(party, _Copy([], [], []))
        held = len(copy.lines)
        if offer.length < held:
            raise RecordConflict(
                party,
                f"co-signer {party}'s record has {offer.length} entries; it showed "
                f"{held} before (its record was rolled back)",
            )
        if offer.start > held:
            raise RecordGap(
                f"co-signer {party} sent its record from entry {offer.start}, but only "
                f"{held} are held here; the next session catches up"
            )
        fresh: list[bytes] = []
        for index, line in enumerate(offer.lines, start=offer.start):
            if index < held:
                if line != copy.lines[index]:
                    raise RecordConflict(
                        party,
                        f"co-signer {party} sent another entry {index} than it sent before "
                        "(its record forked)",
                    )
                continue
            fresh.append(line)
        verify = VerifyKey(identity.signing_key)
        previous = copy.head
        added: list[tuple[bytes, bytes, SignedEntry]] = []
        for number, line in enumerate(fresh, start=held):
            where = f"co-signer {party}'s entry {number}"
            try:
                entry = read_line(line, verify, previous, where)
            except ConfigurationError as exc:
                raise RecordConflict(party, str(exc)) from None
            if entry.party != party:
                raise RecordConflict(party, f"{where} names co-signer {entry.party}")
            previous = line_hash(line)
            added.append((line, previous, entry))
        if added:
            _append_lines(self._dir / f"{party}.jsonl", [line for line, _, _ in added])
            for line, digest, entry in added:
                copy.lines.append(line)
                copy.hashes.append(digest)
                copy.entries.append(entry)
        if len(copy.lines) < offer.length:
            raise RecordGap(
                f"co-signer {party}'s record has {offer.length} entries; {len(copy.lines)} "
                "are held here so far; the next session catches up"
            )
        if copy.head != offer.head:
            raise RecordConflict(
                party, f"co-signer {party} states a head that is not the head of its entries"
            )
        return len(added)


def _read_copy(path: Path) -> _Copy:
    """Read one peer's copy, checking that its lines chain (their signatures were
    checked when they were merged).

    Raises:
        ConfigurationError: a line that is not JSON or does not follow the one before.
    """
    copy = _Copy([], [], [])
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ConfigurationError(f"{path} cannot be read: {exc}") from None
    for number, line in enumerate(lines, start=1):
        try:
            raw = json.loads(line)
        except ValueError:
            raise ConfigurationError(f"{path} line {number}: not JSON") from None
        if not isinstance(raw, dict) or raw.get("previous") != copy.head.hex():
            raise ConfigurationError(f"{path} line {number}: does not follow the line before")
        entry, _ = parse_entry(raw, f"{path} line {number}")
        copy.lines.append(line)
        copy.hashes.append(line_hash(line))
        copy.entries.append(entry)
    return copy


def _append_lines(path: Path, lines: list[bytes]) -> None:
    """Append ``lines`` to ``path`` (created 0600), flushed to disk once."""
    make_private_dir(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
    with os.fdopen(descriptor, "ab") as handle:
        handle.write(b"".join(line + b"\n" for line in lines))
        handle.flush()
        os.fsync(handle.fileno())
