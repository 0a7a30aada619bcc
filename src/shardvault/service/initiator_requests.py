"""The initiator's own signed request: kept with its transaction, forwarded to the
co-signers; and the initiator keys a policy bundle lists (DESIGN.md invariant 12).

A transfer created through ``POST /v1/transactions`` keeps the request's JWT and raw
body exactly as they arrived (:func:`keep_initiator_request`). Every signing request of
the transfer carries them (:func:`forwarded_request`) and names the token's ``iat`` as
the transfer's creation time (:func:`signed_created_at`), so each co-signer can verify
who asked, for what, and when (``shardvault.cosigner.initiator``). A transfer made any
other way has no signed request: the co-signers then sign it only where the policy's
decision does not depend on the initiator.

:func:`initiator_keys` lists the workspace's API keys that may create transactions, by
user, for a bundle's initiators section (``POST /v1/policies/{id}/propose`` with
``initiators_from_api_keys``); the admins compare it before they sign.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select

from shardvault.policy import InitiatorEntry, InitiatorKey, InitiatorKeys, PublicKey
from shardvault.policy.model import InitiatorKind
from shardvault.policy.request import Initiator
from shardvault.service.context import Principal
from shardvault.service.keys import parse_public_key
from shardvault.service.rbac import Permission, permissions_of
from shardvault.service.uow import UnitOfWork
from shardvault.store.models import ApiKey, KeyAlgorithm, PrincipalStatus, User
from shardvault.store.models_initiators import TransactionInitiatorRequest
from shardvault.store.models_vaults import Transaction
from shardvault.store.repositories import transaction_scoped


@dataclass(frozen=True, slots=True)
class SignedCreateRequest:
    """A create-transaction request as its initiator signed it: the bearer token and
    the raw body. Not a secret: a signed statement whose nonce is already spent."""

    token: str
    body: bytes


def keep_initiator_request(
    uow: UnitOfWork, row: Transaction, principal: Principal, request: SignedCreateRequest
) -> None:
    """Store ``request`` with the transaction ``row`` it created (same unit of work)."""
    uow.session.add(
        TransactionInitiatorRequest(
            workspace_id=row.workspace_id,
            transaction_id=row.id,
            api_key_id=principal.api_key_id,
            token=request.token,
            body=base64.b64encode(request.body).decode("ascii"),
        )
    )


def _stored(uow: UnitOfWork, tx: Transaction) -> TransactionInitiatorRequest | None:
    """``tx``'s signed request, read once per database transaction (the row never
    changes once written) and without flushing the session: a pipeline batch writes its
    transfers' changes in one flush at commit, and the row was committed with ``tx``."""
    held = transaction_scoped(uow.session, "initiator_requests")
    if tx.id not in held:
        with uow.session.no_autoflush:
            held[tx.id] = uow.session.scalar(
                select(TransactionInitiatorRequest).where(
                    TransactionInitiatorRequest.workspace_id == tx.workspace_id,
                    TransactionInitiatorRequest.transaction_id == tx.id,
                )
            )
    stored: TransactionInitiatorRequest | None = held[tx.id]
    return stored


def forwarded_request(uow: UnitOfWork, tx: Transaction) -> dict[str, str] | None:
    """The ``initiator_request`` of ``tx``'s signing requests: ``{token, body}`` (body
    base64), or ``None`` when it was not created by a signed API request."""
    stored = _stored(uow, tx)
    return None if stored is None else {"token": stored.token, "body": stored.body}


def signed_created_at(uow: UnitOfWork, tx: Transaction) -> int:
    """``tx``'s creation time as its co-signers take it: the signed request's ``iat``
    (verified when the request arrived), else the server's own record."""
    stored = _stored(uow, tx)
    if stored is not None:
        claims = jwt.decode(stored.token, options={"verify_signature": False})
        issued_at = claims.get("iat")
        if isinstance(issued_at, int) and not isinstance(issued_at, bool):
            return issued_at
    return int(tx.created_at.timestamp())


def initiator_keys(uow: UnitOfWork, workspace_id: str) -> InitiatorKeys:
    """The workspace's active API keys of active users that may create transactions,
    under their user as the policy names initiators (``{type: user, id: email}``)."""
    users = {
        u.id: u
        for u in uow.session.scalars(
            select(User).where(
                User.workspace_id == workspace_id, User.status == PrincipalStatus.ACTIVE
            )
        )
    }
    by_user: dict[str, list[InitiatorKey]] = {}
    keys = uow.session.scalars(
        select(ApiKey)
        .where(ApiKey.workspace_id == workspace_id, ApiKey.status == PrincipalStatus.ACTIVE)
        .order_by(ApiKey.id)
    )
    for key in keys:
        user = users.get(key.user_id)
        if user is None or Permission.TRANSACTIONS_CREATE not in permissions_of(key.role):
            continue
        by_user.setdefault(user.email, []).append(InitiatorKey(key.id, _public_key(key)))
    return InitiatorKeys(
        tuple(
            InitiatorEntry(Initiator(InitiatorKind.USER, email), tuple(listed))
            for email, listed in sorted(by_user.items())
        )
    )


def _public_key(key: ApiKey) -> PublicKey:
    """``key``'s public key as a bundle lists it (Ed25519 raw, P-256 uncompressed SEC1)."""
    parsed = parse_public_key(key.public_key_pem, key.algorithm)
    if key.algorithm is KeyAlgorithm.ED25519:
        assert isinstance(parsed, ed25519.Ed25519PublicKey)
        raw = parsed.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return PublicKey.parse("ed25519", raw.hex(), path=f"api key {key.id}")
    assert isinstance(parsed, ec.EllipticCurvePublicKey)
    point = parsed.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return PublicKey.parse("p256", point.hex(), path=f"api key {key.id}")
