"""The ``attest_address`` request: a co-signer signs the address it derives itself.

docs/cosigner.md, "Attested addresses"; the statement and how clients count it are
:mod:`shardvault.policy.address_attestation`. The request is

    {"kind": "attest_address", "request_id", "vault", "key_id", "path", "encoding"}

and nothing else: in particular no address, which the co-signer computes from the
public part of the key it holds (:mod:`.public_keys`: the root key, chain code and
thresholds, never the share) along ``path``, in ``encoding``. It answers
``{"attestation": {party, fingerprint, identity, statement, signature}}``, or refuses:

* ``malformed``: a field missing, of the wrong type, or one it does not take (an
  ``address`` the coordinator would like signed);
* ``key``: no share of that key here, or an encoding for another scheme than the key's;
* ``derivation``: a path it cannot derive (hardened, not canonical, deeper than
  :data:`~shardvault.policy.address_attestation.MAX_PATH_DEPTH`, a FROST key away from
  the root), or an unknown encoding;
* ``rate``: more than :data:`ATTEST_BURST` requests at once, or more than
  :data:`ATTEST_RATE` a second on average.

There is no policy decision: an attestation reveals nothing secret and moves nothing.
It runs within the node's loop (no session), so it is answered while sessions run; the
rate bound keeps a coordinator from filling that loop with attestations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from shardvault.cosigner.errors import RequestRefused
from shardvault.cosigner.public_keys import PublicKeyRecord
from shardvault.cosigner.request_fields import text_field
from shardvault.crypto.channel import PartyIdentity
from shardvault.crypto.protocols.cggmp21.keyshare import KeyShare
from shardvault.crypto.protocols.frost import KeyPackage
from shardvault.policy.address_attestation import (
    SCHEMES,
    DerivationError,
    canonical_path,
    make_statement,
    parse_encoding,
    sign_statement,
)

ATTEST_RATE = 50.0
"""Attestations a node makes per second, on average (each costs well under a millisecond)."""

ATTEST_BURST = 200
"""Attestations a node makes at once before the rate applies."""

REQUEST_FIELDS = frozenset({"kind", "request_id", "vault", "key_id", "path", "encoding"})
"""Exactly the fields of an ``attest_address`` request."""

KeyLookup = Callable[[str, str], PublicKeyRecord]
"""(vault, key id) to the public part of the key (raises RequestRefused ``key``)."""

ShareLoader = Callable[[str, str], KeyPackage | KeyShare]
"""(vault, key id) to the opened share, recording its public part on the way (the
node's ``_load_key``; raises RequestRefused ``key`` when there is no share)."""

if TYPE_CHECKING:
    from shardvault.cosigner.state import NodeState


class AttestationBudget:
    """A token bucket: :data:`ATTEST_BURST` at once, refilled at :data:`ATTEST_RATE`."""

    def __init__(self, rate: float = ATTEST_RATE, burst: int = ATTEST_BURST) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._at: float | None = None

    def spend(self, now: float) -> None:
        """Take one attestation from the budget.

        Raises:
            RequestRefused: check ``rate`` when the budget is spent.
        """
        if self._at is not None:
            self._tokens = min(self._burst, self._tokens + max(now - self._at, 0.0) * self._rate)
        self._at = now
        if self._tokens < 1.0:
            raise RequestRefused(
                "rate",
                f"too many address attestations: at most {self._rate:g} a second "
                f"after a burst of {self._burst:g}",
            )
        self._tokens -= 1.0


def attest_address(
    body: Mapping[str, object],
    *,
    workspace: str,
    identity: PartyIdentity,
    public_key: KeyLookup,
) -> dict[str, object]:
    """The signed attestation (transport form) that ``body`` asks for.

    Raises:
        RequestRefused: ``malformed``, ``key`` or ``derivation`` (module docstring).
    """
    unknown = sorted(set(body) - REQUEST_FIELDS)
    if unknown:
        raise RequestRefused(
            "malformed",
            f"attest_address takes no field {', '.join(unknown)}: the co-signer derives "
            "the address itself",
        )
    vault, key_id = text_field(body, "vault"), text_field(body, "key_id")
    path, encoding_name = text_field(body, "path"), text_field(body, "encoding")
    try:
        path = canonical_path(path)
        encoding = parse_encoding(encoding_name)
    except DerivationError as exc:
        raise RequestRefused("derivation", exc.reason) from None
    record = public_key(vault, key_id)
    scheme = next((s for s in SCHEMES if s == record.scheme), None)
    if scheme is None or encoding.scheme != scheme:
        raise RequestRefused(
            "key", f"key {key_id!r} is a {record.scheme} key; {encoding} needs {encoding.scheme}"
        )
    try:
        statement = make_statement(
            workspace=workspace,
            party=int(identity.party),
            vault=vault,
            key_id=key_id,
            scheme=scheme,
            root_public_key=record.public_key,
            chain_code=record.chain_code,
            min_signers=record.min_signers,
            max_signers=record.max_signers,
            path=path,
            encoding=encoding,
        )
    except DerivationError as exc:
        raise RequestRefused("derivation", exc.reason) from None
    return sign_statement(identity, statement).to_json()


class Attester:
    """The node's side of ``attest_address``: its rate budget, and the public key
    records it derives from.

    Security: reads only public key records. A key of an earlier release has none
    until its share is opened once (by a signature, or by its first attestation here,
    through ``load_share``), which writes it.
    """

    def __init__(self, state: NodeState, load_share: ShareLoader) -> None:
        self._state = state
        self._load_share = load_share
        self._budget = AttestationBudget()

    def attest(self, body: Mapping[str, object], now: float) -> dict[str, object]:
        """Answer one request (:func:`attest_address`), within the rate budget.

        Raises:
            RequestRefused: ``rate``, ``malformed``, ``key`` or ``derivation``.
        """
        self._budget.spend(now)
        return attest_address(
            body,
            workspace=self._state.workspace,
            identity=self._state.identity,
            public_key=self._public_key,
        )

    def _public_key(self, vault: str, key_id: str) -> PublicKeyRecord:
        record = self._state.public_keys.get(vault, key_id)
        if record is None:
            self._load_share(vault, key_id)
            record = self._state.public_keys.get(vault, key_id)
        if record is None:
            raise RequestRefused("key", f"the public part of key {key_id!r} cannot be recorded")
        return record
