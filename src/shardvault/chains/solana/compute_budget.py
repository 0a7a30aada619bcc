"""Compute Budget program instructions: compute-unit limit and priority fee.

A transaction's prioritization fee is ``compute_unit_limit * compute_unit_price`` (in
micro-lamports per compute unit), set by two Compute Budget instructions that take no
accounts (Solana ``ComputeBudgetInstruction``, Borsh layout): ``SetComputeUnitLimit`` is
tag 2 with a u32, ``SetComputeUnitPrice`` tag 3 with a u64. A co-signer reading a message
sees these so that the fee it approves is the fee paid.

:func:`read_compute_budget` reads them from a message the way the runtime does
(Agave ``compute-budget-instruction``, ``process_compute_budget_instructions``): at most
one of each (the runtime refuses a transaction with two). Without a
``SetComputeUnitLimit`` the runtime grants a default limit, by one of two rules
depending on its version: 200,000 units per instruction that is not a Compute Budget
one, or (``reserve_minimal_cus_for_builtin_instructions``) 3,000 per instruction of a
builtin program, Compute Budget ones included, and 200,000 per other instruction; both
at most 1,400,000. The limit read here is 200,000 per instruction that is not a
Compute Budget one plus 3,000 per Compute Budget instruction, at most 1,400,000: never
below either rule's, so the fee computed from it is never below the fee charged. The
other Compute Budget instructions (``RequestHeapFrame``, ``SetLoadedAccountsDataSizeLimit``,
the deprecated tag 0 and any later one) are refused rather than guessed at, as is a
limit above the runtime's maximum.
"""

from dataclasses import dataclass

from shardvault.chains.errors import DecodeError, InvalidAmountError, UnsupportedError
from shardvault.chains.solana.models import Instruction, Message, Pubkey

COMPUTE_BUDGET_PROGRAM_ID = Pubkey.from_base58("ComputeBudget111111111111111111111111111111")
"""The Compute Budget program."""

SET_COMPUTE_UNIT_LIMIT = 2
"""``ComputeBudgetInstruction::SetComputeUnitLimit``."""

SET_COMPUTE_UNIT_PRICE = 3
"""``ComputeBudgetInstruction::SetComputeUnitPrice``."""

MAX_COMPUTE_UNIT_LIMIT = 1_400_000
"""The most compute units a transaction may request."""

DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT = 200_000
"""Compute units the runtime grants each instruction (other than Compute Budget ones)
of a transaction that sets no limit."""

BUILTIN_INSTRUCTION_COMPUTE_UNIT_LIMIT = 3_000
"""Compute units newer runtimes grant each builtin program's instruction (Compute
Budget ones included) of a transaction that sets no limit."""

LAMPORTS_PER_SIGNATURE = 5_000
"""The base fee: lamports per signature the message requires."""

_DATA_SIZES = {SET_COMPUTE_UNIT_LIMIT: 5, SET_COMPUTE_UNIT_PRICE: 9}
_NAMES = {
    SET_COMPUTE_UNIT_LIMIT: "set_compute_unit_limit",
    SET_COMPUTE_UNIT_PRICE: "set_compute_unit_price",
}


@dataclass(frozen=True, slots=True)
class ComputeBudget:
    """What a message's Compute Budget instructions set, as the runtime reads them.

    ``compute_unit_limit`` is the limit set, or the default when ``limit_is_default``;
    ``compute_unit_price_micro_lamports`` is 0 when no price is set.
    """

    compute_unit_limit: int
    compute_unit_price_micro_lamports: int
    limit_is_default: bool

    @property
    def priority_fee_lamports(self) -> int:
        """ceil(limit * price / 10**6) lamports."""
        return priority_fee_lamports(
            self.compute_unit_limit, self.compute_unit_price_micro_lamports
        )


def decode_compute_budget_instruction(data: bytes, field: str) -> tuple[str, int] | None:
    """The name and value of a ``SetComputeUnitLimit`` or ``SetComputeUnitPrice``
    instruction's data, or ``None`` for any other Compute Budget instruction.

    Raises:
        DecodeError: a limit or price whose data is not 5 or 9 bytes.
    """
    tag = data[0] if data else None
    if tag not in _DATA_SIZES:
        return None
    name = _NAMES[tag]
    if len(data) != _DATA_SIZES[tag]:
        raise DecodeError(
            f"{name} data must be {_DATA_SIZES[tag]} bytes, got {len(data)}", field=field
        )
    return name, int.from_bytes(data[1:], "little")


def read_compute_budget(message: Message) -> ComputeBudget:
    """The compute-unit limit and price ``message`` runs with (module docstring).

    Raises:
        DecodeError: a second limit or price, or a limit or price of the wrong size.
        UnsupportedError: any other Compute Budget instruction.
        InvalidAmountError: a limit above :data:`MAX_COMPUTE_UNIT_LIMIT`.
    """
    found: dict[str, int] = {}
    others = budget = 0
    for i, ix in enumerate(message.instructions):
        if message.account_keys[ix.program_id_index] != COMPUTE_BUDGET_PROGRAM_ID:
            others += 1
            continue
        budget += 1
        field = f"instructions[{i}]"
        decoded = decode_compute_budget_instruction(ix.data, field)
        if decoded is None:
            tag = "without data" if not ix.data else str(ix.data[0])
            raise UnsupportedError(
                f"Compute Budget instruction {tag} is not understood (only "
                "set_compute_unit_limit and set_compute_unit_price are)",
                field=field,
            )
        name, value = decoded
        if name in found:
            raise DecodeError(f"a second {name} (the runtime refuses two)", field=field)
        if name == "set_compute_unit_limit" and value > MAX_COMPUTE_UNIT_LIMIT:
            raise InvalidAmountError(
                f"a compute-unit limit above {MAX_COMPUTE_UNIT_LIMIT} (the runtime's maximum)",
                field=field,
            )
        found[name] = value
    limit = found.get("set_compute_unit_limit")
    default = min(
        others * DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT
        + budget * BUILTIN_INSTRUCTION_COMPUTE_UNIT_LIMIT,
        MAX_COMPUTE_UNIT_LIMIT,
    )
    return ComputeBudget(
        compute_unit_limit=default if limit is None else limit,
        compute_unit_price_micro_lamports=found.get("set_compute_unit_price", 0),
        limit_is_default=limit is None,
    )


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
