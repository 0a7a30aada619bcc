"""Compute Budget program instructions: compute-unit limit and priority fee.

A transaction's prioritization fee is ``compute_unit_limit * compute_unit_price`` (in
micro-lamports per compute unit), set by two Compute Budget instructions that take no
accounts (Solana ``ComputeBudgetInstruction``, Borsh layout): ``SetComputeUnitLimit`` is
tag 2 with a u32, ``SetComputeUnitPrice`` tag 3 with a u64. A co-signer reading a message
sees these so that the fee it approves is the fee paid.
"""

from shardvault.chains.errors import InvalidAmountError
from shardvault.chains.solana.models import Instruction, Pubkey

COMPUTE_BUDGET_PROGRAM_ID = Pubkey.from_base58("ComputeBudget111111111111111111111111111111")
"""The Compute Budget program."""

SET_COMPUTE_UNIT_LIMIT = 2
"""``ComputeBudgetInstruction::SetComputeUnitLimit``."""

SET_COMPUTE_UNIT_PRICE = 3
"""``ComputeBudgetInstruction::SetComputeUnitPrice``."""

MAX_COMPUTE_UNIT_LIMIT = 1_400_000
"""The most compute units a transaction may request."""


def set_compute_unit_limit(units: int) -> Instruction:
    """Request ``units`` compute units for the transaction.

    Raises:
        InvalidAmountError: outside 0..1,400,000 (field ``compute_unit_limit``).
    """
    if not isinstance(units, int) or not 0 <= units <= MAX_COMPUTE_UNIT_LIMIT:
        raise InvalidAmountError("must be between 0 and 1400000", field="compute_unit_limit")
    return Instruction(
        COMPUTE_BUDGET_PROGRAM_ID, (), bytes([SET_COMPUTE_UNIT_LIMIT]) + units.to_bytes(4, "little")
    )


def set_compute_unit_price(micro_lamports: int) -> Instruction:
    """Pay ``micro_lamports`` per compute unit as a priority fee.

    Raises:
        InvalidAmountError: negative or above 2**64 - 1 (field ``compute_unit_price``).
    """
    if not isinstance(micro_lamports, int) or not 0 <= micro_lamports < 2**64:
        raise InvalidAmountError("must be between 0 and 2**64 - 1", field="compute_unit_price")
    return Instruction(
        COMPUTE_BUDGET_PROGRAM_ID,
        (),
        bytes([SET_COMPUTE_UNIT_PRICE]) + micro_lamports.to_bytes(8, "little"),
    )


def priority_fee_lamports(compute_unit_limit: int, micro_lamports_per_unit: int) -> int:
    """The prioritization fee: ceil(limit * price / 10**6) lamports."""
    return -(-compute_unit_limit * micro_lamports_per_unit // 1_000_000)
