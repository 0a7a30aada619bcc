"""Solana legacy transfers reproduced bit for bit from the wallet-core vectors.

Vectors: ``tests/vectors/solana/wallet-core-transfer-vectors.json``, transcribed from
trustwallet/wallet-core ``tests/chains/Solana/SignerTests.cpp``. Their private keys are
TEST-ONLY keys published in that test file. For each case: the public key derived from the
seed, the unsigned message (hex and base58), the Ed25519 signature (libsodium via PyNaCl
over OUR message bytes), the signed wire transaction (hex and base58) and the parse back.
"""

from typing import Any

import base58
import pytest
from nacl.signing import SigningKey

from shardvault.chains.solana import (
    Pubkey,
    attach_signature,
    blockhash_from_base58,
    compile_legacy_message,
    describe,
    parse_message,
    parse_transaction,
    serialize_message,
    serialize_transaction,
    system,
    unsigned_transaction,
    verify_transaction,
)
from tests.vectors import load_vector

CASES = load_vector("solana/wallet-core-transfer-vectors.json")["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_wallet_core_transfer(case: dict[str, Any]) -> None:
    seed = bytes.fromhex(case["private_key_seed_hex"])
    assert base58.b58decode(case["private_key_b58"]) == seed
    key = SigningKey(seed)
    sender = Pubkey(bytes(key.verify_key))
    assert str(sender) == case["public_key_b58"]
    assert sender.raw.hex() == case["public_key_hex"]
    recipient = Pubkey.from_base58(case["to_b58"])
    message = compile_legacy_message(
        sender,
        [system.transfer(sender, recipient, case["lamports"])],
        blockhash_from_base58(case["recent_blockhash_b58"]),
    )
    message_bytes = serialize_message(message)
    assert message_bytes.hex() == case["message_hex"]
    if "expected_unsigned_message_b58" in case:
        assert base58.b58encode(message_bytes).decode() == case["expected_unsigned_message_b58"]
    signature = key.sign(message_bytes).signature
    assert signature.hex() == case["signature_hex"]
    assert base58.b58encode(signature).decode() == case["expected_signature_b58"]
    tx = attach_signature(unsigned_transaction(message), sender, signature)
    wire = serialize_transaction(tx)
    assert wire.hex() == case["signed_tx_hex"]
    assert base58.b58encode(wire).decode() == case["expected_signed_tx_b58"]
    # And back: the wire transaction and the message parse to the same objects.
    assert parse_transaction(wire) == tx
    assert parse_message(message_bytes) == message
    verify_transaction(tx)
    out = describe(case["expected_signed_tx_b58"])
    assert out["transaction_id"] == case["expected_signature_b58"]
    (ix,) = out["instructions"]  # type: ignore[misc]
    assert ix["decoded"] == {  # type: ignore[index]
        "type": "system_transfer",
        "from": case["public_key_b58"],
        "to": case["to_b58"],
        "lamports": str(case["lamports"]),
        "sol": "0.000000042",
    }
    assert out["signatures"] == [  # type: ignore[comparison-overlap]
        {
            "signer": case["public_key_b58"],
            "signature": case["expected_signature_b58"],
            "status": "valid",
        }
    ]
