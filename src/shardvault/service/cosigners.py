"""Pairing remote co-signers with a workspace (docs/cosigner.md, "Pairing").

1. An admin makes a one-time pairing token for one party id
   (:func:`create_pairing_token`; only its SHA-256 is stored, it expires).
2. On the co-signer's own host, ``shardvault cosigner pair`` sends the co-signer's
   public identity with the token, signed by the identity key itself (proof of
   possession), and prints the identity's fingerprint; :func:`pair` records it.
3. The admins read each fingerprint on its co-signer's host, compare it with
   :func:`list_cosigners`, and sign the next policy bundle, which carries the directory
   of paired co-signers (:func:`directory_for_bundle`). Only then do the co-signers
   accept each other in a session.

The server's pairing record is not trusted by the co-signers: a server that recorded
another key under a party id gets a directory the admins will not sign (its fingerprint
differs from the one read on the co-signer's host), and co-signers accept peers only
from a signed directory. Pairing, unpairing and tokens are audited.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from sqlalchemy import select

from shardvault.audit.log import Actor
from shardvault.cosigner.pairing import PAIRING_FORMAT, pairing_message
from shardvault.crypto.channel import PublicIdentity
from shardvault.crypto.errors import CryptoError
from shardvault.crypto.protocols.common import MAX_PARTY_ID
from shardvault.policy import CosignerDirectory
from shardvault.policy.bundle import canonical_json
from shardvault.service.context import Principal
from shardvault.service.errors import AuthenticationError, Conflict, NotFound, ValidationError
from shardvault.service.rbac import Permission, require
from shardvault.service.uow import UnitOfWork
from shardvault.store.models_cosigners import CosignerPairingToken, PairedCosigner
from shardvault.store.types import utcnow

PAIRING_TOKEN_TTL = timedelta(minutes=30)
"""How long a pairing token may be used."""

MAX_PAIRING_SKEW_S = 300
"""How far a pairing document's timestamp may be from the server's clock."""

_TEXT_FIELDS = {"version": 64, "label": 100}


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class PairingTokenView:
    """A fresh pairing token (shown once; the server keeps only its hash)."""

    token: str
    party: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class CosignerView:
    """A paired co-signer as the server sees it (``status``: live data from the relay)."""

    party: int
    label: str
    fingerprint: str
    identity: dict[str, str]
    version: str
    details: dict[str, object]
    paired_at: datetime
    in_signed_directory: bool
    status: dict[str, object]

    @classmethod
    def of(
        cls, row: PairedCosigner, signed: CosignerDirectory | None, status: dict[str, object]
    ) -> CosignerView:
        identity = _identity(row)
        details = json.loads(row.details)
        return cls(
            party=row.party,
            label=row.label,
            fingerprint=row.fingerprint,
            identity=identity.to_json(),
            version=row.version,
            details=details if isinstance(details, dict) else {},
            paired_at=row.paired_at,
            in_signed_directory=signed is not None and signed.get(row.party) == identity,
            status=status,
        )


def _identity(row: PairedCosigner) -> PublicIdentity:
    return PublicIdentity(
        bytes.fromhex(row.signing_key),
        bytes.fromhex(row.encryption_key),
        bytes.fromhex(row.binding),
    )


def _check_party(party: int) -> None:
    if isinstance(party, bool) or not 1 <= party <= MAX_PARTY_ID:
        raise ValidationError("party", f"must be 1 to {MAX_PARTY_ID}")


def create_pairing_token(uow: UnitOfWork, principal: Principal, *, party: int) -> PairingTokenView:
    """A one-time token that pairs one co-signer as ``party``.

    Raises:
        Forbidden (not policies:manage), ValidationError (party id out of range),
        Conflict (that party is already paired: unpair it first).
    """
    require(principal, Permission.POLICIES_MANAGE)
    _check_party(party)
    if _paired(uow, principal.workspace_id, party) is not None:
        raise Conflict(f"co-signer {party} is already paired; unpair it first")
    token = "svpair_" + secrets.token_urlsafe(32)
    now = utcnow()
    row = CosignerPairingToken(
        workspace_id=principal.workspace_id,
        token_hash=_token_hash(token),
        party=party,
        created_by=principal.api_key_id,
        created_at=now,
        expires_at=now + PAIRING_TOKEN_TTL,
    )
    uow.session.add(row)
    uow.session.flush()
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="cosigner.pairing_token",
        resource_type="cosigner",
        resource_id=str(party),
        details={"expires_at": row.expires_at.isoformat()},
    )
    return PairingTokenView(token, party, row.expires_at)


def _paired(uow: UnitOfWork, workspace_id: str, party: int) -> PairedCosigner | None:
    return uow.session.scalar(
        select(PairedCosigner).where(
            PairedCosigner.workspace_id == workspace_id, PairedCosigner.party == party
        )
    )


def _paired_all(uow: UnitOfWork, workspace_id: str) -> list[PairedCosigner]:
    return list(
        uow.session.scalars(
            select(PairedCosigner)
            .where(PairedCosigner.workspace_id == workspace_id)
            .order_by(PairedCosigner.party)
        )
    )


def pair(
    uow: UnitOfWork, *, document: object, signature: str, now: Callable[[], datetime] = utcnow
) -> tuple[CosignerView, str]:
    """Record a co-signer that presented a valid token and proved its identity key.

    Idempotent: the co-signer a token paired may send its pairing again and gets the same
    answer (pairing needs no Idempotency-Key).

    ``document`` is ``{format, workspace, party, identity, token, timestamp, version,
    label, details}``, ``signature`` the identity key's Ed25519 signature (hex) over
    :func:`pairing_message`. Answers the view and the workspace id.

    Raises:
        ValidationError: a malformed document or identity.
        AuthenticationError: an unknown, used or expired token, a token for another
            party or workspace, a stale timestamp, or a signature that does not verify
            (the API records each refusal in the token's workspace audit chain).
    """
    if not isinstance(document, Mapping):
        raise ValidationError("pairing", "expected an object")
    fields = {
        "format",
        "workspace",
        "party",
        "identity",
        "token",
        "timestamp",
        "version",
        "label",
        "details",
    }
    if set(document) != fields:
        raise ValidationError("pairing", f"expected exactly the fields {sorted(fields)}")
    if document["format"] != PAIRING_FORMAT:
        raise ValidationError("pairing.format", f"expected {PAIRING_FORMAT!r}")
    token, party, workspace = document["token"], document["party"], document["workspace"]
    timestamp = document["timestamp"]
    if not isinstance(token, str) or not 8 <= len(token) <= 128:
        raise ValidationError("pairing.token", "expected a pairing token")
    if not isinstance(party, int) or isinstance(party, bool):
        raise ValidationError("pairing.party", "expected an integer")
    _check_party(party)
    if not isinstance(workspace, str) or not isinstance(timestamp, int):
        raise ValidationError("pairing", "workspace must be a string and timestamp an integer")
    for name, limit in _TEXT_FIELDS.items():
        value = document[name]
        if not isinstance(value, str) or len(value) > limit:
            raise ValidationError(f"pairing.{name}", f"expected a string of at most {limit}")
    details = document["details"]
    if not isinstance(details, Mapping) or len(canonical_json(dict(details))) > 4096:
        raise ValidationError("pairing.details", "expected an object of at most 4 KiB")
    raw_identity = document["identity"]
    if not isinstance(raw_identity, Mapping):
        raise ValidationError("pairing.identity", "expected an identity object")
    try:
        identity = PublicIdentity.from_json(raw_identity)
        raw_signature = bytes.fromhex(signature)
    except CryptoError as exc:
        raise ValidationError("pairing.identity", str(exc)) from None
    except ValueError:
        raise ValidationError("signature", "expected hex") from None
    row = uow.session.scalar(
        select(CosignerPairingToken)
        .where(CosignerPairingToken.token_hash == _token_hash(token))
        .with_for_update()
    )
    current = now()

    def refuse(reason: str, workspace_id: str | None) -> AuthenticationError:
        # The API's error handler records the refusal in the token's workspace chain.
        return AuthenticationError(f"pairing refused: {reason}", workspace_id=workspace_id)

    if row is None:
        raise refuse("unknown pairing token", None)
    if row.used_at is not None:
        done = _paired(uow, row.workspace_id, row.party)
        if done is not None and done.signing_key == identity.signing_key.hex():
            # The same co-signer sending its pairing again (a lost answer): the same
            # answer, nothing new recorded. A token pairs one identity, once.
            return CosignerView.of(done, None, {}), row.workspace_id
        raise refuse("the pairing token was already used", row.workspace_id)
    if row.expires_at <= current:
        raise refuse("the pairing token expired", row.workspace_id)
    if row.workspace_id != workspace:
        raise refuse("the pairing token is for another workspace", row.workspace_id)
    if row.party != party:
        raise refuse(f"the pairing token is for co-signer {row.party}", row.workspace_id)
    if abs(current.timestamp() - timestamp) > MAX_PAIRING_SKEW_S:
        raise refuse("the pairing document's timestamp is too far off", row.workspace_id)
    try:
        VerifyKey(identity.signing_key).verify(pairing_message(document), raw_signature)
    except (BadSignatureError, ValueError):
        raise refuse("the identity's signature does not verify", row.workspace_id) from None
    if _paired(uow, row.workspace_id, party) is not None:
        raise Conflict(f"co-signer {party} is already paired; unpair it first")
    if any(p.signing_key == identity.signing_key.hex() for p in _paired_all(uow, workspace)):
        raise Conflict("this identity is already paired under another party id")
    row.used_at = current
    record = PairedCosigner(
        workspace_id=row.workspace_id,
        party=party,
        label=str(document["label"]) or f"co-signer {party}",
        signing_key=identity.signing_key.hex(),
        encryption_key=identity.encryption_key.hex(),
        binding=identity.binding.hex(),
        fingerprint=identity.fingerprint(),
        version=str(document["version"]),
        details=json.dumps(dict(details), sort_keys=True),
        paired_at=current,
    )
    uow.session.add(record)
    uow.session.flush()
    uow.audit.append(
        workspace_id=row.workspace_id,
        actor=Actor.cosigner(party),
        action="cosigner.pair",
        resource_type="cosigner",
        resource_id=str(party),
        details={"fingerprint": record.fingerprint, "version": record.version},
    )
    return CosignerView.of(record, None, {}), row.workspace_id


def unpair(uow: UnitOfWork, principal: Principal, party: int) -> None:
    """Forget a paired co-signer (it stays in any signed directory until the admins sign
    one without it).

    Raises: Forbidden, NotFound.
    """
    require(principal, Permission.POLICIES_MANAGE)
    row = _paired(uow, principal.workspace_id, party)
    if row is None:
        raise NotFound("cosigner", str(party))
    uow.session.delete(row)
    uow.session.flush()
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="cosigner.unpair",
        resource_type="cosigner",
        resource_id=str(party),
        details={"fingerprint": row.fingerprint},
    )


StatusLookup = Callable[[str], Mapping[int, dict[str, object]]]
"""A workspace id to each co-signer's live status, as its relay sees it."""


def list_cosigners(
    uow: UnitOfWork,
    principal: Principal,
    *,
    signed: CosignerDirectory | None,
    status: StatusLookup | None = None,
) -> list[CosignerView]:
    """The workspace's paired co-signers, with whether the active policy's signed
    directory lists each under the same identity, and their live status.

    Raises: Forbidden.
    """
    require(principal, Permission.POLICIES_READ)
    live = status(principal.workspace_id) if status is not None else {}
    return [
        CosignerView.of(row, signed, dict(live.get(row.party, {})))
        for row in _paired_all(uow, principal.workspace_id)
    ]


def paired_identities(uow: UnitOfWork, workspace_id: str) -> dict[int, PublicIdentity]:
    """Party id to public identity of every co-signer the workspace paired."""
    return {row.party: _identity(row) for row in _paired_all(uow, workspace_id)}


def directory_for_bundle(
    uow: UnitOfWork, workspace_id: str, parties: list[int] | None
) -> CosignerDirectory | None:
    """The directory the next bundle carries: the paired co-signers ``parties`` (all
    paired ones if ``None``); ``None`` when the workspace paired none.

    Raises:
        ValidationError: a named party that is not paired, or fewer than two.
    """
    paired = paired_identities(uow, workspace_id)
    if not paired and parties is None:
        return None
    chosen = sorted(paired) if parties is None else sorted(set(parties))
    missing = [p for p in chosen if p not in paired]
    if missing:
        raise ValidationError("cosigners", f"co-signers {missing} are not paired")
    if len(chosen) < 2:
        raise ValidationError("cosigners", "a directory needs at least two co-signers")
    return CosignerDirectory.of({p: paired[p] for p in chosen})
