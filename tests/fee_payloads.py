"""Payloads for the fee-cap tests, built as a coordinator builds them: Bitcoin PSBTs
spending made-up coins (the project's PSBT Creator and Updater; the tests verify what
is signed with python-bitcointx) and Solana messages with Compute Budget instructions
(solders, the Solana SDK's Python binding).

Used by the in-process co-signer tests (tests/cosigner/test_fee_caps_*.py) and by the
compromised-server suite (tests/compromised/test_fee_caps.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from solders import compute_budget as solders_budget
from solders.hash import Hash
from solders.instruction import Instruction
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer

from shardvault.chains import bitcoin

PAYEE = bitcoin.p2tr_script(hashlib.sha256(b"payee").digest())
"""The output script every test spend pays."""

PAYEE_AMOUNT = 70_000
"""What every test spend pays :data:`PAYEE`, in satoshis."""

SOLANA_PAYEE = Pubkey(hashlib.sha256(b"solana fee cap payee").digest())
SOLANA_BLOCKHASH = Hash(hashlib.sha256(b"a recent blockhash").digest())
SOLANA_LAMPORTS = 1_000
"""What every test Solana message moves to :data:`SOLANA_PAYEE`."""


def funding(label: str, amount: int, script: bytes) -> bitcoin.Transaction:
    """A previous transaction whose output 0 pays ``amount`` to ``script`` (its own
    outpoint made up from ``label``)."""
    source = bitcoin.OutPoint(hashlib.sha256(label.encode()).digest(), 0)
    return bitcoin.Transaction(2, (bitcoin.TxIn(source),), (bitcoin.TxOut(amount, script),))


def spend_psbt(
    coins: Sequence[tuple[int, bytes]],
    *,
    change_script: bytes,
    fee: int = 1_000,
    proven: Sequence[int] | None = None,
    claimed: Mapping[int, int] | None = None,
    sighash_types: Mapping[int, int] | None = None,
    label: str = "coin",
) -> bitcoin.Psbt:
    """Spend ``coins`` (amount, script; outpoints made up from ``label``) to
    :data:`PAYEE`, the change back to ``change_script``, paying ``fee``. Inputs in
    ``proven`` (default: all) carry their previous transaction; every input carries a
    witness UTXO of its ``claimed`` amount (its true amount unless told); inputs in
    ``sighash_types`` ask for that sighash type."""
    previous = [funding(f"{label}-{i}", amount, script) for i, (amount, script) in enumerate(coins)]
    total = sum(amount for amount, _ in coins)
    outputs = [
        bitcoin.TxOut(PAYEE_AMOUNT, PAYEE),
        bitcoin.TxOut(total - PAYEE_AMOUNT - fee, change_script),
    ]
    psbt = bitcoin.create_psbt([bitcoin.OutPoint(p.txid(), 0) for p in previous], outputs)
    for i, (amount, script) in enumerate(coins):
        psbt = bitcoin.set_witness_utxo(
            psbt, i, bitcoin.TxOut((claimed or {}).get(i, amount), script)
        )
        if proven is None or i in proven:
            psbt = bitcoin.set_non_witness_utxo(psbt, i, previous[i])
    for i, hash_type in (sighash_types or {}).items():
        psbt = bitcoin.set_sighash_type(psbt, i, hash_type)
    return psbt


def unit_limit(units: int) -> Instruction:
    """A ``SetComputeUnitLimit`` instruction."""
    return solders_budget.set_compute_unit_limit(units)


def unit_price(micro_lamports: int) -> Instruction:
    """A ``SetComputeUnitPrice`` instruction (micro-lamports per compute unit)."""
    return solders_budget.set_compute_unit_price(micro_lamports)


def solana_message(
    budget: Sequence[Instruction], key: bytes, blockhash: Hash = SOLANA_BLOCKHASH
) -> bytes:
    """A legacy message paid by ``key``: the ``budget`` instructions, then a transfer of
    :data:`SOLANA_LAMPORTS` from ``key`` to :data:`SOLANA_PAYEE`."""
    payer = Pubkey(key)
    move = transfer(
        TransferParams(from_pubkey=payer, to_pubkey=SOLANA_PAYEE, lamports=SOLANA_LAMPORTS)
    )
    return bytes(Message.new_with_blockhash([*budget, move], payer, blockhash))
