"""What a co-signer checks before it signs (DESIGN.md invariant 3).

The coordinator sends the transaction *payload*, never only a digest. The co-signer

1. parses the payload with :mod:`shardvault.chains` and recomputes what it will sign:
   an Ethereum transaction's signing hash (EIP-155/2930/1559), a Solana message's bytes,
   a Bitcoin PSBT input's sighash (BIP341 key path for a FROST key, BIP143 for a
   CGGMP21 key's P2WPKH output); a raw digest only as a
   ``raw_digest_signing`` request, which the policy blocks unless a rule names it;
2. refuses the request if the coordinator's claimed digest differs from the recomputed
   one (a compromised coordinator showing approvers one transaction and the co-signers
   another);
3. builds the policy's view of the request (operation, destination, asset, amount,
   network) *from the payload* and the asset registry of its signed bundle
   (:mod:`shardvault.policy.registry`: the network's name, the asset's id and decimals;
   a token or network the registry does not list is refused, checks ``asset`` and
   ``network``); the source wallet is the derivation path it signs along (a different
   coordinator-sent wallet is refused); the initiator and the creation time come from
   the initiator's own signed API request when the bundle lists initiator keys
   (:mod:`.initiator`: a forged, reused or mismatched one is refused). A
   ``metadata.network`` other than the registry's is refused, ``metadata.token_decimals``
   is not accepted;
4. checks the fees the payload commits to against the fee cap the signed policy sets
   for its network (:func:`check_fee`, DESIGN.md invariant 12): an Ethereum
   transaction's worst-case fee and priority fee per gas, a Bitcoin transaction's fee
   and fee rate over its signed virtual size (with every input amount proven), a Solana
   message's compute-unit price, limit and fee. A network without a cap gets no fee
   check, but a Bitcoin or Solana request may not name an uncapped network while
   another of its chain is capped;
5. evaluates the signed policy it holds (the head of its :class:`BundleChain`, pinned to
   the admin set) with its own clock, its own history of what it signed, and prices
   from the bundle (static) or from price reports signed by a price key it names
   (:mod:`shardvault.policy.prices`; a plain ``prices`` map, or a report that does not
   verify, is refused with check ``price``), and counts only approvals whose signatures
   verify over the recomputed digest. Anything but ``allow`` is a refusal naming the
   deciding rule.

The payload digest is the chain's signing digest where there is one (Ethereum), SHA-256
of the message for Solana, and for a PSBT SHA-256 over every input's sighash, so one
approval covers the whole transaction; a claimed ``digest`` is compared with it.

When the metadata carries ``transaction_id`` and ``workspace_id`` (the service's
transactions), a transfer's approvals are counted over its *intent digest* instead
(:mod:`shardvault.policy.intent`), recomputed from the parsed payload (network as the
registry names it; destination; the asset as the payload names it, a native symbol or a
token contract or mint; amount), the
source address of the key the co-signer signs with (for a P2WPKH PSBT, the key's P2WPKH
address), and those two ids. Nonces, fees, UTXOs and change are not in the intent, so
they may be chosen after approval (fees only within the policy's fee cap);
any change of what moves where changes the digest.
Payloads without an intent (raw digests, contract calls, taproot PSBTs) are approved
over the payload digest as before; see ``docs/cosigner.md``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shardvault.cosigner.errors import RequestRefused
from shardvault.cosigner.fees import check_fee
from shardvault.cosigner.initiator import apply_initiator_request
from shardvault.cosigner.target import (
    KEYGEN_DIGEST_DOMAIN,
    MAX_FUTURE_SKEW,
    PSBT_DIGEST_DOMAIN,
    SOLANA_DIGEST_DOMAIN,
    EvmFee,
    SigningTarget,
    hex_field,
    metadata_fields,
    source_from_key,
)
from shardvault.cosigner.targets import ethereum_target, keygen_request, raw_target, solana_target
from shardvault.cosigner.targets_bitcoin import bitcoin_p2wpkh_target, bitcoin_target
from shardvault.policy import (
    AssetRegistry,
    BundleChain,
    Decision,
    Evaluation,
    EvaluationContext,
    History,
    Operation,
    PastTransaction,
    PolicyError,
    PriceReportError,
    SignedApproval,
    TransactionRequest,
    evaluate,
    parse_approval,
    price_table,
)
from shardvault.policy.initiators import InitiatorKeys
from shardvault.policy.intent import TransferIntent, intent_digest
from shardvault.policy.request import UnixSeconds
from shardvault.policy.signed_inputs import is_derivation_path

__all__ = [
    "KEYGEN_DIGEST_DOMAIN",
    "MAX_FUTURE_SKEW",
    "PSBT_DIGEST_DOMAIN",
    "SOLANA_DIGEST_DOMAIN",
    "CheckedRequest",
    "EvmFee",
    "SigningTarget",
    "bitcoin_p2wpkh_target",
    "bitcoin_target",
    "check_fee",
    "check_policy",
    "ethereum_target",
    "keygen_request",
    "raw_target",
    "signing_target",
    "solana_target",
]

_INTENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    """A request that passed every check, with the evaluation that allowed it."""

    target: SigningTarget
    evaluation: Evaluation


def _intent_ids(meta: Mapping[str, object]) -> tuple[str, str] | None:
    """The workspace and transaction ids of an intent, or ``None`` when there are none.

    Raises:
        RequestRefused: only one of the two, or one that is not a short identifier.
    """
    present = [name for name in ("workspace_id", "transaction_id") if name in meta]
    if not present:
        return None
    if len(present) == 1:
        missing = "transaction_id" if present == ["workspace_id"] else "workspace_id"
        raise RequestRefused(
            "malformed", f"metadata.{missing} is required with metadata.{present[0]}"
        )
    ids: list[str] = []
    for name in ("workspace_id", "transaction_id"):
        value = meta[name]
        if not isinstance(value, str) or not _INTENT_ID.fullmatch(value):
            raise RequestRefused(
                "malformed", f"metadata.{name} must be an identifier of at most 64 characters"
            )
        ids.append(value)
    return ids[0], ids[1]


def _with_intent(target: SigningTarget, ids: tuple[str, str]) -> SigningTarget:
    """``target`` with its approvals counted over the transfer's intent digest.

    Raises:
        RequestRefused: the payload is not a transfer from a key the co-signer knows.
    """
    request = target.request
    if (
        request.operation is not Operation.TRANSFER
        or target.source_address is None
        or request.network is None
        or request.destination is None
        or request.asset is None
        or request.amount is None
    ):
        raise RequestRefused(
            "malformed",
            "metadata.transaction_id names a transfer intent, but the payload is not a "
            "transfer from the signing key",
        )
    try:
        intent = TransferIntent(
            workspace_id=ids[0],
            transaction_id=ids[1],
            network=request.network,
            source=target.source_address,
            destination=request.destination,
            asset=target.chain_asset or request.asset.id,
            amount=int(request.amount),
        )
    except PolicyError as exc:
        raise RequestRefused("payload", f"cannot form the transfer intent: {exc}") from None
    return dataclasses.replace(
        target,
        request=dataclasses.replace(request, digest=intent_digest(intent)),
        intent=intent,
    )


def signing_target(
    request: Mapping[str, object],
    key: bytes | None,
    *,
    ecdsa_key: bytes | None = None,
    path: str = "m",
    initiators: InitiatorKeys | None = None,
    registry: AssetRegistry | None = None,
) -> SigningTarget:
    """Recompute what a signing request asks for, from its payload.

    ``key`` is the vault's group public key as the chain encodes it (Ed25519 key,
    BIP340 x-only key); ``ecdsa_key`` the compressed secp256k1 public key an Ethereum
    transaction or a Bitcoin P2WPKH input is signed with (derived along the request's
    path). ``path`` is the derivation path the co-signer signs along (``m`` for a key
    used at its root): the request's source wallet. ``registry`` is the asset registry
    of the signed bundle the request is checked under (``None``: it carries none, the
    built-in defaults apply). With ``transaction_id`` and ``workspace_id`` in the
    metadata, a transfer's approvals are counted over its intent digest (module
    docstring). With ``initiators`` (the bundle's initiator keys), a forwarded
    ``initiator_request`` is verified and gives the initiator and creation time
    (:func:`.initiator.apply_initiator_request`).

    Raises:
        RequestRefused: malformed request, unsupported chain, payload refused, a network
            or asset the registry does not list (checks ``network``, ``asset``), a
            claimed digest that differs from the recomputed one, intent metadata on a
            payload that is not a transfer from the signing key, a claimed source wallet
            that is not ``path`` (check ``source``), or a forwarded initiator request
            that does not verify or differs from the payload (check ``initiator``).
    """
    chain = request.get("chain")
    payload = hex_field(request.get("payload"), "payload")
    meta = metadata_fields(request.get("metadata", {}))
    ids = _intent_ids(meta)
    if chain == "ethereum":
        target = ethereum_target(payload, meta, ecdsa_key, registry)
    elif chain == "solana":
        if key is None or len(key) != 32:
            raise RequestRefused("key", "Solana needs an Ed25519 vault key")
        target = solana_target(payload, meta, key, registry)
    elif chain == "bitcoin":
        index = request.get("input_index")
        if not isinstance(index, int) or isinstance(index, bool):
            raise RequestRefused("malformed", "field input_index must be an integer")
        target = bitcoin_target(payload, meta, key, index, ecdsa_key=ecdsa_key, registry=registry)
    elif chain == "raw":
        target = raw_target(payload, meta)
    else:
        raise RequestRefused("malformed", f"unknown chain {chain!r}")
    claimed = request.get("digest")
    if claimed is not None and hex_field(claimed, "digest") != target.request.digest:
        raise RequestRefused(
            "digest", "the claimed digest is not the digest of the payload (refusing)"
        )
    target = dataclasses.replace(target, payload_digest=target.request.digest)
    if ids is not None:
        target = _with_intent(target, ids)
    if not is_derivation_path(path):
        raise RequestRefused("malformed", f"derivation path {path!r} refused")
    target = dataclasses.replace(target, request=source_from_key(target.request, path))
    return apply_initiator_request(target, request, initiators, path)


def check_policy(
    chain: BundleChain,
    request: TransactionRequest,
    *,
    now: int,
    approvals: object,
    history: Sequence[PastTransaction],
    price_reports: object = None,
    prices: object = None,
) -> Evaluation:
    """Evaluate ``request`` under the head of ``chain``; anything but allow is refused.

    Prices are the bundle registry's static prices and what the signed
    ``price_reports`` (the request's field) say (:func:`shardvault.policy.price_table`,
    with this co-signer's clock); ``prices``, a coordinator's plain price map, is
    refused whenever it is sent.

    Raises:
        RequestRefused: no policy installed; check ``price``: a ``prices`` map, or a
            price report that is malformed or does not verify; malformed approvals, a
            creation time in the future, or a decision other than ``allow`` (naming the
            rule, with why a price was missing when one was).
    """
    bundle = chain.head
    if bundle is None:
        raise RequestRefused("policy", "no signed policy is installed on this co-signer")
    if prices is not None:
        raise RequestRefused(
            "price",
            "field prices is the coordinator's word and is refused: prices come from the "
            "signed bundle or from price_reports signed by a price key it names",
        )
    if request.created_at > now + MAX_FUTURE_SKEW:
        raise RequestRefused("malformed", "created_at lies in the future")
    try:
        table = price_table(
            bundle.assets,
            price_reports,
            currency=bundle.policy.reference_currency,
            now=now,
        )
    except PriceReportError as exc:
        raise RequestRefused("price", str(exc)) from None
    try:
        if not isinstance(approvals, list):
            raise RequestRefused("malformed", "field approvals must be a list")
        statements: list[SignedApproval] = [
            parse_approval(a, f"approvals[{i}]") for i, a in enumerate(approvals)
        ]
        context = EvaluationContext(
            now=UnixSeconds(now),
            address_book=bundle.address_book,
            history=History(history),
            network_prices=table.prices,
            price_notes=table.notes,
        )
        evaluation = evaluate(bundle.policy, request, context, statements)
    except PolicyError as exc:
        raise RequestRefused("malformed", f"policy input refused: {exc}") from None
    if evaluation.decision is not Decision.ALLOW:
        reason = evaluation.summary
        counted = evaluation.approval_tally
        if counted is not None and counted.refused:
            # Say why the first statement that did not count was refused (an approval of
            # another digest, a stranger, a bad signature), so the coordinator can tell.
            error = counted.refused[0][1]
            reason += f"; an approval did not count ({type(error).__name__}: {error})"
        raise RequestRefused("policy", reason, rule=evaluation.rule)
    return evaluation
