"""Transactions: create, read, list, cancel, and approvals.

``create_transaction`` validates the request against the chain (EIP-55 checksums, exact
decimal amounts against the asset's decimals), records it as ``submitted`` and queues
it for the pipeline (:mod:`shardvault.service.pipeline`), all in the caller's unit of
work, so the API's idempotency record, the transaction, its queue entry and its audit
event commit together.

Approvals are signed statements (docs/policy.md, "Approvals") over the transaction's
*intent digest*: SHA-256 over a domain tag and the canonical JSON of what the transfer
does (workspace, transaction id, network, source address, destination, asset, amount).
Approvers sign what moves where, before any nonce or fee is chosen; the pipeline checks
at serialization that the chain transaction it builds does exactly that.

The intent names the network and the asset the way a co-signer can check them from the
payload alone (:func:`intent_network`, :func:`intent_asset`): an EVM network by the name
registered for its chain id, an ERC-20 token by its contract address, a native asset by
its symbol; so the digest approvers sign is the one each co-signer recomputes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shardvault.chains.bitcoin import Network as BitcoinNetwork
from shardvault.chains.bitcoin import address_from_script, script_pubkey_for_address
from shardvault.chains.bitcoin.script import ScriptType, classify
from shardvault.chains.errors import ChainError, UnsupportedError
from shardvault.chains.ethereum import (
    parse_address,
    parse_ether,
    parse_token_amount,
)
from shardvault.chains.solana.models import Pubkey
from shardvault.lifecycle import CANCELLABLE, Cause, Flow
from shardvault.policy import (
    APPROVAL_MAX_SKEW_SECONDS,
    ApprovalError,
    ApprovalVerdict,
    PolicyBundle,
    SignedApproval,
    parse_bundle,
    tally,
    verify_approval,
)
from shardvault.policy.intent import intent_digest as policy_intent_digest
from shardvault.policy.model import Decision
from shardvault.policy.request import UnixSeconds
from shardvault.service import webhooks
from shardvault.service.context import Principal
from shardvault.service.errors import Conflict, Forbidden, NotFound, ValidationError
from shardvault.service.initiator_requests import SignedCreateRequest, keep_initiator_request
from shardvault.service.pagination import page_of, page_size
from shardvault.service.rbac import Permission, require
from shardvault.service.transaction_state import FLOWS, emit_status, move
from shardvault.service.transfer_intent import intent_asset as intent_asset
from shardvault.service.transfer_intent import intent_digest as intent_digest
from shardvault.service.transfer_intent import intent_network as intent_network
from shardvault.service.transfer_intent import transfer_intent as transfer_intent
from shardvault.service.uow import UnitOfWork
from shardvault.service.views import Page
from shardvault.service.work_signal import work_committed
from shardvault.service.workspaces import decode_cursor, encode_cursor
from shardvault.store.models import new_id
from shardvault.store.models_vaults import (
    Approval,
    Asset,
    AssetKind,
    Network,
    NetworkKind,
    Transaction,
    TransactionStatus,
    Wallet,
    WalletAddress,
)
from shardvault.store.repositories_vaults import (
    AssetRepository,
    NetworkRepository,
    PolicyRepository,
    TransactionRepository,
    VaultRepository,
    WalletRepository,
    WorkQueue,
)
from shardvault.store.types import utcnow

PAYABLE_SCRIPTS = frozenset(
    {ScriptType.P2WPKH, ScriptType.P2WSH, ScriptType.P2TR, ScriptType.P2PKH, ScriptType.P2SH}
)
"""Output scripts a Bitcoin transfer may pay (those the spend builder can size)."""


class ApprovalRefused(Forbidden):
    """An approval statement that does not count: not an approver of this policy, not in
    a required group, another transaction or policy version, a bad signature, signed
    before the transaction existed, in the future or past its lifetime."""

    problem = "approval-refused"


@dataclass(frozen=True, slots=True)
class ApprovalView:
    """A stored statement; ``signed_at`` is ``None`` for a format v1 statement, which
    counts nowhere."""

    approver: str
    decision: str
    policy_version: int
    signed_at: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TransactionView:
    """A transaction as the API shows it. ``workspace_id``, ``id``, ``intent_network``,
    ``source_address``, ``destination``, ``intent_asset`` and ``amount_base_units`` are
    the transfer's intent, so an approver's client recomputes ``intent_digest`` from
    them; ``network`` and ``asset`` are the workspace's names, and ``amount`` is
    ``amount_base_units`` in whole units of ``asset_decimals``."""

    id: str
    workspace_id: str
    vault_id: str
    wallet_id: str
    source_address: str
    network: str
    intent_network: str
    asset: str
    intent_asset: str
    asset_decimals: int
    operation: str
    destination: str
    amount: str
    amount_base_units: str
    note: str | None
    status: str
    status_reason: str | None
    intent_digest: str
    policy_version: int | None
    policy_rule: str | None
    approvals_needed: dict[str, int]
    approval_deadline: int | None
    approvals: tuple[ApprovalView, ...]
    nonce: int | None
    digest: str | None
    signature: str | None
    signed_payload: str | None
    tx_hash: str | None
    confirmations: int
    block_number: int | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    version: int


def transfer_context(uow: UnitOfWork, row: Transaction) -> tuple[Asset, Network, WalletAddress]:
    wallet = WalletRepository(uow.session, row.workspace_id).get(row.wallet_id)
    assert wallet is not None
    asset = AssetRepository(uow.session, row.workspace_id).get(wallet.asset_id)
    assert asset is not None
    network = NetworkRepository(uow.session, row.workspace_id).get(asset.network_id)
    assert network is not None
    source = WalletRepository(uow.session, row.workspace_id).address(row.source_address_id)
    assert source is not None
    return asset, network, source


def view_of(
    uow: UnitOfWork,
    row: Transaction,
    *,
    context: tuple[Asset, Network, WalletAddress] | None = None,
    created: bool = False,
    now: int | None = None,
) -> TransactionView:
    """A snapshot of ``row`` with its approvals (``created``: the caller has just
    created it, so it has none), its ``context`` read unless given; the approvals still
    needed count the statements alive at ``now`` (default: the wall clock)."""
    asset, network, source = context if context is not None else transfer_context(uow, row)
    approvals = (
        () if created else TransactionRepository(uow.session, row.workspace_id).approvals(row.id)
    )
    needed: dict[str, int] = {}
    if row.policy_evaluation:
        evaluation = json.loads(row.policy_evaluation).get("evaluation", {})
        needed = dict(evaluation.get("approvals_needed") or {})
    if row.status is TransactionStatus.PENDING_APPROVAL and approvals:
        at = int(time.time()) if now is None else now
        needed = _still_needed(uow, row, approvals, at) or needed
    intent = transfer_intent(row, network, asset, source)
    return TransactionView(
        id=row.id,
        workspace_id=row.workspace_id,
        vault_id=row.vault_id,
        wallet_id=row.wallet_id,
        source_address=source.address,
        network=network.name,
        intent_network=intent.network,
        asset=asset.symbol,
        intent_asset=intent.asset,
        asset_decimals=amount_decimals(network, asset),
        operation=row.operation,
        destination=row.destination,
        amount=row.amount,
        amount_base_units=row.amount_base_units,
        note=row.note,
        status=row.status.value,
        status_reason=row.status_reason,
        intent_digest=row.intent_digest,
        policy_version=row.policy_version,
        policy_rule=row.policy_rule,
        approvals_needed=needed if row.status is TransactionStatus.PENDING_APPROVAL else {},
        approval_deadline=row.approval_deadline,
        approvals=tuple(
            ApprovalView(a.approver, a.decision, a.policy_version, a.signed_at, a.created_at)
            for a in approvals
        ),
        nonce=row.nonce,
        digest=row.digest,
        signature=row.signature,
        signed_payload=row.signed_payload,
        tx_hash=row.tx_hash,
        confirmations=row.confirmations,
        block_number=row.block_number,
        created_at=row.created_at,
        updated_at=row.updated_at,
        completed_at=row.completed_at,
        version=row.version,
    )


def stored_statements(approvals: Sequence[Approval], digest: bytes) -> list[SignedApproval]:
    """The stored statements over ``digest`` as the policy reads them, without the
    format v1 ones (no ``signed_at``), which count nowhere."""
    return [
        SignedApproval(
            a.approver,
            digest,
            ApprovalVerdict(a.decision),
            a.policy_version,
            UnixSeconds(a.signed_at),
            bytes.fromhex(a.signature),
        )
        for a in approvals
        if a.signed_at is not None
    ]


def _still_needed(
    uow: UnitOfWork, row: Transaction, approvals: Sequence[Approval], now: int
) -> dict[str, int] | None:
    """Approvals each group still needs, counting the statements given so far that are
    alive at ``now``."""
    if row.policy_version is None or row.policy_rule is None:
        return None
    bundle = bundle_for_version(uow, row.workspace_id, row.policy_version)
    rule = (
        None
        if bundle is None
        else next((r for r in bundle.policy.rules if r.name == row.policy_rule), None)
    )
    if bundle is None or rule is None or rule.approvals is None:
        return None
    digest = bytes.fromhex(row.intent_digest)
    statements = stored_statements(approvals, digest)
    counted = tally(bundle.policy, rule.approvals, digest, statements, now=now)
    return {g.group: g.missing for g in counted.groups if g.missing}


def amount_decimals(network: Network, asset: Asset) -> int:
    """The decimals :func:`_parse_amount` reads an amount of ``asset`` with."""
    if network.kind is NetworkKind.BITCOIN:
        return BITCOIN_DECIMALS
    if network.kind is NetworkKind.EVM and asset.kind is AssetKind.NATIVE:
        return ETHER_DECIMALS
    return asset.decimals


def _parse_amount(network: Network, asset: Asset, amount: str) -> int:
    try:
        if network.kind is NetworkKind.BITCOIN:
            # BTC with at most eight decimals, read exactly into satoshi.
            value = parse_token_amount(amount, BITCOIN_DECIMALS, field="amount")
        elif network.kind is NetworkKind.EVM and asset.kind is AssetKind.NATIVE:
            value = int(parse_ether(amount, field="amount"))
        else:
            value = parse_token_amount(amount, asset.decimals, field="amount")
    except ChainError as exc:
        raise ValidationError("amount", exc.reason) from None
    if value <= 0:
        raise ValidationError("amount", "must be more than zero")
    return value


BITCOIN_DECIMALS = 8
"""BTC amounts are exact to the satoshi (1e-8 BTC)."""

ETHER_DECIMALS = 18
"""Native EVM amounts are exact to the wei (1e-18 ether, what ``parse_ether`` reads)."""

BITCOIN_NETWORK_NAMES = frozenset({"bitcoin", "testnet", "signet", "regtest"})
"""The names a Bitcoin network must be configured under to send from it: the names
co-signers accept as ``metadata.network`` (the service passes the workspace's network
name, :func:`intent_network`), and the names the wallet addresses are encoded for."""


def bitcoin_network(network: Network) -> BitcoinNetwork:
    """The Bitcoin network a workspace network of kind bitcoin stands for.

    Raises:
        ValidationError: the network is not named one of :data:`BITCOIN_NETWORK_NAMES`.
    """
    if network.name not in BITCOIN_NETWORK_NAMES:
        raise ValidationError(
            "network",
            f"a Bitcoin network must be named one of {sorted(BITCOIN_NETWORK_NAMES)} to send "
            f"from it (co-signers check the name), not {network.name!r}",
        )
    return BitcoinNetwork.from_name(network.name)


def _parse_bitcoin_destination(network: Network, destination: str) -> str:
    """An address of ``network`` that shardvault can pay, in its canonical form (what a
    co-signer reads back from the output script, so the intent digests agree).

    Raises:
        ValidationError: the network is not named as co-signers expect.
        ChainError: malformed, of another network, or a script that cannot be sized.
    """
    btc_network = bitcoin_network(network)
    script = script_pubkey_for_address(destination, btc_network, field="destination")
    if classify(script) not in PAYABLE_SCRIPTS:
        raise UnsupportedError("cannot pay this kind of output script", field="destination")
    canonical = address_from_script(script, btc_network)
    if canonical is None:
        raise UnsupportedError("not a standard address", field="destination")
    return canonical


def _parse_destination(network: Network, destination: str) -> str:
    try:
        if network.kind is NetworkKind.EVM:
            return parse_address(destination, field="destination").checksummed
        if network.kind is NetworkKind.SOLANA:
            return str(Pubkey.from_base58(destination, field="destination"))
        if network.kind is NetworkKind.BITCOIN:
            return _parse_bitcoin_destination(network, destination)
    except ChainError as exc:
        raise ValidationError("destination", exc.reason) from None
    raise ValidationError("destination", f"{network.kind.value} transfers are not supported yet")


@dataclass(frozen=True)
class PreparedTransfer:
    """A transfer request checked against the workspace's rows (:func:`prepare_transfer`),
    ready to be written by :func:`submit_transfer`."""

    wallet: Wallet
    asset: Asset
    network: Network
    source: WalletAddress
    destination: str
    amount: str
    base_units: int
    note: str | None


def prepare_transfer(
    uow: UnitOfWork,
    principal: Principal,
    *,
    wallet_id: str,
    destination: str,
    amount: str,
    note: str | None = None,
    source_index: int = 0,
) -> PreparedTransfer:
    """Check a transfer request; reads only, so it may run on a read-only snapshot
    before the write transaction (wallets, assets, networks and addresses are never
    deleted, so what it read still holds when :func:`submit_transfer` writes).

    Raises:
        Forbidden: the role may not create transactions.
        NotFound: no such wallet or source address.
        ValidationError: a bad destination (checksum, format), amount or note.
    """
    require(principal, Permission.TRANSACTIONS_CREATE)
    found = WalletRepository(uow.session, principal.workspace_id).with_source(
        wallet_id, source_index
    )
    if found is None:
        raise NotFound("wallet", wallet_id)
    wallet, asset, network, source = found
    if source is None:
        raise NotFound("address", f"{wallet_id}/{source_index}")
    checked_destination = _parse_destination(network, destination)
    base_units = _parse_amount(network, asset, amount)
    if note is not None and (len(note) > 500 or any(ord(c) < 32 for c in note)):
        raise ValidationError("note", "at most 500 characters, no control characters")
    return PreparedTransfer(
        wallet, asset, network, source, checked_destination, amount, base_units, note
    )


def submit_transfer(
    uow: UnitOfWork,
    principal: Principal,
    prepared: PreparedTransfer,
    *,
    signed: SignedCreateRequest | None = None,
) -> TransactionView:
    """Write a prepared transfer and queue it for the pipeline (its audit and webhook
    events in the same transaction). ``signed`` is the create request as its initiator
    signed it, kept for the co-signers (:mod:`.initiator_requests`).

    Raises:
        Forbidden: the role may not create transactions.
    """
    require(principal, Permission.TRANSACTIONS_CREATE)
    wallet, asset, network, source = (
        prepared.wallet,
        prepared.asset,
        prepared.network,
        prepared.source,
    )
    repo = TransactionRepository(uow.session, principal.workspace_id)
    row = Transaction(
        vault_id=wallet.vault_id,
        wallet_id=wallet.id,
        source_address_id=source.id,
        operation="transfer",
        destination=prepared.destination,
        amount=prepared.amount,
        amount_base_units=str(prepared.base_units),
        note=prepared.note,
        initiator_user_id=principal.user_id,
        initiator_api_key_id=principal.api_key_id,
        status=TransactionStatus.SUBMITTED,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    row.id = new_id()
    row.workspace_id = principal.workspace_id
    row.intent_digest = policy_intent_digest(transfer_intent(row, network, asset, source)).hex()
    repo.add(row)
    if signed is not None:
        keep_initiator_request(uow, row, principal, signed)
    WorkQueue(uow.session).enqueue(principal.workspace_id, row.id)
    uow.after_commit(work_committed)
    emit_status(uow, row, previous=None, event_type=webhooks.TRANSACTION_CREATED)
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action="transaction.submitted",
        resource_type="transaction",
        resource_id=row.id,
        details={
            "wallet_id": wallet.id,
            "source": source.address,
            "destination": prepared.destination,
            "asset": asset.symbol,
            "amount": str(prepared.base_units),
            "intent_digest": row.intent_digest,
        },
    )
    return view_of(uow, row, context=(asset, network, source), created=True)


def create_transaction(
    uow: UnitOfWork,
    principal: Principal,
    *,
    wallet_id: str,
    destination: str,
    amount: str,
    note: str | None = None,
    source_index: int = 0,
    signed: SignedCreateRequest | None = None,
) -> TransactionView:
    """Validate a transfer and queue it for the pipeline, in one unit of work
    (:func:`prepare_transfer` then :func:`submit_transfer`, keeping ``signed``).

    Raises:
        Forbidden: the role may not create transactions.
        NotFound: no such wallet or source address.
        ValidationError: a bad destination (checksum, format), amount or note.
    """
    prepared = prepare_transfer(
        uow,
        principal,
        wallet_id=wallet_id,
        destination=destination,
        amount=amount,
        note=note,
        source_index=source_index,
    )
    return submit_transfer(uow, principal, prepared, signed=signed)


def get_transaction(uow: UnitOfWork, principal: Principal, transaction_id: str) -> TransactionView:
    """One transaction of the workspace.

    Raises:
        Forbidden, NotFound.
    """
    require(principal, Permission.TRANSACTIONS_READ)
    row = TransactionRepository(uow.session, principal.workspace_id).get(transaction_id)
    if row is None:
        raise NotFound("transaction", transaction_id)
    return view_of(uow, row)


def list_transactions(
    uow: UnitOfWork,
    principal: Principal,
    *,
    limit: int = 50,
    cursor: str | None = None,
    status: str | None = None,
) -> Page[TransactionView]:
    """A page of the workspace's transactions, in id order.

    Raises:
        Forbidden, ValidationError (limit, cursor, status).
    """
    require(principal, Permission.TRANSACTIONS_READ)
    size = page_size(limit)
    wanted = None
    if status is not None:
        try:
            wanted = TransactionStatus(status)
        except ValueError:
            raise ValidationError("status", f"unknown status {status!r}") from None
    rows = TransactionRepository(uow.session, principal.workspace_id).list(
        limit=size + 1, after_id=decode_cursor(cursor), status=wanted
    )
    return page_of(rows, size, lambda r: view_of(uow, r), lambda item: encode_cursor(item.id))


def cancel_transaction(
    uow: UnitOfWork, principal: Principal, transaction_id: str, *, reason: str | None = None
) -> TransactionView:
    """Cancel a transaction that has not started signing.

    Raises:
        Forbidden, NotFound, Conflict (signing has started or it is finished).
    """
    require(principal, Permission.TRANSACTIONS_CREATE)
    repo = TransactionRepository(uow.session, principal.workspace_id)
    row = repo.get(transaction_id, lock=True)
    if row is None:
        raise NotFound("transaction", transaction_id)
    if row.status not in CANCELLABLE:
        raise Conflict(
            f"transaction {transaction_id!r} is {row.status.value} and cannot be cancelled"
        )
    context = transfer_context(uow, row)
    move(
        uow,
        row,
        TransactionStatus.CANCELLED,
        flow=FLOWS[context[1].kind],
        cause=Cause.CANCEL,
        actor=principal.actor,
        reason=reason or "cancelled by request",
        flush=True,
    )
    return view_of(uow, row, context=context)


def bundle_for_version(uow: UnitOfWork, workspace_id: str, version: int) -> PolicyBundle | None:
    """The activated bundle with ``version`` (the one a transaction was evaluated under)."""
    for row in PolicyRepository(uow.session, workspace_id).chain():
        if row.version == version and row.bundle is not None:
            return parse_bundle(json.loads(row.bundle))
    return None


def submit_approval(
    uow: UnitOfWork,
    principal: Principal,
    transaction_id: str,
    *,
    approver: str,
    decision: str,
    policy_version: int,
    signed_at: int,
    signature: str,
    now: int,
) -> TransactionView:
    """Record an approver's signed statement and settle the transaction when it can.

    The statement must name the caller (its ``approver`` is the caller's email, the
    member id policies use) and must count under the policy the transaction was
    evaluated with, at ``now`` (the service's clock): ``signed_at`` neither in the
    future nor past the rule's deadline from it, nor before the transaction was created
    (less the clock skew allowed). It is verified here, before anything is stored. When
    the deciding rule's groups are complete with statements alive at ``now``, the
    transaction becomes ``approved`` and is queued; an eligible rejection makes it
    ``rejected``.

    Raises:
        Forbidden: the role may not approve, or the statement names someone else.
        ApprovalRefused: the statement does not count (the policy package's typed error
            is in the message).
        NotFound, Conflict (not awaiting approval, or this approver already answered),
        ValidationError (malformed signature or decision).
    """
    require(principal, Permission.TRANSACTIONS_APPROVE)
    user = uow.users(principal.workspace_id).get(principal.user_id)
    assert user is not None
    if approver != user.email:
        raise Forbidden("an approval statement must name the caller (their email)")
    try:
        verdict = ApprovalVerdict(decision)
    except ValueError:
        raise ValidationError("decision", "must be approve or reject") from None
    try:
        raw_signature = bytes.fromhex(signature)
    except ValueError:
        raise ValidationError("signature", "expected hex") from None
    repo = TransactionRepository(uow.session, principal.workspace_id)
    row = repo.get(transaction_id, lock=True)
    if row is None:
        raise NotFound("transaction", transaction_id)
    if row.status is not TransactionStatus.PENDING_APPROVAL:
        raise Conflict(
            f"transaction {transaction_id!r} is {row.status.value}, not pending_approval"
        )
    assert row.policy_version is not None
    assert row.policy_rule is not None
    bundle = bundle_for_version(uow, principal.workspace_id, row.policy_version)
    assert bundle is not None
    policy = bundle.policy
    rule = next(r for r in policy.rules if r.name == row.policy_rule)
    assert rule.approvals is not None
    digest = bytes.fromhex(row.intent_digest)
    statement = SignedApproval(
        approver, digest, verdict, policy_version, UnixSeconds(signed_at), raw_signature
    )
    groups = frozenset(g.group for g in rule.approvals.groups)
    try:
        verify_approval(
            policy,
            statement,
            digest=digest,
            groups=groups,
            now=now,
            deadline_seconds=rule.approvals.deadline_seconds,
        )
    except ApprovalError as exc:
        raise ApprovalRefused(f"{type(exc).__name__}: {exc}") from None
    created = int(row.created_at.timestamp())
    if signed_at < created - APPROVAL_MAX_SKEW_SECONDS:
        # Its lifetime would end before the transaction's own deadline.
        raise ApprovalRefused(
            f"signed_at {signed_at} is before transaction {row.id!r} was created ({created})"
        )
    initiator = uow.users(principal.workspace_id).get(row.initiator_user_id)
    if initiator is not None and initiator.email == approver:
        raise ApprovalRefused(f"SelfApprovalError: {approver!r} initiated this transaction")
    stored = repo.add_approval(
        Approval(
            id=new_id(),
            transaction_id=row.id,
            approver=approver,
            decision=verdict.value,
            policy_version=policy_version,
            signed_at=signed_at,
            signature=raw_signature.hex(),
            api_key_id=principal.api_key_id,
            created_at=utcnow(),
        )
    )
    if not stored:
        raise Conflict(f"{approver!r} already answered for this transaction")
    uow.audit.append(
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        action=f"transaction.{verdict.value}",
        resource_type="transaction",
        resource_id=row.id,
        details={"approver": approver, "policy_version": policy_version, "signed_at": signed_at},
    )
    counted = tally(
        policy,
        rule.approvals,
        digest,
        stored_statements(repo.approvals(row.id), digest),
        now=now,
        initiator=initiator.email if initiator is not None else None,
    )
    context = transfer_context(uow, row)
    flow = FLOWS[context[1].kind]
    if row.approval_deadline is not None and now > row.approval_deadline:
        _settle(uow, principal, row, flow, TransactionStatus.REJECTED, "approval deadline passed")
    elif counted.rejected_by:
        _settle(
            uow,
            principal,
            row,
            flow,
            TransactionStatus.REJECTED,
            f"rejected by {', '.join(counted.rejected_by)}",
        )
    elif counted.satisfied:
        _settle(uow, principal, row, flow, TransactionStatus.APPROVED, "approvals complete")
        WorkQueue(uow.session).enqueue(principal.workspace_id, row.id)
        uow.after_commit(work_committed)
    return view_of(uow, row, context=context, now=now)


def _settle(
    uow: UnitOfWork,
    principal: Principal,
    row: Transaction,
    flow: Flow,
    status: TransactionStatus,
    reason: str,
) -> None:
    move(
        uow,
        row,
        status,
        flow=flow,
        cause=Cause.APPROVAL,
        actor=principal.actor,
        reason=reason,
        details={
            "decision": Decision.ALLOW.value
            if status is TransactionStatus.APPROVED
            else Decision.BLOCK.value,
        },
        flush=True,
    )


def vault_name(uow: UnitOfWork, workspace_id: str, vault_id: str) -> str:
    vault = VaultRepository(uow.session, workspace_id).get(vault_id)
    assert vault is not None
    return vault.name
