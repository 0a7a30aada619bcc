"""System and SPL token transfers checked by solders and executed by LiteSVM.

solders (the Rust Solana SDK behind Python bindings) is only a verifier here: shardvault
compiles and serializes every message itself, and the test compares those bytes with the
message solders compiles from the same instructions (legacy and v0), then lets solders
parse our wire transaction and verify its signatures. The signatures are made with
TEST-ONLY keys over OUR message bytes by PyNaCl and attached through shardvault.

LiteSVM (bundled with solders) runs the real Solana runtime in-process with the System,
SPL Token and Associated Token Account programs; our wire transactions are executed there
and the resulting balances checked.
"""

import base64

import pytest
from solders.account import Account
from solders.hash import Hash
from solders.instruction import AccountMeta as SoldersAccountMeta
from solders.instruction import Instruction as SoldersInstruction
from solders.litesvm import LiteSVM
from solders.message import Message as SoldersMessage
from solders.message import MessageV0 as SoldersMessageV0
from solders.message import to_bytes_versioned
from solders.pubkey import Pubkey as SoldersPubkey
from solders.token.associated import get_associated_token_address
from solders.token.state import Mint, TokenAccount, TokenAccountState
from solders.transaction import Transaction as SoldersTransaction
from solders.transaction import VersionedTransaction

from shardvault.chains.solana import (
    TOKEN_PROGRAM_ID,
    Instruction,
    Message,
    Pubkey,
    associated_token_address,
    attach_signature,
    compile_legacy_message,
    compile_v0_message,
    describe,
    serialize_message,
    serialize_transaction,
    system,
    token,
    unsigned_transaction,
)

from .helpers import make_signing_key

BLOCKHASH = bytes(range(32))


def _solders_instruction(ix: Instruction) -> SoldersInstruction:
    return SoldersInstruction(
        SoldersPubkey(ix.program_id.raw),
        ix.data,
        [
            SoldersAccountMeta(SoldersPubkey(m.pubkey.raw), m.is_signer, m.is_writable)
            for m in ix.accounts
        ],
    )


def _sign(message: Message, *labels: str) -> bytes:
    tx = unsigned_transaction(message)
    for label in labels:
        key, pubkey = make_signing_key(label)
        tx = attach_signature(tx, pubkey, key.sign(serialize_message(message)).signature)
    return serialize_transaction(tx)


def _compare_with_solders(payer: Pubkey, instructions: list[Instruction], blockhash: bytes) -> None:
    theirs = [_solders_instruction(ix) for ix in instructions]
    legacy = compile_legacy_message(payer, instructions, blockhash)
    assert serialize_message(legacy) == bytes(
        SoldersMessage.new_with_blockhash(theirs, SoldersPubkey(payer.raw), Hash(blockhash))
    )
    v0 = compile_v0_message(payer, instructions, blockhash)
    assert serialize_message(v0) == to_bytes_versioned(
        SoldersMessageV0.try_compile(SoldersPubkey(payer.raw), theirs, [], Hash(blockhash))
    )


def test_system_transfer_matches_solders_and_verifies() -> None:
    _, payer = make_signing_key("payer")
    _, recipient = make_signing_key("recipient")
    instructions = [system.transfer(payer, recipient, 1_500_000)]
    _compare_with_solders(payer, instructions, BLOCKHASH)
    wire = _sign(compile_legacy_message(payer, instructions, BLOCKHASH), "payer")
    parsed = SoldersTransaction.from_bytes(wire)
    parsed.verify()
    assert bytes(parsed) == wire
    wire_v0 = _sign(compile_v0_message(payer, instructions, BLOCKHASH), "payer")
    versioned = VersionedTransaction.from_bytes(wire_v0)
    assert versioned.verify_with_results() == [True]
    assert bytes(versioned) == wire_v0


def test_spl_transfer_matches_solders() -> None:
    _, owner = make_signing_key("token owner")
    _, recipient = make_signing_key("token recipient")
    _, mint = make_signing_key("mint")
    _, fee_payer = make_signing_key("fee payer")
    instructions = list(
        token.token_transfer_instructions(owner, recipient, mint, 2_500_000, 6, payer=fee_payer)
    )
    _compare_with_solders(fee_payer, instructions, BLOCKHASH)
    for theirs_owner in (owner, recipient):
        assert associated_token_address(theirs_owner, mint).raw == bytes(
            get_associated_token_address(SoldersPubkey(theirs_owner.raw), SoldersPubkey(mint.raw))
        )
    message = compile_v0_message(fee_payer, instructions, BLOCKHASH)
    wire = _sign(message, "fee payer", "token owner")
    assert VersionedTransaction.from_bytes(wire).verify_with_results() == [True, True]


def test_a_signature_by_the_wrong_key_is_refused_by_solders_too() -> None:
    _, payer = make_signing_key("payer")
    _, recipient = make_signing_key("recipient")
    message = compile_legacy_message(payer, [system.transfer(payer, recipient, 1)], BLOCKHASH)
    other, _ = make_signing_key("someone else")
    forged = other.sign(serialize_message(message)).signature
    tampered = serialize_transaction(unsigned_transaction(message))
    tampered = tampered[:1] + forged + tampered[65:]
    with pytest.raises(Exception, match="did not pass signature verification"):
        SoldersTransaction.from_bytes(tampered).verify()


def _svm_with_funded(payer: Pubkey) -> LiteSVM:
    svm = LiteSVM()
    svm.airdrop(SoldersPubkey(payer.raw), 5_000_000_000)
    return svm


@pytest.mark.parametrize("version", ["legacy", "v0"])
def test_system_transfer_executes_in_litesvm(version: str) -> None:
    _, payer = make_signing_key("payer")
    _, recipient = make_signing_key("recipient")
    svm = _svm_with_funded(payer)
    blockhash = bytes(svm.latest_blockhash())
    instructions = [system.transfer(payer, recipient, 1_234_567)]
    compile_message = compile_legacy_message if version == "legacy" else compile_v0_message
    wire = _sign(compile_message(payer, instructions, blockhash), "payer")
    result = svm.send_transaction(VersionedTransaction.from_bytes(wire))
    assert not hasattr(result, "err"), result
    assert svm.get_balance(SoldersPubkey(recipient.raw)) == 1_234_567
    assert svm.get_balance(SoldersPubkey(payer.raw)) == 5_000_000_000 - 1_234_567 - 5_000


def test_spl_transfer_checked_executes_in_litesvm() -> None:
    _, owner = make_signing_key("token owner")
    _, recipient = make_signing_key("token recipient")
    _, mint = make_signing_key("mint")
    svm = _svm_with_funded(owner)
    token_program = SoldersPubkey(TOKEN_PROGRAM_ID.raw)
    rent = svm.minimum_balance_for_rent_exemption(165)
    # A mint with 6 decimals and the owner's associated account holding 10 tokens.
    svm.set_account(
        SoldersPubkey(mint.raw),
        Account(
            svm.minimum_balance_for_rent_exemption(82),
            bytes(Mint(SoldersPubkey(owner.raw), 10_000_000, 6, True, None)),
            token_program,
        ),
    )
    source = associated_token_address(owner, mint)
    svm.set_account(
        SoldersPubkey(source.raw),
        Account(
            rent,
            bytes(
                TokenAccount(
                    SoldersPubkey(mint.raw),
                    SoldersPubkey(owner.raw),
                    10_000_000,
                    None,
                    TokenAccountState.Initialized,
                    None,
                    0,
                    None,
                )
            ),
            token_program,
        ),
    )
    instructions = token.token_transfer_instructions(owner, recipient, mint, 2_500_000, 6)
    message = compile_v0_message(owner, instructions, bytes(svm.latest_blockhash()))
    wire = _sign(message, "token owner")
    result = svm.send_transaction(VersionedTransaction.from_bytes(wire))
    assert not hasattr(result, "err"), result

    def balance(address: Pubkey) -> int:
        account = svm.get_account(SoldersPubkey(address.raw))
        assert account is not None
        return int(TokenAccount.from_bytes(bytes(account.data)[:165]).amount)

    assert balance(source) == 7_500_000
    assert balance(associated_token_address(recipient, mint)) == 2_500_000
    # The description a co-signer sees names the asset, the accounts and the amount.
    out = describe(base64.b64encode(wire).decode())
    decoded = [ix["decoded"] for ix in out["instructions"]]  # type: ignore[union-attr]
    assert decoded[0]["type"] == "create_associated_token_account_idempotent"  # type: ignore[index]
    assert decoded[1] == {
        "type": "token_transfer_checked",
        "source": str(source),
        "mint": str(mint),
        "destination": str(associated_token_address(recipient, mint)),
        "owner": str(owner),
        "amount": "2500000",
        "decimals": 6,
        "ui_amount": "2.5",
    }


def test_wrong_decimals_are_rejected_by_the_token_program() -> None:
    # TransferChecked exists so that a wrong mint or scale fails on chain: check it does.
    _, owner = make_signing_key("token owner")
    _, recipient = make_signing_key("token recipient")
    _, mint = make_signing_key("mint")
    svm = _svm_with_funded(owner)
    token_program = SoldersPubkey(TOKEN_PROGRAM_ID.raw)
    svm.set_account(
        SoldersPubkey(mint.raw),
        Account(10**7, bytes(Mint(SoldersPubkey(owner.raw), 10, 6, True, None)), token_program),
    )
    source = associated_token_address(owner, mint)
    svm.set_account(
        SoldersPubkey(source.raw),
        Account(
            10**7,
            bytes(
                TokenAccount(
                    SoldersPubkey(mint.raw),
                    SoldersPubkey(owner.raw),
                    10,
                    None,
                    TokenAccountState.Initialized,
                    None,
                    0,
                    None,
                )
            ),
            token_program,
        ),
    )
    instructions = token.token_transfer_instructions(owner, recipient, mint, 1, 9)
    wire = _sign(
        compile_legacy_message(owner, instructions, bytes(svm.latest_blockhash())), "token owner"
    )
    result = svm.send_transaction(VersionedTransaction.from_bytes(wire))
    assert hasattr(result, "err")


def test_priority_fee_instructions_match_solders_and_execute() -> None:
    from solders import compute_budget as solders_budget

    from shardvault.chains.solana import compute_budget

    limit = compute_budget.set_compute_unit_limit(200_000)
    price = compute_budget.set_compute_unit_price(1_234)
    for ours, theirs in (
        (limit, solders_budget.set_compute_unit_limit(200_000)),
        (price, solders_budget.set_compute_unit_price(1_234)),
    ):
        assert ours.program_id.raw == bytes(theirs.program_id)
        assert ours.data == bytes(theirs.data)
        assert ours.accounts == ()
    _, payer = make_signing_key("payer")
    _, recipient = make_signing_key("recipient")
    svm = _svm_with_funded(payer)
    instructions = [limit, price, system.transfer(payer, recipient, 1_000_000)]
    wire = _sign(compile_v0_message(payer, instructions, bytes(svm.latest_blockhash())), "payer")
    result = svm.send_transaction(VersionedTransaction.from_bytes(wire))
    assert not hasattr(result, "err"), result
    # Base fee 5000 plus the priority fee ceil(200000 * 1234 / 10**6) = 247 lamports.
    fee = 5_000 + compute_budget.priority_fee_lamports(200_000, 1_234)
    assert fee == 5_247
    assert svm.get_balance(SoldersPubkey(payer.raw)) == 5_000_000_000 - 1_000_000 - fee
    decoded = [ix["decoded"] for ix in describe(base64.b64encode(wire).decode())["instructions"]]  # type: ignore[union-attr]
    assert decoded[0] == {"type": "set_compute_unit_limit", "units": 200_000}  # type: ignore[comparison-overlap]
    assert decoded[1] == {"type": "set_compute_unit_price", "micro_lamports": "1234"}  # type: ignore[comparison-overlap]


def test_compute_budget_bounds() -> None:
    from shardvault.chains.errors import InvalidAmountError
    from shardvault.chains.solana import compute_budget

    with pytest.raises(InvalidAmountError) as exc:
        compute_budget.set_compute_unit_limit(1_400_001)
    assert exc.value.field == "compute_unit_limit"
    with pytest.raises(InvalidAmountError) as exc:
        compute_budget.set_compute_unit_price(-1)
    assert exc.value.field == "compute_unit_price"
