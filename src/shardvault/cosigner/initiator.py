"""The initiator's own signed API request, verified by the co-signer (DESIGN.md
invariant 12).

Whoever creates a transfer signs their ``POST /v1/transactions`` with their API key: a
JWT (RFC 7519, compact JWS of RFC 7515) whose claims bind ``method``, ``uri``, ``iat``,
``sub`` (the API key id) and ``bodyHash`` (hex SHA-256 of the raw body), as
``docs/api.md`` describes. The server keeps the token and the body exactly as they
arrived and forwards both with every sign request of that transfer::

    "initiator_request": {"token": "<the JWT>", "body": "<the raw body, base64>"}

The co-signer (:func:`apply_initiator_request`) then, on its own:

1. looks the token's ``sub`` up in the initiators section of its signed bundle
   (:mod:`shardvault.policy.initiators`) and verifies the token with that key, the JOSE
   algorithm pinned per key (``EdDSA`` for Ed25519 keys, ``ES256`` for P-256 keys; the
   header must name it, so ``none`` or HMAC never pass); ``exp`` is not checked against
   the co-signer's clock, since approvals take hours;
2. requires ``method`` ``POST``, ``uri`` :data:`CREATE_TRANSACTION_URI` and ``bodyHash``
   equal to SHA-256 of the forwarded body;
3. reads the body (a JSON object with exactly ``wallet_id``, ``destination``, ``amount``
   and optionally ``note`` and ``source_index``, no key twice) and requires that it asks
   for what the payload does: a transfer to the same destination (0x and Bitcoin
   addresses compared without regard to letter case), of the same amount (the body's
   whole units at the asset's decimals, read exactly, equal to the payload's base
   units), from the address ``source_index`` names (the last step of the derivation
   path the co-signer signs along; 0 for a key used at its root);
4. requires the coordinator's ``metadata.initiator`` and ``metadata.created_at`` to be
   the key's initiator and the token's ``iat``, then takes both from the signed request.

Any difference is a refusal with check ``initiator`` naming what differed. The request's
digest (:func:`request_digest`) goes into the record of signed transactions, which
refuses one signed request for a second transaction (:mod:`.signed_record`).

Without a forwarded request, or when the bundle lists no initiator keys, the initiator
stays the coordinator's claim and counts as unsigned: :func:`refuse_unsigned_initiator`
then refuses any evaluation whose outcome the initiator could have changed
(:func:`shardvault.policy.signed_inputs.initiator_decides`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from shardvault.chains.amounts import parse_decimal_amount
from shardvault.chains.errors import ChainError
from shardvault.cosigner.errors import RequestRefused
from shardvault.cosigner.target import SigningTarget
from shardvault.policy import (
    Evaluation,
    Operation,
    Policy,
    PolicyDocumentError,
    TransactionRequest,
    parse_text,
)
from shardvault.policy.initiators import InitiatorKey, InitiatorKeys
from shardvault.policy.keys import KeyAlgorithm
from shardvault.policy.request import Initiator
from shardvault.policy.signed_inputs import initiator_decides

CREATE_TRANSACTION_URI = "/v1/transactions"
"""The ``uri`` claim of the only request that speaks for an initiator: creating a transfer."""

CREATE_TRANSACTION_METHOD = "POST"
"""Its ``method`` claim."""

MAX_TOKEN_LENGTH = 8192
"""The longest token accepted (the server accepts no longer one)."""

MAX_BODY_BYTES = 16 * 1024
"""The longest body accepted; a create-transaction body is a few hundred bytes."""

REQUEST_DIGEST_DOMAIN = b"shardvault/cosigner/initiator-request/v1\x00"
"""Prefix hashed with a token to name the signed request in the record."""

_REQUIRED_CLAIMS = ("method", "uri", "iat", "sub", "bodyHash")
_BODY_REQUIRED = frozenset({"wallet_id", "destination", "amount"})
_BODY_OPTIONAL = frozenset({"note", "source_index"})
_MAX_AMOUNT = (1 << 256) - 1


@dataclass(frozen=True, slots=True)
class SignedCreateRequest:
    """A create-transaction request whose token verified under a key the bundle lists."""

    initiator: Initiator
    api_key_id: str
    issued_at: int
    digest: bytes
    destination: str
    amount: str
    source_index: int


def request_digest(token: str) -> bytes:
    """What the record keeps of a signed request: SHA-256 over the domain and the token
    (a token carries a fresh nonce, so two requests never share it)."""
    return hashlib.sha256(REQUEST_DIGEST_DOMAIN + token.encode("ascii")).digest()


def apply_initiator_request(
    target: SigningTarget,
    request: Mapping[str, object],
    initiators: InitiatorKeys | None,
    path: str,
) -> SigningTarget:
    """``target`` with its initiator and creation time taken from the forwarded signed
    request, and ``initiator_request`` set to its digest (module docstring).

    Without a forwarded request, or without ``initiators`` to verify one with, the
    target is returned as it is (its initiator unsigned).

    Raises:
        RequestRefused: check ``initiator``, naming what does not verify or differs;
            ``malformed`` for a forwarded request that is not ``{token, body}``.
    """
    raw = request.get("initiator_request")
    if raw is None or initiators is None:
        return target
    signed = verify_create_request(raw, initiators)
    policy_request = target.request
    _check_transfer(signed, policy_request, path)
    claimed = policy_request.initiator
    if claimed != signed.initiator:
        raise RequestRefused(
            "initiator",
            f"metadata.initiator names {_who(claimed)}, but the request is signed with API "
            f"key {signed.api_key_id!r} of {_who(signed.initiator)}",
        )
    if policy_request.created_at != signed.issued_at:
        raise RequestRefused(
            "initiator",
            f"metadata.created_at {policy_request.created_at} is not the signed request's "
            f"time (iat {signed.issued_at})",
        )
    return dataclasses.replace(
        target,
        request=dataclasses.replace(policy_request, initiator=signed.initiator),
        initiator_request=signed.digest.hex(),
    )


def verify_create_request(raw: object, initiators: InitiatorKeys) -> SignedCreateRequest:
    """Verify a forwarded ``{token, body}`` under the key ``initiators`` lists for it.

    Raises:
        RequestRefused: ``malformed`` (not ``{token, body}``, oversized, not base64) or
            ``initiator`` (unknown key, another algorithm, a bad signature, a claim
            missing or wrong, a body that does not hash to ``bodyHash`` or is not a
            create-transaction body).
    """
    token, body = _forwarded(raw)
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise RequestRefused("initiator", "the forwarded token is not a JWT") from None
    key_id = unverified.get("sub")
    found = initiators.for_key(key_id) if isinstance(key_id, str) else None
    if found is None:
        raise RequestRefused(
            "initiator",
            f"API key {key_id!r} is not among the initiator keys the admin quorum signed",
        )
    initiator, key = found
    if header.get("alg") != key.jose_algorithm:
        raise RequestRefused(
            "initiator",
            f"API key {key.id!r} signs with {key.jose_algorithm}, not {header.get('alg')!r}",
        )
    claims = _verified_claims(token, key)
    if claims["method"] != CREATE_TRANSACTION_METHOD or claims["uri"] != CREATE_TRANSACTION_URI:
        raise RequestRefused(
            "initiator",
            f"the signed request is {claims['method']!r} {claims['uri']!r}, not "
            f"{CREATE_TRANSACTION_METHOD} {CREATE_TRANSACTION_URI}",
        )
    claimed_hash = claims["bodyHash"]
    if not isinstance(claimed_hash, str) or not hmac.compare_digest(
        claimed_hash.lower().encode(), hashlib.sha256(body).hexdigest().encode()
    ):
        raise RequestRefused("initiator", "the forwarded body is not the body the token signs")
    issued_at = claims["iat"]
    if not isinstance(issued_at, int) or isinstance(issued_at, bool) or issued_at < 0:
        raise RequestRefused("initiator", "the token's iat is not a time in Unix seconds")
    fields = _create_body(body)
    return SignedCreateRequest(
        initiator=initiator,
        api_key_id=key.id,
        issued_at=issued_at,
        digest=request_digest(token),
        destination=fields["destination"],  # type: ignore[arg-type]
        amount=fields["amount"],  # type: ignore[arg-type]
        source_index=fields.get("source_index", 0),  # type: ignore[arg-type]
    )


def refuse_unsigned_initiator(policy: Policy, evaluation: Evaluation, *, signed: bool) -> None:
    """Refuse an allowed request whose initiator is unsigned (``signed`` false) when the
    initiator could have changed ``evaluation``
    (:func:`~shardvault.policy.signed_inputs.initiator_decides`).

    Raises:
        RequestRefused: check ``initiator``, naming the rule that depends on it.
    """
    if signed:
        return
    found = initiator_decides(policy, evaluation)
    if found is not None:
        rule, reason = found
        raise RequestRefused(
            "initiator",
            f"rule {rule!r} depends on the initiator ({reason}), and no initiator request "
            "signed with a key the admin quorum listed came with this one",
            rule=rule,
        )


def _forwarded(raw: object) -> tuple[str, bytes]:
    if not isinstance(raw, Mapping) or set(raw) != {"token", "body"}:
        raise RequestRefused("malformed", "field initiator_request must be {token, body}")
    token, text = raw["token"], raw["body"]
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH or not token.isascii():
        raise RequestRefused(
            "malformed", f"initiator_request.token must be at most {MAX_TOKEN_LENGTH} characters"
        )
    if not isinstance(text, str) or len(text) > (MAX_BODY_BYTES + 2) // 3 * 4:
        raise RequestRefused(
            "malformed", f"initiator_request.body must be base64 of at most {MAX_BODY_BYTES} bytes"
        )
    try:
        return token, base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestRefused("malformed", "initiator_request.body is not base64") from None


def _verified_claims(token: str, key: InitiatorKey) -> dict[str, object]:
    verifier: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
    if key.key.algorithm is KeyAlgorithm.ED25519:
        verifier = ed25519.Ed25519PublicKey.from_public_bytes(key.key.encoded)
    else:
        verifier = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key.key.encoded)
    try:
        claims: dict[str, object] = jwt.decode(
            token,
            key=verifier,
            algorithms=[key.jose_algorithm],
            # No time is checked against this co-signer's clock: the request may wait
            # hours for its approvals. Its iat becomes the transfer's creation time.
            options={
                "require": list(_REQUIRED_CLAIMS),
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise RequestRefused(
            "initiator", f"the token does not verify under the key of API key {key.id!r}"
        ) from None
    except jwt.MissingRequiredClaimError as exc:
        raise RequestRefused("initiator", f"the token lacks the {exc.claim!r} claim") from None
    except jwt.PyJWTError as exc:
        raise RequestRefused("initiator", f"the token is not acceptable: {exc}") from None
    if claims["sub"] != key.id:
        raise RequestRefused("initiator", "the token's sub is not the key's id")
    return claims


def _create_body(body: bytes) -> dict[str, object]:
    """The fields of a create-transaction body, each of its type.

    Raises:
        RequestRefused: check ``initiator``: not a JSON object, a key twice, a field
            missing, unknown or of the wrong type.
    """
    try:
        # The policy layer's strict reader: a key twice, NaN or Infinity, or nesting
        # past its depth limit is refused, not read one way here and another there.
        document = parse_text(body.decode("utf-8"), "json")
    except (UnicodeDecodeError, PolicyDocumentError) as exc:
        raise RequestRefused("initiator", f"the signed body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RequestRefused("initiator", "the signed body is not a JSON object")
    unknown = sorted(set(document) - _BODY_REQUIRED - _BODY_OPTIONAL)
    missing = sorted(_BODY_REQUIRED - set(document))
    if unknown or missing:
        raise RequestRefused(
            "initiator",
            f"the signed body is not a create-transaction body (unknown {unknown}, "
            f"missing {missing})",
        )
    for name in sorted(_BODY_REQUIRED):
        if not isinstance(document[name], str):
            raise RequestRefused("initiator", f"the signed body's {name} is not a string")
    note = document.get("note")
    if note is not None and not isinstance(note, str):
        raise RequestRefused("initiator", "the signed body's note is not a string")
    index = document.get("source_index", 0)
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise RequestRefused("initiator", "the signed body's source_index is not an index")
    return document


def _check_transfer(signed: SignedCreateRequest, request: TransactionRequest, path: str) -> None:
    """Refuse a payload that does not do what the signed body asks.

    Raises:
        RequestRefused: check ``initiator``, naming the operation, destination, amount
            or source index that differs.
    """
    if request.operation is not Operation.TRANSFER or request.asset is None:
        raise RequestRefused(
            "initiator",
            f"the signed request creates a transfer; the payload is a {request.operation.value}",
        )
    destination = request.destination or ""
    if not _same_address(signed.destination, destination, request.network):
        raise RequestRefused(
            "initiator",
            f"the signed request pays destination {signed.destination!r}; the payload pays "
            f"{destination!r}",
        )
    asset = request.asset
    try:
        amount = parse_decimal_amount(signed.amount, asset.decimals, maximum=_MAX_AMOUNT)
    except ChainError as exc:
        raise RequestRefused(
            "initiator",
            f"the signed amount {signed.amount!r} is not an amount of {asset.id}: {exc.reason}",
        ) from None
    if amount != request.amount:
        raise RequestRefused(
            "initiator",
            f"the signed request moves amount {amount} base units of {asset.id}; the payload "
            f"{request.amount}",
        )
    index = 0 if path == "m" else int(path.rsplit("/", 1)[1])
    if signed.source_index != index:
        raise RequestRefused(
            "initiator",
            f"the signed request spends from source_index {signed.source_index}; the payload "
            f"is signed along {path}",
        )


def _same_address(signed: str, payload: str, network: str | None) -> bool:
    """Whether the body's destination is the payload's: exactly, or for 0x (EVM) and
    bech32 (Bitcoin) addresses without regard to letter case, which they ignore."""
    if signed == payload:
        return True
    case_blind = payload.startswith("0x") or (network or "") in _BECH32_NETWORKS
    return case_blind and signed.lower() == payload.lower()


_BECH32_NETWORKS = frozenset({"bitcoin", "testnet", "signet", "regtest"})


def _who(initiator: Initiator) -> str:
    return f"{initiator.kind.value} {initiator.id!r}"
