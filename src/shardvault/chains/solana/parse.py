"""Reading Solana transactions back: accounts, decoded instructions, signatures.

A co-signer or policy must see what a message does before it signs: which accounts sign
and are written, and for the instructions shardvault knows (System Program transfers, SPL
Token ``Transfer``/``TransferChecked``, Associated Token Account creation, Compute Budget
limit and price) the decoded
fields. Account roles follow the message header (Solana "Message Header"); accounts a v0
message loads from lookup tables come after the static keys, writable ones first
(Solana "Versioned Transactions"), and cannot be named without the table's contents.
"""

import base64
import binascii

import base58

from shardvault.chains.amounts import format_decimal_amount
from shardvault.chains.errors import ChainError, DecodeError
from shardvault.chains.solana import compute_budget, system, token
from shardvault.chains.solana.address import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
)
from shardvault.chains.solana.encode import (
    PACKET_DATA_SIZE,
    parse_message,
    parse_transaction,
    verify_signature,
)
from shardvault.chains.solana.models import (
    SIGNATURE_LENGTH,
    Message,
    MessageV0,
    Pubkey,
    Transaction,
)

JsonValue = str | int | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
"""The values a description holds."""

_TOKEN_INSTRUCTION_NAMES = {
    0: "initialize_mint",
    1: "initialize_account",
    2: "initialize_multisig",
    3: "transfer",
    4: "approve",
    5: "revoke",
    6: "set_authority",
    7: "mint_to",
    8: "burn",
    9: "close_account",
    10: "freeze_account",
    11: "thaw_account",
    12: "transfer_checked",
    13: "approve_checked",
    14: "mint_to_checked",
    15: "burn_checked",
}


def is_signer(message: Message, index: int) -> bool:
    """Whether account ``index`` must sign."""
    return index < message.header.num_required_signatures


def is_writable(message: Message, index: int) -> bool:
    """Whether account ``index`` (static or loaded from a lookup table) is writable."""
    header = message.header
    n_static = len(message.account_keys)
    if index < header.num_required_signatures:
        return index < header.num_required_signatures - header.num_readonly_signed_accounts
    if index < n_static:
        return index < n_static - header.num_readonly_unsigned_accounts
    if isinstance(message, MessageV0):
        n_writable = sum(len(lookup.writable_indexes) for lookup in message.address_table_lookups)
        return index - n_static < n_writable
    return False


def account_label(message: Message, index: int) -> str:
    """The base58 key of account ``index``, or ``lookup:<table>#<i>`` for a loaded one."""
    if index < len(message.account_keys):
        return str(message.account_keys[index])
    assert isinstance(message, MessageV0)
    loaded: list[tuple[Pubkey, int]] = []
    for lookup in message.address_table_lookups:
        loaded.extend((lookup.account_key, i) for i in lookup.writable_indexes)
    for lookup in message.address_table_lookups:
        loaded.extend((lookup.account_key, i) for i in lookup.readonly_indexes)
    table, position = loaded[index - len(message.account_keys)]
    return f"lookup:{table}#{position}"


def _need(data: bytes, size: int, field: str, name: str) -> None:
    if len(data) != size:
        raise DecodeError(f"{name} data must be {size} bytes, got {len(data)}", field=field)


def decode_instruction(
    program_id: Pubkey, accounts: list[str], data: bytes, field: str
) -> dict[str, JsonValue]:
    """Decode a known instruction into named fields (``type`` is ``unknown`` otherwise).

    Raises:
        DecodeError: a known instruction whose data or accounts have the wrong shape.
    """
    if program_id == SYSTEM_PROGRAM_ID:
        if len(data) < 4:
            raise DecodeError("system instruction needs a 4-byte tag", field=field)
        tag = int.from_bytes(data[:4], "little")
        name = system.SYSTEM_INSTRUCTION_NAMES.get(tag, "unknown")
        if tag == system.TRANSFER:
            _need(data, 12, field, "transfer")
            if len(accounts) < 2:
                raise DecodeError("transfer needs two accounts", field=field)
            amount = int.from_bytes(data[4:12], "little")
            return {
                "type": "system_transfer",
                "from": accounts[0],
                "to": accounts[1],
                "lamports": str(amount),
                "sol": format_decimal_amount(amount, 9),
            }
        return {"type": f"system_{name}"}
    if program_id in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
        if not data:
            raise DecodeError("token instruction needs a tag", field=field)
        tag = data[0]
        if tag == token.TRANSFER:
            _need(data, 9, field, "token transfer")
            if len(accounts) < 3:
                raise DecodeError("token transfer needs three accounts", field=field)
            return {
                "type": "token_transfer",
                "source": accounts[0],
                "destination": accounts[1],
                "owner": accounts[2],
                "amount": str(int.from_bytes(data[1:9], "little")),
            }
        if tag == token.TRANSFER_CHECKED:
            _need(data, 10, field, "token transfer_checked")
            if len(accounts) < 4:
                raise DecodeError("transfer_checked needs four accounts", field=field)
            amount = int.from_bytes(data[1:9], "little")
            return {
                "type": "token_transfer_checked",
                "source": accounts[0],
                "mint": accounts[1],
                "destination": accounts[2],
                "owner": accounts[3],
                "amount": str(amount),
                "decimals": data[9],
                "ui_amount": format_decimal_amount(amount, data[9]),
            }
        return {"type": f"token_{_TOKEN_INSTRUCTION_NAMES.get(tag, 'unknown')}"}
    if program_id == compute_budget.COMPUTE_BUDGET_PROGRAM_ID:
        decoded = compute_budget.decode_compute_budget_instruction(data, field)
        if decoded is None:
            return {"type": "compute_budget_unknown"}
        name, value = decoded
        if name == "set_compute_unit_limit":
            return {"type": name, "units": value}
        return {"type": name, "micro_lamports": str(value)}
    if program_id == ASSOCIATED_TOKEN_PROGRAM_ID:
        if data not in (b"", b"\x00", b"\x01"):
            return {"type": "associated_token_unknown"}
        if len(accounts) < 6:
            raise DecodeError("associated account creation needs six accounts", field=field)
        return {
            "type": "create_associated_token_account" + ("_idempotent" if data == b"\x01" else ""),
            "payer": accounts[0],
            "account": accounts[1],
            "wallet": accounts[2],
            "mint": accounts[3],
        }
    return {"type": "unknown"}


def describe_message(message: Message) -> dict[str, JsonValue]:
    """The accounts, lookups and decoded instructions of a message."""
    n_total = len(message.account_keys)
    if isinstance(message, MessageV0):
        n_total += sum(
            len(lookup.writable_indexes) + len(lookup.readonly_indexes)
            for lookup in message.address_table_lookups
        )
    accounts: list[JsonValue] = [
        {
            "index": i,
            "pubkey": account_label(message, i),
            "signer": is_signer(message, i),
            "writable": is_writable(message, i),
        }
        for i in range(n_total)
    ]
    instructions: list[JsonValue] = []
    for i, ix in enumerate(message.instructions):
        program = message.account_keys[ix.program_id_index]
        labels = [account_label(message, a) for a in ix.accounts]
        instructions.append(
            {
                "index": i,
                "program_id": str(program),
                "accounts": list[JsonValue](labels),
                "data": ix.data.hex(),
                "decoded": decode_instruction(program, labels, ix.data, f"instructions[{i}]"),
            }
        )
    lookups: list[JsonValue] = []
    if isinstance(message, MessageV0):
        lookups = [
            {
                "account_key": str(lookup.account_key),
                "writable_indexes": list[JsonValue](lookup.writable_indexes),
                "readonly_indexes": list[JsonValue](lookup.readonly_indexes),
            }
            for lookup in message.address_table_lookups
        ]
    return {
        "version": message.version,
        "header": {
            "num_required_signatures": message.header.num_required_signatures,
            "num_readonly_signed_accounts": message.header.num_readonly_signed_accounts,
            "num_readonly_unsigned_accounts": message.header.num_readonly_unsigned_accounts,
        },
        "fee_payer": str(message.account_keys[0]) if message.account_keys else None,
        "recent_blockhash": str(base58.b58encode(message.recent_blockhash).decode()),
        "accounts": accounts,
        "address_table_lookups": lookups,
        "instructions": instructions,
    }


def describe_transaction(tx: Transaction) -> dict[str, JsonValue]:
    """A message description plus each signer's signature and whether it verifies."""
    out = describe_message(tx.message)
    signatures: list[JsonValue] = []
    for signer, signature in zip(tx.signers, tx.signatures, strict=True):
        if signature == bytes(SIGNATURE_LENGTH):
            status = "missing"
        else:
            try:
                verify_signature(tx.message, signer, signature)
                status = "valid"
            except ChainError:
                status = "invalid"
        signatures.append(
            {
                "signer": str(signer),
                "signature": str(base58.b58encode(signature).decode()),
                "status": status,
            }
        )
    first = tx.signatures[0] if tx.signatures else None
    return {
        "kind": "transaction",
        # A Solana transaction is identified by its first signature.
        "transaction_id": None if first is None else str(base58.b58encode(first).decode()),
        "signatures": signatures,
        **out,
    }


def _candidates(text: str) -> list[bytes]:
    out: list[bytes] = []
    if not any(c in text for c in "+/="):
        try:
            out.append(base58.b58decode(text))
        except ValueError:
            pass
    try:
        out.append(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        pass
    return out


def describe(data: str) -> dict[str, JsonValue]:
    """Describe a wire transaction or a message given in base64 or base58.

    Raises:
        DecodeError: none of the readings parses; the error of the first attempt is
            reported.
        UnsupportedError: a message version other than legacy or 0.
    """
    if not isinstance(data, str) or len(data) > 4 * PACKET_DATA_SIZE:
        raise DecodeError("must be a string of at most 4928 characters", field="data")
    text = data.strip()
    candidates = _candidates(text)
    if not text or not candidates:
        raise DecodeError("is neither base64 nor base58", field="data")
    first_error: ChainError | None = None
    for raw in candidates:
        # Parse first, describe after: a well-formed message whose known instruction is
        # malformed must report that instruction, not fall through to another reading.
        try:
            tx = parse_transaction(raw)
        except ChainError as exc:
            first_error = first_error or exc
        else:
            return describe_transaction(tx)
        try:
            message = parse_message(raw)
        except ChainError:
            continue
        return {"kind": "message", **describe_message(message)}
    assert first_error is not None
    raise first_error
