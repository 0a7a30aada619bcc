"""SPL Token transfers and associated token account creation.

SPL Token instructions are a one-byte tag followed by packed fields (spl-token
``TokenInstruction::pack``): ``Transfer`` is tag 3 with a u64 amount (accounts: source
writable, destination writable, owner signer); ``TransferChecked`` is tag 12 with a u64
amount and a u8 decimals (accounts: source writable, mint, destination writable, owner
signer), and makes the program check the mint and its decimals, so a co-signer knows what
asset and scale it approves. The Associated Token Account program's ``Create`` (empty
data or tag 0) and ``CreateIdempotent`` (tag 1) take: payer (signer, writable), the
associated account (writable), the wallet, the mint, the System Program and the token
program.
"""

from shardvault.chains.amounts import UINT64_MAX, parse_decimal_amount
from shardvault.chains.errors import InvalidAmountError
from shardvault.chains.solana.address import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    associated_token_address,
)
from shardvault.chains.solana.models import AccountMeta, Instruction, Pubkey

TRANSFER = 3
"""``TokenInstruction::Transfer``."""

TRANSFER_CHECKED = 12
"""``TokenInstruction::TransferChecked``."""

ATA_CREATE = 0
"""``AssociatedTokenAccountInstruction::Create``."""

ATA_CREATE_IDEMPOTENT = 1
"""``AssociatedTokenAccountInstruction::CreateIdempotent``."""


def parse_token_amount(text: str, decimals: int, *, field: str = "amount") -> int:
    """Parse a token amount such as ``"2.5"`` into base units of a mint with ``decimals``.

    Raises:
        InvalidAmountError: not a plain non-negative decimal, more decimals than the
            mint has, or above 2**64 - 1 base units; the error names ``field``.
    """
    if not isinstance(decimals, int) or not 0 <= decimals <= 255:
        raise InvalidAmountError("decimals must be between 0 and 255", field="decimals")
    return parse_decimal_amount(text, decimals, maximum=UINT64_MAX, field=field)


def _amount(amount: int) -> bytes:
    if not isinstance(amount, int) or not 0 <= amount <= UINT64_MAX:
        raise InvalidAmountError("token amount must be between 0 and 2**64 - 1", field="amount")
    return amount.to_bytes(8, "little")


def transfer(
    source: Pubkey,
    destination: Pubkey,
    owner: Pubkey,
    amount: int,
    token_program_id: Pubkey = TOKEN_PROGRAM_ID,
) -> Instruction:
    """SPL Token ``Transfer`` (unchecked: no mint or decimals). Prefer
    :func:`transfer_checked`.

    Raises:
        InvalidAmountError: amount outside u64.
    """
    return Instruction(
        token_program_id,
        (
            AccountMeta(source, False, True),
            AccountMeta(destination, False, True),
            AccountMeta(owner, True, False),
        ),
        bytes([TRANSFER]) + _amount(amount),
    )


def transfer_checked(
    source: Pubkey,
    mint: Pubkey,
    destination: Pubkey,
    owner: Pubkey,
    amount: int,
    decimals: int,
    token_program_id: Pubkey = TOKEN_PROGRAM_ID,
) -> Instruction:
    """SPL Token ``TransferChecked`` of ``amount`` base units of ``mint``.

    Raises:
        InvalidAmountError: amount outside u64 or decimals outside u8.
    """
    if not isinstance(decimals, int) or not 0 <= decimals <= 255:
        raise InvalidAmountError("decimals must be between 0 and 255", field="decimals")
    return Instruction(
        token_program_id,
        (
            AccountMeta(source, False, True),
            AccountMeta(mint, False, False),
            AccountMeta(destination, False, True),
            AccountMeta(owner, True, False),
        ),
        bytes([TRANSFER_CHECKED]) + _amount(amount) + bytes([decimals]),
    )


def create_associated_token_account(
    payer: Pubkey,
    wallet: Pubkey,
    mint: Pubkey,
    *,
    idempotent: bool = True,
    token_program_id: Pubkey = TOKEN_PROGRAM_ID,
) -> Instruction:
    """Create ``wallet``'s associated token account for ``mint``, paid by ``payer``.

    The idempotent form succeeds when the account already exists, which is what a
    transfer to a possibly new recipient wants.
    """
    ata = associated_token_address(wallet, mint, token_program_id)
    return Instruction(
        ASSOCIATED_TOKEN_PROGRAM_ID,
        (
            AccountMeta(payer, True, True),
            AccountMeta(ata, False, True),
            AccountMeta(wallet, False, False),
            AccountMeta(mint, False, False),
            AccountMeta(SYSTEM_PROGRAM_ID, False, False),
            AccountMeta(token_program_id, False, False),
        ),
        bytes([ATA_CREATE_IDEMPOTENT if idempotent else ATA_CREATE]),
    )


def token_transfer_instructions(
    owner: Pubkey,
    recipient: Pubkey,
    mint: Pubkey,
    amount: int,
    decimals: int,
    *,
    payer: Pubkey | None = None,
    create_recipient_account: bool = True,
    token_program_id: Pubkey = TOKEN_PROGRAM_ID,
) -> tuple[Instruction, ...]:
    """Move ``amount`` of ``mint`` from ``owner``'s associated account to ``recipient``'s.

    With ``create_recipient_account`` the recipient's associated account is created first
    (idempotently), paid by ``payer`` (default: the owner).

    Raises:
        InvalidAmountError: amount outside u64 or decimals outside u8.
    """
    source = associated_token_address(owner, mint, token_program_id)
    destination = associated_token_address(recipient, mint, token_program_id)
    instructions = []
    if create_recipient_account:
        instructions.append(
            create_associated_token_account(
                payer or owner, recipient, mint, token_program_id=token_program_id
            )
        )
    instructions.append(
        transfer_checked(
            source, mint, destination, owner, amount, decimals, token_program_id=token_program_id
        )
    )
    return tuple(instructions)
