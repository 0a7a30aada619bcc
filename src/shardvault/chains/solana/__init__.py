"""Solana: system and SPL token transfers, legacy and v0 messages, Ed25519 signatures (pure).

A transfer is compiled into a message (the exact bytes every signer signs); a 64-byte
Ed25519 signature made elsewhere (an MPC quorum, an HSM) is verified and attached to
produce the wire transaction; wire transactions and messages parse back into accounts,
decoded instructions and signatures. Each submodule names the part of the Solana
specification it implements.
"""

from shardvault.chains.solana.address import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    associated_token_address,
    create_program_address,
    find_program_address,
    is_on_curve,
)
from shardvault.chains.solana.compute_budget import (
    COMPUTE_BUDGET_PROGRAM_ID,
    LAMPORTS_PER_SIGNATURE,
    ComputeBudget,
    priority_fee_lamports,
    read_compute_budget,
    set_compute_unit_limit,
    set_compute_unit_price,
)
from shardvault.chains.solana.encode import (
    attach_signature,
    compile_legacy_message,
    compile_v0_message,
    parse_message,
    parse_transaction,
    serialize_message,
    serialize_transaction,
    unsigned_transaction,
    verify_signature,
    verify_transaction,
)
from shardvault.chains.solana.models import (
    AccountMeta,
    AddressTableLookup,
    CompiledInstruction,
    Instruction,
    LegacyMessage,
    Message,
    MessageHeader,
    MessageV0,
    Pubkey,
    Transaction,
    blockhash_from_base58,
)
from shardvault.chains.solana.parse import describe, describe_message, describe_transaction

__all__ = [
    "ASSOCIATED_TOKEN_PROGRAM_ID",
    "COMPUTE_BUDGET_PROGRAM_ID",
    "LAMPORTS_PER_SIGNATURE",
    "SYSTEM_PROGRAM_ID",
    "TOKEN_2022_PROGRAM_ID",
    "TOKEN_PROGRAM_ID",
    "AccountMeta",
    "AddressTableLookup",
    "CompiledInstruction",
    "ComputeBudget",
    "Instruction",
    "LegacyMessage",
    "Message",
    "MessageHeader",
    "MessageV0",
    "Pubkey",
    "Transaction",
    "associated_token_address",
    "attach_signature",
    "blockhash_from_base58",
    "compile_legacy_message",
    "compile_v0_message",
    "create_program_address",
    "describe",
    "describe_message",
    "describe_transaction",
    "find_program_address",
    "is_on_curve",
    "parse_message",
    "parse_transaction",
    "priority_fee_lamports",
    "read_compute_budget",
    "serialize_message",
    "serialize_transaction",
    "set_compute_unit_limit",
    "set_compute_unit_price",
    "unsigned_transaction",
    "verify_signature",
    "verify_transaction",
]
