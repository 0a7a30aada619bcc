"""System Program instructions: transfer.

The System Program's instructions are a little-endian u32 discriminant followed by the
fields (Solana ``SystemInstruction``, bincode layout); ``Transfer`` is discriminant 2 with
a u64 lamport amount, and its accounts are the funding account (signer, writable) and the
recipient (writable).
"""

from shardvault.chains.amounts import UINT64_MAX, Lamports, lamports, parse_decimal_amount
from shardvault.chains.solana.address import SYSTEM_PROGRAM_ID
from shardvault.chains.solana.models import AccountMeta, Instruction, Pubkey

TRANSFER = 2
"""``SystemInstruction::Transfer``."""

SOL_DECIMALS = 9
"""One SOL is 10**9 lamports."""

SYSTEM_INSTRUCTION_NAMES = {
    0: "create_account",
    1: "assign",
    2: "transfer",
    3: "create_account_with_seed",
    4: "advance_nonce_account",
    5: "withdraw_nonce_account",
    6: "initialize_nonce_account",
    7: "authorize_nonce_account",
    8: "allocate",
    9: "allocate_with_seed",
    10: "assign_with_seed",
    11: "transfer_with_seed",
    12: "upgrade_nonce_account",
}
"""Names of the System Program's instructions by discriminant, for display."""


def parse_sol_amount(text: str, *, field: str = "amount") -> Lamports:
    """Parse a SOL amount such as ``"1.5"`` into lamports, exactly.

    Raises:
        InvalidAmountError: not a plain non-negative decimal, more than 9 decimals, or
            above 2**64 - 1 lamports; the error names ``field``.
    """
    return Lamports(parse_decimal_amount(text, SOL_DECIMALS, maximum=UINT64_MAX, field=field))


def transfer(source: Pubkey, destination: Pubkey, amount: Lamports | int) -> Instruction:
    """A System Program transfer of ``amount`` lamports.

    Raises:
        InvalidAmountError: negative or above 2**64 - 1.
    """
    value = lamports(amount)
    data = TRANSFER.to_bytes(4, "little") + value.to_bytes(8, "little")
    return Instruction(
        SYSTEM_PROGRAM_ID,
        (AccountMeta(source, True, True), AccountMeta(destination, False, True)),
        data,
    )
