"""Solana encoding: round trips, solders differential parsing, fuzzing and bad input.

Hypothesis builds random legacy and v0 messages (v0 with address table lookups) and
transactions; each must serialize, parse back to itself and be read identically by
solders. The parsers are fuzzed: on any bytes only ChainError subclasses may escape.
"""

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from solders.message import from_bytes_versioned
from solders.transaction import VersionedTransaction

from shardvault.chains.errors import (
    ChainError,
    DecodeError,
    InvalidAmountError,
    SignatureAssemblyError,
    UnsupportedError,
)
from shardvault.chains.solana import (
    AddressTableLookup,
    CompiledInstruction,
    LegacyMessage,
    Message,
    MessageHeader,
    MessageV0,
    Pubkey,
    Transaction,
    attach_signature,
    compile_legacy_message,
    describe,
    parse_message,
    parse_transaction,
    serialize_message,
    serialize_transaction,
    system,
    token,
    unsigned_transaction,
    verify_transaction,
)
from shardvault.chains.solana.encode import _Reader, encode_compact_u16

from .helpers import make_signing_key

pubkeys = st.binary(min_size=32, max_size=32).map(Pubkey)


@st.composite
def messages(draw: st.DrawFn, *, versioned: bool | None = None) -> Message:
    keys = tuple(draw(st.lists(pubkeys, min_size=2, max_size=8, unique=True)))
    n_required = draw(st.integers(1, len(keys) - 1))
    header = MessageHeader(
        n_required,
        draw(st.integers(0, n_required - 1)),
        draw(st.integers(0, len(keys) - n_required)),
    )
    is_v0 = draw(st.booleans()) if versioned is None else versioned
    lookups: tuple[AddressTableLookup, ...] = ()
    if is_v0:
        lookups = tuple(
            AddressTableLookup(
                draw(pubkeys),
                tuple(draw(st.lists(st.integers(0, 255), min_size=1, max_size=3))),
                tuple(draw(st.lists(st.integers(0, 255), max_size=3))),
            )
            for _ in range(draw(st.integers(0, 2)))
        )
    n_total = len(keys) + sum(len(x.writable_indexes) + len(x.readonly_indexes) for x in lookups)
    instructions = tuple(
        CompiledInstruction(
            draw(st.integers(1, len(keys) - 1)),
            tuple(draw(st.lists(st.integers(0, n_total - 1), max_size=5))),
            draw(st.binary(max_size=40)),
        )
        for _ in range(draw(st.integers(0, 3)))
    )
    blockhash = draw(st.binary(min_size=32, max_size=32))
    if is_v0:
        return MessageV0(header, keys, blockhash, instructions, lookups)
    return LegacyMessage(header, keys, blockhash, instructions)


@given(messages())
def test_message_round_trip_and_solders_reads_it(message: Message) -> None:
    raw = serialize_message(message)
    assert parse_message(raw) == message
    theirs = from_bytes_versioned(raw)
    assert len(theirs.account_keys) == len(message.account_keys)
    assert [bytes(k) for k in theirs.account_keys] == [k.raw for k in message.account_keys]
    assert len(theirs.instructions) == len(message.instructions)
    assert describe(base64.b64encode(raw).decode())["kind"] == "message"


@given(messages(), st.data())
def test_transaction_round_trip(message: Message, data: st.DataObject) -> None:
    signatures = tuple(
        data.draw(st.binary(min_size=64, max_size=64))
        for _ in range(message.header.num_required_signatures)
    )
    tx = Transaction(signatures, message)
    raw = serialize_transaction(tx)
    assert parse_transaction(raw) == tx
    assert bytes(VersionedTransaction.from_bytes(raw)) == raw


@given(st.integers(0, 0xFFFF))
def test_compact_u16_round_trip(value: int) -> None:
    encoded = encode_compact_u16(value)
    assert len(encoded) == (1 if value < 0x80 else 2 if value < 0x4000 else 3)
    assert _Reader(encoded).compact_u16("n") == value


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x80\x00", "redundant zero"),
        (b"\xff\xff\x04", "overflows"),
        (b"\x80\x80\x80\x01", "overflows"),
        (b"\x80", "needs 1 bytes"),
    ],
)
def test_compact_u16_rejects_non_canonical(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        _Reader(raw).compact_u16("n")
    with pytest.raises(DecodeError):
        encode_compact_u16(0x10000)


@given(st.binary(max_size=600))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_parsers_fuzz_only_typed_errors(data: bytes) -> None:
    for parse in (parse_transaction, parse_message):
        try:
            parse(data)
        except ChainError:
            pass


@given(messages(), st.integers(min_value=0), st.integers(0, 255))
def test_parsers_mutation_fuzz(message: Message, position: int, value: int) -> None:
    raw = bytearray(serialize_message(message))
    raw[position % len(raw)] = value
    try:
        parsed = parse_message(bytes(raw))
    except ChainError:
        return
    assert serialize_message(parsed) == bytes(raw)
    try:
        describe(base64.b64encode(bytes(raw)).decode())
    except ChainError:
        pass


def _transfer_message() -> tuple[Message, Pubkey]:
    _, payer = make_signing_key("payer")
    _, recipient = make_signing_key("recipient")
    return compile_legacy_message(payer, [system.transfer(payer, recipient, 5)], bytes(32)), payer


def test_bad_messages_name_the_field() -> None:
    message, _ = _transfer_message()
    raw = serialize_message(message)
    cases = [
        (raw + b"\x00", "message"),
        (raw[:-1], "instructions[0].data"),
        (bytes([0, 0, 0]) + raw[3:], "header.num_readonly_signed_accounts"),
        (bytes([5]) + raw[1:], "header.num_required_signatures"),
        (bytes(2000), "message"),
    ]
    for bad, field in cases:
        with pytest.raises(DecodeError) as exc:
            parse_message(bad)
        assert exc.value.field == field, field
    # The program index pointing at the fee payer is refused (Solana sanitize).
    bad_program = bytearray(raw)
    assert raw[-17] == 2  # program_id_index of the single instruction: the System Program
    bad_program[-17] = 0
    with pytest.raises(DecodeError, match="fee payer"):
        parse_message(bytes(bad_program))
    with pytest.raises(UnsupportedError) as exc2:
        parse_message(b"\x81" + raw)
    assert exc2.value.field == "message.version"


def test_bad_transactions_and_signatures() -> None:
    message, payer = _transfer_message()
    unsigned = unsigned_transaction(message)
    wire = serialize_transaction(unsigned)
    with pytest.raises(DecodeError) as exc:
        parse_transaction(b"\x02" + bytes(64) + wire[1:])
    assert exc.value.field == "signatures"
    with pytest.raises(DecodeError):
        serialize_transaction(Transaction((), message))
    with pytest.raises(SignatureAssemblyError, match="has not signed"):
        verify_transaction(unsigned)
    key, _ = make_signing_key("payer")
    good = key.sign(serialize_message(message)).signature
    with pytest.raises(SignatureAssemblyError, match="not 64"):
        attach_signature(unsigned, payer, good[:63])
    with pytest.raises(SignatureAssemblyError, match="does not verify"):
        attach_signature(unsigned, payer, good[:-1] + bytes([good[-1] ^ 1]))
    _, stranger = make_signing_key("stranger")
    with pytest.raises(SignatureAssemblyError, match="not a required signer"):
        attach_signature(unsigned, stranger, good)
    signed = attach_signature(unsigned, payer, good)
    assert signed.is_fully_signed
    verify_transaction(signed)
    out = describe(base64.b64encode(serialize_transaction(unsigned)).decode())
    assert out["signatures"][0]["status"] == "missing"  # type: ignore[index]


def test_amount_bounds() -> None:
    _, a = make_signing_key("a")
    for bad in (-1, 2**64):
        with pytest.raises(InvalidAmountError) as exc:
            system.transfer(a, a, bad)
        assert exc.value.field == "amount"
        with pytest.raises(InvalidAmountError):
            token.transfer(a, a, a, bad)
    with pytest.raises(InvalidAmountError) as exc:
        token.transfer_checked(a, a, a, a, 1, 256)
    assert exc.value.field == "decimals"
    assert system.transfer(a, a, 2**64 - 1).data[4:] == b"\xff" * 8


def test_unchecked_token_transfer_is_described() -> None:
    _, owner = make_signing_key("owner")
    _, src = make_signing_key("src")
    _, dst = make_signing_key("dst")
    message = compile_legacy_message(owner, [token.transfer(src, dst, owner, 77)], bytes(32))
    out = describe(base64.b64encode(serialize_message(message)).decode())
    assert out["kind"] == "message"
    assert out["instructions"][0]["decoded"] == {  # type: ignore[index]
        "type": "token_transfer",
        "source": str(src),
        "destination": str(dst),
        "owner": str(owner),
        "amount": "77",
    }


def test_describe_marks_lookup_accounts() -> None:
    _, payer = make_signing_key("payer")
    table = Pubkey(bytes([7]) * 32)
    message = MessageV0(
        MessageHeader(1, 0, 1),
        (payer, Pubkey(bytes(32))),
        bytes(32),
        (CompiledInstruction(1, (0, 2, 3), (2).to_bytes(4, "little") + (9).to_bytes(8, "little")),),
        (AddressTableLookup(table, (4,), (5,)),),
    )
    out = describe(base64.b64encode(serialize_message(message)).decode())
    accounts = out["accounts"]
    assert accounts[2] == {
        "index": 2,
        "pubkey": f"lookup:{table}#4",
        "signer": False,
        "writable": True,
    }  # type: ignore[index]
    assert accounts[3]["writable"] is False  # type: ignore[index]
    assert out["instructions"][0]["decoded"]["to"] == f"lookup:{table}#4"  # type: ignore[index]


def test_describe_bad_text() -> None:
    for bad in ("", "!!!", "0OIl", "a" * 5000):
        with pytest.raises(DecodeError):
            describe(bad)
    # A known instruction with malformed data is an error, not a silent "unknown".
    _, payer = make_signing_key("payer")
    message = LegacyMessage(
        MessageHeader(1, 0, 1),
        (payer, Pubkey(bytes(32))),
        bytes(32),
        (CompiledInstruction(1, (0,), (2).to_bytes(4, "little")),),
    )
    with pytest.raises(DecodeError) as exc:
        describe(base64.b64encode(serialize_message(message)).decode())
    assert exc.value.field == "instructions[0]"


@given(st.text(max_size=300))
def test_describe_fuzz_only_typed_errors(text: str) -> None:
    try:
        describe(text)
    except ChainError:
        pass


def test_cli_chain_decode_solana() -> None:
    import json

    from click.testing import CliRunner

    from shardvault.cli.main import cli

    message, payer = _transfer_message()
    key, _ = make_signing_key("payer")
    tx = attach_signature(
        unsigned_transaction(message), payer, key.sign(serialize_message(message)).signature
    )
    wire = base64.b64encode(serialize_transaction(tx)).decode()
    result = CliRunner().invoke(cli, ["chain", "decode", "--chain", "solana", wire])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["instructions"][0]["decoded"]["lamports"] == "5"
    assert out["signatures"][0]["status"] == "valid"
    bad = CliRunner().invoke(cli, ["chain", "decode", "--chain", "solana", "AAAA"])
    assert bad.exit_code == 1


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0.0000000001", "10 decimal places"),
        ("-0.5", "non-negative"),
        ("18446744073.709551616", "largest amount"),
        ("1e9", "non-negative"),
    ],
)
def test_sol_amount_parsing_refuses(text: str, reason: str) -> None:
    with pytest.raises(InvalidAmountError, match=reason) as exc:
        system.parse_sol_amount(text, field="lamports")
    assert exc.value.field == "lamports"


def test_token_amount_parsing() -> None:
    assert system.parse_sol_amount("1.5") == 1_500_000_000
    assert system.parse_sol_amount("18446744073.709551615") == 2**64 - 1
    assert token.parse_token_amount("2.5", 6) == 2_500_000
    with pytest.raises(InvalidAmountError, match="7 decimal places") as exc:
        token.parse_token_amount("0.0000001", 6, field="transfer.amount")
    assert exc.value.field == "transfer.amount"
    with pytest.raises(InvalidAmountError, match="largest amount"):
        token.parse_token_amount("18446744073709551616", 0)
    with pytest.raises(InvalidAmountError) as exc:
        token.parse_token_amount("1", 256)
    assert exc.value.field == "decimals"


@pytest.mark.parametrize(
    ("program", "accounts", "data", "expected"),
    [
        ("system", 2, (0).to_bytes(4, "little") + bytes(52), "system_create_account"),
        ("system", 2, (99).to_bytes(4, "little"), "system_unknown"),
        ("token", 3, b"\x07" + bytes(8), "token_mint_to"),
        ("token", 3, b"\xee", "token_unknown"),
        ("ata", 6, b"", "create_associated_token_account"),
        ("ata", 6, b"\x02", "associated_token_unknown"),
        ("other", 1, b"\x01\x02", "unknown"),
    ],
)
def test_decode_instruction_names(program: str, accounts: int, data: bytes, expected: str) -> None:
    from shardvault.chains.solana import (
        ASSOCIATED_TOKEN_PROGRAM_ID,
        SYSTEM_PROGRAM_ID,
        TOKEN_PROGRAM_ID,
    )
    from shardvault.chains.solana.parse import decode_instruction

    programs = {
        "system": SYSTEM_PROGRAM_ID,
        "token": TOKEN_PROGRAM_ID,
        "ata": ASSOCIATED_TOKEN_PROGRAM_ID,
        "other": Pubkey(bytes([9]) * 32),
    }
    labels = [f"acct{i}" for i in range(accounts)]
    assert decode_instruction(programs[program], labels, data, "ix")["type"] == expected


@pytest.mark.parametrize(
    ("program", "accounts", "data"),
    [
        ("system", 2, b"\x02\x00"),
        ("system", 1, (2).to_bytes(4, "little") + bytes(8)),
        ("token", 3, b""),
        ("token", 3, b"\x03" + bytes(7)),
        ("token", 2, b"\x03" + bytes(8)),
        ("token", 4, b"\x0c" + bytes(8)),
        ("token", 3, b"\x0c" + bytes(9)),
        ("ata", 5, b"\x01"),
    ],
)
def test_decode_instruction_refuses_malformed_known_instructions(
    program: str, accounts: int, data: bytes
) -> None:
    from shardvault.chains.solana import (
        ASSOCIATED_TOKEN_PROGRAM_ID,
        SYSTEM_PROGRAM_ID,
        TOKEN_PROGRAM_ID,
    )
    from shardvault.chains.solana.parse import decode_instruction

    programs = {
        "system": SYSTEM_PROGRAM_ID,
        "token": TOKEN_PROGRAM_ID,
        "ata": ASSOCIATED_TOKEN_PROGRAM_ID,
    }
    with pytest.raises(DecodeError) as exc:
        decode_instruction(programs[program], [f"a{i}" for i in range(accounts)], data, "ix[3]")
    assert exc.value.field == "ix[3]"
