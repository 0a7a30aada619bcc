"""A co-signer's prepared auxiliary-info sets: CGGMP21 aux info made ahead of a key.

CGGMP21's auxiliary info (a Paillier-Blum modulus, ring-Pedersen parameters and their
proofs Πprm, Πmod, Πfac for every peer) is its own session, attached to a key only at the
end (``KeygenOutput.with_aux``). An ``aux_prepare`` request runs that session among a
party set ahead of any key; each co-signer seals its outcome (its :class:`AuxInfo`,
which holds its Paillier secret) here, under the label the server gave. A later ECDSA
``dkg`` request that names the label takes the set instead of running aux info inside
the request.

* **Where.** The custody namespace ``aux-pool`` (like ``prime-pool``, never a workspace
  id), address ``aux-pool/sets/<kind>-<parties>-<label>/<party>``, sealed like a key
  share. Outside the workspace's namespace: a prepared set is no key material (losing
  it costs only the time to make another), so a backup of the workspace's shares leaves
  it out, and a restore can never bring back a set that was already used.
* **Used once.** :meth:`AuxPool.take` opens revision 1, writes revision 2 (a sealed
  "taken" marker; optimistic concurrency, so two takers cannot both win), deletes
  revision 1 and only then returns the set. A crash between the marker and the delete
  leaves a taken entry that :class:`AuxPool` deletes when it next opens the store.
* **Bounded.** At most ``max_per_set`` sets per party set are held or being made at
  once; an ``aux_prepare`` beyond that is refused (check ``aux``), so a compromised
  server can neither fill the co-signer's disk nor keep its CPU busy.
* **Test-only.** A node started with ``--unsafe-test-only-primes`` makes its sets from
  those published primes: each is marked test-only (in its address and its sealed
  content), only a test-only node takes it, and the key says ``test_only``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from shardvault.cosigner.errors import RequestRefused
from shardvault.cosigner.single_use import SingleUseStore
from shardvault.cosigner.state import NodeCustody
from shardvault.crypto.errors import CryptoError
from shardvault.crypto.protocols.cggmp21.aux_info import AuxInfo
from shardvault.custody.errors import CustodyError, StoreError
from shardvault.custody.secret import SecretBytes

AUX_WORKSPACE = "aux-pool"
"""The custody namespace of prepared sets (never a workspace id: those are UUIDs)."""

AUX_VAULT = "sets"

AUX_SET = b"shardvault/cosigner/aux-pool/set/v1\x00"
"""Prefix of a sealed prepared set: a JSON header line, then ``AuxInfo.to_bytes()``."""

AUX_TAKEN = b"shardvault/cosigner/aux-pool/taken/v1\x00"
"""The sealed content of a taken set's second revision."""

LABEL = re.compile(r"[0-9a-f]{16,32}")
"""A prepared set's label: 8 to 16 random bytes of lowercase hex, chosen by the server."""

_SAFE, _TEST_ONLY = "safe", "test-only"


def parties_tag(parties: Sequence[int]) -> str:
    """The party set as it appears in an address and a status (``1.2.3``)."""
    return ".".join(str(p) for p in sorted(parties))


def check_label(label: str) -> str:
    """``label`` if well formed.

    Raises:
        RequestRefused: check ``malformed``.
    """
    if not LABEL.fullmatch(label):
        raise RequestRefused("malformed", "aux label must be 16 to 32 lowercase hex digits")
    return label


@dataclass(frozen=True, slots=True)
class AuxPoolSettings:
    """``max_per_set``: prepared sets one party set may have held or in the making at
    once (0 refuses every ``aux_prepare``)."""

    max_per_set: int = 4

    def __post_init__(self) -> None:
        if not 0 <= self.max_per_set <= 64:
            raise ValueError("the aux pool holds 0 to 64 sets per party set")


class AuxPool:
    """The prepared sets of one co-signer (module docstring).

    Every custody operation runs on the caller's thread (the node's loop). Nothing here
    logs or reports a secret; the status lists labels and counts only.
    """

    def __init__(
        self,
        custody: NodeCustody,
        party: int,
        settings: AuxPoolSettings | None = None,
        *,
        test_only: bool = False,
    ) -> None:
        self._store = SingleUseStore(custody, AUX_WORKSPACE, AUX_VAULT, str(party), AUX_TAKEN)
        self._party = str(party)
        self.settings = settings or AuxPoolSettings()
        self._test_only = test_only
        self._kind = _TEST_ONLY if test_only else _SAFE
        self._lock = threading.Lock()
        self._preparing: dict[str, set[str]] = {}
        self._made = 0
        self._taken = 0
        # Party-set tag -> labels ready.
        self._ready: dict[str, list[str]] = self._open_store()

    def __repr__(self) -> str:
        return f"AuxPool(party={self._party}, <redacted>)"

    def _key_id(self, tag: str, label: str) -> str:
        return f"{self._kind}-{tag}-{label}"

    def _open_store(self) -> dict[str, list[str]]:
        """The ready sets of this node's kind per party set (a take a crash interrupted
        is finished: :meth:`.SingleUseStore.ready`)."""
        ready: dict[str, list[str]] = {}
        prefix = self._kind + "-"
        for key_id in self._store.ready():
            if not key_id.startswith(prefix):
                continue
            tag, _, label = key_id[len(prefix) :].partition("-")
            if LABEL.fullmatch(label):
                ready.setdefault(tag, []).append(label)
        return ready

    # --- Preparing ------------------------------------------------------------------

    def held(self, parties: Sequence[int]) -> list[str]:
        """Labels ready for ``parties`` (this node's kind)."""
        with self._lock:
            return list(self._ready.get(parties_tag(parties), []))

    def reserve(self, parties: Sequence[int], label: str) -> None:
        """Count a set about to be made against the bound.

        Raises:
            RequestRefused: check ``aux``: the bound is reached, or the label is in use.
        """
        tag = parties_tag(parties)
        check_label(label)
        with self._lock:
            ready = self._ready.get(tag, [])
            preparing = self._preparing.setdefault(tag, set())
            if label in ready or label in preparing:
                raise RequestRefused("aux", f"aux label {label} is already in use")
            if self._store.used(self._key_id(tag, label)):
                raise RequestRefused("aux", f"aux label {label} was used before")
            if len(ready) + len(preparing) >= self.settings.max_per_set:
                raise RequestRefused(
                    "aux",
                    f"party set {tag} already has {self.settings.max_per_set} prepared "
                    "aux-info sets (the most this co-signer keeps)",
                )
            preparing.add(label)

    def release(self, parties: Sequence[int], label: str) -> None:
        """Forget a reservation whose session failed."""
        with self._lock:
            self._preparing.get(parties_tag(parties), set()).discard(label)

    def seal(self, label: str, aux: AuxInfo) -> None:
        """Seal a finished session's outcome under ``label`` (reserved before)."""
        tag = parties_tag(aux.parties)
        header = json.dumps(
            {"parties": [int(p) for p in aux.parties], "test_only": self._test_only},
            separators=(",", ":"),
        ).encode()
        try:
            with SecretBytes(AUX_SET + header + b"\n" + aux.to_bytes()) as plaintext:
                self._store.seal(self._key_id(tag, label), plaintext)
        finally:
            self.release(aux.parties, label)
        with self._lock:
            self._ready.setdefault(tag, []).append(label)
            self._made += 1

    # --- Taking ---------------------------------------------------------------------

    def take(self, parties: Sequence[int], label: str) -> AuxInfo:
        """The set ``label`` of ``parties``, removed from custody before it is returned.

        Raises:
            RequestRefused: check ``aux``: no such ready set (unknown, used, of another
                party set or of the other kind), or it is unreadable.
        """
        tag = parties_tag(parties)
        check_label(label)
        with self._lock:
            ready = self._ready.get(tag, [])
            if label not in ready:
                raise RequestRefused("aux", f"no prepared aux-info set {label} for {tag}")
            ready.remove(label)
        try:
            # Marked taken, then deleted, and only then used.
            plaintext = self._store.take(self._key_id(tag, label))
        except (StoreError, CustodyError):
            raise RequestRefused("aux", f"prepared aux-info set {label} is gone") from None
        with self._lock:
            self._taken += 1
        try:
            if not plaintext.startswith(AUX_SET):
                raise ValueError("not a prepared set")
            header, _, body = plaintext[len(AUX_SET) :].partition(b"\n")
            meta = json.loads(header)
            if bool(meta["test_only"]) != self._test_only:
                raise ValueError("of the other kind")
            aux = AuxInfo.from_bytes(body)
        except (ValueError, KeyError, TypeError, CryptoError):
            raise RequestRefused("aux", f"prepared aux-info set {label} is unreadable") from None
        if aux.party != int(self._party) or set(aux.parties) != set(parties):
            raise RequestRefused("aux", f"prepared aux-info set {label} is for another party set")
        return aux

    @property
    def test_only(self) -> bool:
        return self._test_only

    def status(self) -> dict[str, object]:
        """What the node reports with each poll: counts only (sets ready per party set),
        no label (the server asks for those with ``aux_held``)."""
        with self._lock:
            return {
                "max_per_set": self.settings.max_per_set,
                "ready": {tag: len(labels) for tag, labels in self._ready.items() if labels},
                "preparing": sum(len(v) for v in self._preparing.values()),
                "made": self._made,
                "taken": self._taken,
                "test_only": self._test_only,
            }
