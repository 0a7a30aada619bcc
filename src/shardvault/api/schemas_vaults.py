"""Request and response bodies of the custody routes: networks, assets, vaults, wallets,
addresses, transactions, approvals, policies and the address book (pydantic, API edge)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shardvault.policy.approvals import MAX_SIGNED_AT

SchemeName = Literal["ecdsa-secp256k1", "eddsa-ed25519", "schnorr-bip340"]


def _default_schemes() -> list[SchemeName]:
    return ["ecdsa-secp256k1"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class NetworkIn(_In):
    name: str = Field(min_length=1, max_length=64)
    kind: Literal["evm", "bitcoin", "solana"]
    chain_id: int | None = Field(
        default=None,
        ge=1,
        description="An EVM network's EIP-155 chain id: any valid one (the co-signers "
        "accept it once the admin quorum lists it in a policy bundle's asset registry).",
    )
    rpc_url: str | None = Field(
        default=None, max_length=2048, description="The network's node (or give rpc_urls)."
    )
    rpc_urls: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=8,
        description="An EVM network's nodes, tried in order when one cannot be reached "
        "(instead of rpc_url).",
    )
    broadcast_url: str | None = Field(
        default=None,
        max_length=2048,
        description="An EVM network's private endpoint that alone receives signed "
        "transactions (eth_sendRawTransaction), against front-running.",
    )
    native_symbol: str | None = Field(
        default=None,
        max_length=32,
        description="An EVM network's native coin (default: a well-known chain id's, "
        "else ETH; a well-known chain id keeps its own).",
    )
    fee_model: Literal["eip1559", "legacy"] | None = Field(
        default=None,
        description="An EVM network's fee model: eip1559 (the default); legacy gas-price "
        "networks are refused (400): the pipeline builds EIP-1559 transactions only.",
    )
    required_confirmations: int = Field(default=1, ge=1, le=1000)


class NetworkOut(_Out):
    id: str
    name: str
    kind: str
    chain_id: int | None
    coin_type: int
    rpc_url: str | None
    required_confirmations: int
    rpc_urls: list[str]
    broadcast_url: str | None
    native_symbol: str | None
    native_decimals: int
    fee_model: str | None


class AssetIn(_In):
    symbol: str = Field(min_length=1, max_length=32)
    network: str = Field(min_length=1, max_length=64)
    kind: Literal["native", "erc20"] = "native"
    contract: str | None = Field(default=None, max_length=128)
    decimals: int | None = Field(default=None, ge=0, le=36)
    price: str | None = Field(default=None, max_length=64)


class AssetOut(_Out):
    id: str
    symbol: str
    network: str
    kind: str
    contract: str | None
    decimals: int
    price: str | None


class VaultIn(_In):
    name: str = Field(min_length=1, max_length=64)
    schemes: list[SchemeName] = Field(default_factory=_default_schemes, min_length=1)
    min_signers: int = Field(
        default=2,
        ge=2,
        le=16,
        description="Co-signers needed to sign: 2 to max_signers (a 1-of-n MPC key would "
        "let any single share sign).",
    )
    max_signers: int = Field(
        default=3,
        ge=2,
        le=16,
        description="Co-signers holding a share: what the server's signing backend has "
        "(3 with the embedded co-signers); another value is refused.",
    )


class VaultKeyOut(_Out):
    scheme: str
    public_key: str
    chain_code: str
    min_signers: int
    max_signers: int
    cosigners: list[str]
    backend: str
    quorums_overlap: bool
    """Whether any two quorums share a co-signer (2 * min_signers > max_signers)."""
    warning: str | None
    """Why the threshold is weaker, when quorums can be disjoint."""


class VaultOut(_Out):
    id: str
    name: str
    number: int
    custody_mode: str
    keys: list[VaultKeyOut]
    created_at: datetime


class VaultPage(BaseModel):
    data: list[VaultOut]
    next_cursor: str | None


class SchemeProgressOut(_Out):
    scheme: str
    steps_done: int
    steps_total: int


class VaultCreationOut(_Out):
    """How far a vault request's key generations have come (steps: rounds sent and
    results given by the co-signers). ``attempts`` counts the runs of its key
    generations (a restart of the server runs them again); ``error`` says why a
    ``failed`` one failed."""

    idempotency_key: str
    vault_id: str
    state: Literal["generating", "finished", "failed"]
    schemes: list[SchemeProgressOut]
    steps_done: int
    steps_total: int
    elapsed_s: float
    attempts: int = 1
    error: str | None = None


class WalletIn(_In):
    vault_id: str = Field(min_length=1, max_length=64)
    asset: str = Field(min_length=1, max_length=32)


class AttestationIdentityOut(_Out):
    """A co-signer's public identity (Ed25519 signing key, X25519 key, their binding)."""

    signing_key: str
    encryption_key: str
    binding: str


class AddressStatementOut(_Out):
    """What one co-signer signed: the address of the key at the path, as it derived it
    (docs/cosigner.md, "Attested addresses")."""

    format: str
    workspace: str
    party: int
    vault: str
    key_id: str
    scheme: str
    root_public_key: str
    chain_code: str
    min_signers: int
    max_signers: int
    path: str
    public_key: str
    encoding: str
    address: str


class AttestationOut(_Out):
    """One co-signer's signed attestation: verify ``signature`` over
    ``"shardvault/cosigner/address-attestation/v1\\0" || canonical JSON of statement``
    under ``identity.signing_key``, after checking the identity's fingerprint against
    the one pinned for ``party``."""

    party: int
    fingerprint: str
    identity: AttestationIdentityOut
    statement: AddressStatementOut
    signature: str


class AddressOut(_Out):
    id: str
    wallet_id: str
    vault_id: str
    index: int
    path: str
    scheme: str
    address: str
    public_key: str
    created_at: datetime
    attestations: list[AttestationOut] = Field(
        description="What the co-signers signed about this address; count them against "
        "the co-signers you pinned, not the server's word (the SDK's verified_address)."
    )
    attested: bool = Field(
        description="The server's own count: at least min_signers co-signers attested."
    )


class WalletOut(_Out):
    id: str
    vault_id: str
    asset: str
    network: str
    addresses: list[AddressOut]
    created_at: datetime


class WalletList(BaseModel):
    data: list[WalletOut]


class TransactionIn(_In):
    wallet_id: str = Field(min_length=1, max_length=64)
    destination: str = Field(min_length=1, max_length=128)
    amount: str = Field(min_length=1, max_length=80, description="Decimal, in whole units.")
    note: str | None = Field(default=None, max_length=500)
    source_index: int = Field(default=0, ge=0, le=(1 << 31) - 1)


class CancelIn(_In):
    reason: str | None = Field(default=None, max_length=500)


class ApprovalIn(_In):
    approver: str = Field(min_length=1, max_length=200, description="The caller's email.")
    decision: Literal["approve", "reject"]
    policy_version: int = Field(ge=1)
    signed_at: int = Field(
        ge=0,
        le=MAX_SIGNED_AT,
        description="When the approver signed (Unix seconds, their clock); signed, and "
        "the statement's lifetime counts from it.",
    )
    signature: str = Field(min_length=2, max_length=260, description="Hex.")


class ApprovalOut(_Out):
    approver: str
    decision: str
    policy_version: int
    signed_at: int | None = Field(
        description="The statement's signed time; null for a statement of format v1, "
        "which counts nowhere."
    )
    created_at: datetime


class TransactionOut(_Out):
    id: str
    workspace_id: str = Field(description="Part of the intent approvers sign.")
    vault_id: str
    wallet_id: str
    source_address: str
    network: str = Field(description="The workspace's name for the network.")
    intent_network: str = Field(
        description="The network as the intent names it (an EVM chain by its registered name)."
    )
    asset: str = Field(description="The asset's symbol in this workspace.")
    intent_asset: str = Field(
        description="The asset as the intent names it (an ERC-20 token by its contract)."
    )
    asset_decimals: int = Field(description="``amount`` is ``amount_base_units`` / 10^this.")
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
    approvals: list[ApprovalOut]
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


class ReplacementIn(_In):
    mode: Literal["speed_up", "cancel"] = Field(
        description="``speed_up``: the same transfer at the same nonce (coins) with a "
        "higher fee. ``cancel`` (EVM): a transfer of nothing to the source at the same "
        "nonce, so the transfer can never be mined."
    )


class ReplacementOut(_Out):
    id: str
    transaction_id: str
    seq: int = Field(description="1 for the first replacement of the transaction, and so on.")
    mode: str
    status: str = Field(
        description="requested, signed, sent, mined, superseded (another version was "
        "mined, or the transaction ended) or failed."
    )
    status_reason: str | None
    replaces_tx_hash: str = Field(description="The version it was built to replace.")
    tx_hash: str | None
    fee: dict[str, object] | None = Field(
        description="What it pays: EVM fee caps in wei, or a Bitcoin fee in satoshi."
    )
    signing_attempts: int
    created_at: datetime
    updated_at: datetime


class ReplacementList(BaseModel):
    data: list[ReplacementOut]


class TransactionPage(BaseModel):
    data: list[TransactionOut]
    next_cursor: str | None


class PolicyIn(_In):
    document: dict[str, object] | None = None
    text: str | None = Field(default=None, max_length=200_000)
    format: Literal["yaml", "json"] = "yaml"


class DryRunIn(_In):
    request: dict[str, object]
    now: int | None = None
    prices: dict[str, str] | None = None


class ProposeIn(_In):
    admins: dict[str, object] | None = None
    cosigners: list[int] | None = Field(
        default=None,
        max_length=64,
        description="Paired co-signers (party ids) the bundle's co-signer directory lists; "
        "default: every paired co-signer (docs/cosigner.md, 'Pairing').",
    )
    initiators: dict[str, object] | None = Field(
        default=None,
        description="The bundle's initiators section: which API key speaks for which "
        "initiator (docs/policy.md, 'Signed inputs'); default: the previous bundle's.",
    )
    initiators_from_api_keys: bool = Field(
        default=False,
        description="Fill the initiators section from the workspace's API keys that may "
        "create transactions (by user email); the admins compare it before they sign.",
    )
    assets: dict[str, object] | None = Field(
        default=None,
        description="The asset registry the bundle carries (networks, assets, decimals, "
        "static prices, price keys; docs/policy.md, 'Asset registry'); default: built from "
        "the workspace's networks and assets.",
    )


class PolicySignatureIn(_In):
    signer: str = Field(min_length=1, max_length=200)
    signature: str = Field(min_length=2, max_length=300)


class PolicyOut(_Out):
    id: str
    version: int
    status: str
    document: dict[str, object]
    bundle: dict[str, object] | None
    signing_message: str | None
    bundle_hash: str | None
    created_at: datetime
    activated_at: datetime | None


class PolicyList(BaseModel):
    data: list[PolicyOut]


class AddressBookIn(_In):
    name: str = Field(min_length=1, max_length=128)
    network: str = Field(min_length=1, max_length=64)
    address: str = Field(min_length=1, max_length=128)
    whitelists: list[str] = Field(default_factory=list, max_length=50)


class AddressBookEntryOut(_Out):
    id: str
    name: str
    network: str
    address: str
    whitelists: list[str]
    created_at: datetime


class AddressBookList(BaseModel):
    data: list[AddressBookEntryOut]


class PriceReportIn(_In):
    """A signed price report in transport form (docs/policy.md, "Prices")."""

    report: dict[str, object]
    signer: str = Field(min_length=1, max_length=64)
    signature: str = Field(min_length=2, max_length=300)


class PriceReportOut(_Out):
    network: str
    asset: str
    signer: str
    price: str
    currency: str
    observed_at: int
    received_at: datetime
    report: dict[str, object]


class PriceReportList(BaseModel):
    data: list[PriceReportOut]
