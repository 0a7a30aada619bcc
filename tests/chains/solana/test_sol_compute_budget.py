"""Reading a message's Compute Budget as the runtime does, and the fee it leads to.

Messages are built with solders and run in solders' LiteSVM (a Solana runtime in
process): the fee :func:`read_compute_budget` leads to is the payer's balance drop when
the limit is set, and never below it when the runtime's default applies. Keys are
TEST-ONLY (helpers.make_signing_key).
"""

import pytest
from solders import compute_budget as solders_budget
from solders.hash import Hash
from solders.instruction import Instruction as SoldersInstruction
from solders.litesvm import LiteSVM
from solders.message import Message as SoldersMessage
from solders.message import MessageV0 as SoldersMessageV0
from solders.pubkey import Pubkey as SoldersPubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from shardvault.chains.errors import ChainError
from shardvault.chains.solana import parse_message, read_compute_budget
from shardvault.chains.solana.compute_budget import LAMPORTS_PER_SIGNATURE

from .helpers import make_signing_key

AIRDROP = 5_000_000_000


def _transfer(payer: SoldersPubkey, lamports: int = 1_000_000) -> SoldersInstruction:
    recipient = SoldersPubkey(bytes(make_signing_key("recipient")[1].raw))
    return transfer(TransferParams(from_pubkey=payer, to_pubkey=recipient, lamports=lamports))


def _run(budget: list[SoldersInstruction], transfers: int, version: str) -> tuple[int, int]:
    """Run ``budget`` then ``transfers`` transfers of 1,000,000 lamports in LiteSVM:
    (the fee the runtime charged, the fee read from the message)."""
    key, payer = make_signing_key("fee payer")
    owner = SoldersPubkey(payer.raw)
    svm = LiteSVM()
    svm.airdrop(owner, AIRDROP)
    instructions = [*budget, *(_transfer(owner, 1_000_000 + i) for i in range(transfers))]
    blockhash = svm.latest_blockhash()
    if version == "legacy":
        message = SoldersMessage.new_with_blockhash(instructions, owner, blockhash)
        raw = bytes(message)
    else:
        message = SoldersMessageV0.try_compile(owner, instructions, [], blockhash)
        raw = b"\x80" + bytes(message)
    signature = key.sign(raw).signature
    tx = VersionedTransaction.populate(message, [Signature(signature)])
    result = svm.send_transaction(tx)
    assert not hasattr(result, "err"), result
    moved = sum(1_000_000 + i for i in range(transfers))
    charged = AIRDROP - moved - svm.get_balance(owner)
    budget_read = read_compute_budget(parse_message(raw))
    return charged, LAMPORTS_PER_SIGNATURE + budget_read.priority_fee_lamports


@pytest.mark.parametrize("version", ["legacy", "v0"])
def test_a_set_limit_and_price_give_the_fee_the_runtime_charges(version: str) -> None:
    budget = [
        solders_budget.set_compute_unit_limit(3_000),
        solders_budget.set_compute_unit_price(333_333),
    ]
    charged, read = _run(budget, 1, version)
    # 5,000 for the signature and ceil(3,000 * 333,333 / 10**6) = 1,000.
    assert charged == read == 6_000


@pytest.mark.parametrize("transfers", [1, 3])
def test_the_default_limit_is_never_below_what_the_runtime_charges_for(transfers: int) -> None:
    """One lamport per unit: the fee read counts 200,000 units per transfer and 3,000
    for the price instruction; the runtime (LiteSVM's, which reserves 3,000 units for
    each builtin instruction) charges less, an older one 200,000 per transfer."""
    charged, read = _run([solders_budget.set_compute_unit_price(1_000_000)], transfers, "v0")
    assert read == LAMPORTS_PER_SIGNATURE + transfers * 200_000 + 3_000
    assert LAMPORTS_PER_SIGNATURE + transfers * 200_000 <= read
    assert charged <= read


def test_the_default_limit_is_capped_at_the_runtime_maximum() -> None:
    _, payer = make_signing_key("fee payer")
    owner = SoldersPubkey(payer.raw)
    instructions = [_transfer(owner, i + 1) for i in range(8)]
    message = SoldersMessage.new_with_blockhash(instructions, owner, Hash.new_unique())
    budget = read_compute_budget(parse_message(bytes(message)))
    assert (budget.compute_unit_limit, budget.limit_is_default) == (1_400_000, True)
    assert budget.compute_unit_price_micro_lamports == 0
    assert budget.priority_fee_lamports == 0


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        (
            [solders_budget.set_compute_unit_price(1), solders_budget.set_compute_unit_price(2)],
            "instructions[1]: a second set_compute_unit_price",
        ),
        (
            [solders_budget.set_compute_unit_limit(1), solders_budget.set_compute_unit_limit(2)],
            "instructions[1]: a second set_compute_unit_limit",
        ),
        (
            [solders_budget.request_heap_frame(64 * 1024)],
            "instructions[0]: Compute Budget instruction 1 is not understood",
        ),
        (
            [SoldersInstruction(solders_budget.ID, b"", [])],
            "instructions[0]: Compute Budget instruction without data is not understood",
        ),
        (
            [solders_budget.set_compute_unit_limit(1_400_001)],
            "instructions[0]: a compute-unit limit above 1400000",
        ),
    ],
)
def test_budgets_the_runtime_refuses_or_that_are_not_understood_are_refused(
    budget: list[SoldersInstruction], message: str
) -> None:
    _, payer = make_signing_key("fee payer")
    owner = SoldersPubkey(payer.raw)
    built = SoldersMessage.new_with_blockhash([*budget, _transfer(owner)], owner, Hash.new_unique())
    with pytest.raises(ChainError) as caught:
        read_compute_budget(parse_message(bytes(built)))
    assert message in str(caught.value)
