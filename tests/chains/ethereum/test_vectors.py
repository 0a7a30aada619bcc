"""Published Ethereum vectors, every digest and encoding reproduced.

Sources (see tests/vectors/SOURCES.md):
- ``ethereum/eip155-spec-example.json``: ethereum/EIPs EIPS/eip-155.md, "Example".
- ``ethereum/eip712-spec-mail-example.json``: ethereum/EIPs EIPS/eip-712.md and
  assets/eip-712/Example.js.
- ``ethereum/eth-account-vectors.json``: data literals of ethereum/eth-account
  tests/core/test_accounts.py (and the ethereum/tests cases it embeds).
"""

from __future__ import annotations

import pytest

from shardvault.chains.errors import SignatureAssemblyError
from shardvault.chains.ethereum import (
    AccessListEntry,
    AccessListTransaction,
    FeeMarketTransaction,
    LegacyTransaction,
    SignedTransaction,
    Transaction,
    address_from_public_key,
    assemble,
    assemble_from_v,
    assemble_with_public_key,
    decode_message_signature,
    domain_separator,
    encode_data,
    encode_message_signature,
    encode_signed,
    encode_type,
    encode_unsigned,
    hash_struct,
    parse_address,
    parse_transaction,
    parse_typed_data,
    personal_message_hash,
    recover_message_signer,
    recover_sender,
    signing_hash,
    signing_payload,
    transaction_hash,
    type_hash,
    typed_data_hash,
)
from shardvault.chains.ethereum.models import SECP256K1_ORDER
from tests.chains.ethereum.helpers import test_only_public_key, test_only_sign_digest
from tests.vectors import load_vector


def _int(value: object) -> int:
    """Vector integers come as JSON numbers or 0x-hex strings."""
    if isinstance(value, int):
        return value
    assert isinstance(value, str)
    return int(value, 16) if value.startswith("0x") else int(value)


def _hex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def _build(fields: dict[str, object]) -> Transaction:
    """Turn a vector's web3-style transaction dict into our model."""
    to_text = fields.get("to") or ""
    assert isinstance(to_text, str)
    to = parse_address(to_text) if to_text else None
    data = _hex(str(fields.get("data") or ""))
    tx_type = _int(fields.get("type", 0))
    chain = fields.get("chainId")
    chain_id = None if chain is None else _int(chain)
    common = {
        "nonce": _int(fields["nonce"]),
        "gas_limit": _int(fields["gas"]),
        "to": to,
        "value": _int(fields["value"]),
        "data": data,
    }
    access = tuple(
        AccessListEntry(parse_address(e["address"]), tuple(_hex(k) for k in e["storageKeys"]))
        for e in fields.get("accessList", [])  # type: ignore[attr-defined]
    )
    if tx_type == 0:
        return LegacyTransaction(chain_id=chain_id, gas_price=_int(fields["gasPrice"]), **common)  # type: ignore[arg-type]
    assert chain_id is not None
    if tx_type == 1:
        return AccessListTransaction(
            chain_id=chain_id,
            gas_price=_int(fields["gasPrice"]),
            access_list=access,
            **common,  # type: ignore[arg-type]
        )
    return FeeMarketTransaction(
        chain_id=chain_id,
        max_priority_fee_per_gas=_int(fields["maxPriorityFeePerGas"]),  # type: ignore[arg-type]
        max_fee_per_gas=_int(fields["maxFeePerGas"]),  # type: ignore[arg-type]
        access_list=access,
        **common,  # type: ignore[arg-type]
    )


def _sign(tx: Transaction, key: bytes) -> SignedTransaction:
    r, s, y = test_only_sign_digest(key, signing_hash(tx))
    return assemble(tx, r, s, y)


def test_eip155_spec_example() -> None:
    """EIP-155 "Example": signing RLP, signing hash, v/r/s and the signed transaction."""
    vector = load_vector("ethereum/eip155-spec-example.json")
    tx = _build(vector["tx"])
    assert signing_payload(tx) == _hex(vector["signing_data_rlp"])
    assert signing_hash(tx) == _hex(vector["signing_hash"])
    key = _hex(vector["private_key"])
    signed = _sign(tx, key)
    assert signed.v == vector["v"]
    assert signed.signature.r == int(vector["r_dec"]) == int(vector["r_hex"], 16)
    assert signed.signature.s == int(vector["s_dec"]) == int(vector["s_hex"], 16)
    assert encode_signed(signed) == _hex(vector["signed_tx"])
    # Assembly from the published (r, s, v) alone gives the same bytes.
    from_v = assemble_from_v(tx, int(vector["r_dec"]), int(vector["s_dec"]), vector["v"])
    assert encode_signed(from_v) == _hex(vector["signed_tx"])
    # And the parser gives back the fields and the signer.
    parsed = parse_transaction(_hex(vector["signed_tx"]))
    assert parsed == signed
    assert isinstance(parsed, SignedTransaction)
    assert recover_sender(parsed) == address_from_public_key(test_only_public_key(key))


@pytest.mark.parametrize("case_id", ["web3js_hex_str_example", "31byte_r_and_s", "access_list_tx"])
def test_eth_account_sign_transaction(case_id: str) -> None:
    """eth-account test_accounts.py sign_transaction cases: raw tx, tx hash, v, r, s."""
    cases = load_vector("ethereum/eth-account-vectors.json")["sign_transaction"]
    case = next(c for c in cases if c["id"] == case_id)
    tx = _build(case["tx"])
    key = _hex(case["private_key"])
    signed = _sign(tx, key)
    assert signed.v == case["v"]
    assert signed.signature.r == int(case["r_dec"]) == int(case["r_hex"], 16)
    assert signed.signature.s == int(case["s_dec"]) == int(case["s_hex"], 16)
    assert encode_signed(signed) == _hex(case["expected_raw_tx"])
    assert transaction_hash(signed) == _hex(case["expected_tx_hash"])
    # MPC-style assembly: (r, s) and the public key, parity found by recovery.
    by_key = assemble_with_public_key(
        tx, signed.signature.r, signed.signature.s, test_only_public_key(key)
    )
    assert by_key == signed
    assert parse_transaction(_hex(case["expected_raw_tx"])) == signed


def _ethereum_tests_cases() -> list[dict[str, object]]:
    return load_vector("ethereum/eth-account-vectors.json")["sign_transaction_from_ethereum_tests"][
        "cases"
    ]


@pytest.mark.parametrize("index", range(6))
def test_ethereum_tests_cases(index: int) -> None:
    """ethereum/tests cases embedded in eth-account: unsigned and signed encodings.

    One legacy case carries a pre-EIP-2 high-s signature (see its ``note``): our low-s
    signer reproduces r and yields s' = n - s with the flipped v the note gives, and the
    parser refuses the original high-s bytes with a typed error.
    """
    case = _ethereum_tests_cases()[index]
    tx = _build(case)
    key = _hex(str(case["key"]))
    if "unsigned" in case:
        assert encode_unsigned(tx) == _hex(str(case["unsigned"]))
        assert parse_transaction(_hex(str(case["unsigned"]))) == tx
    ours = _sign(tx, key)
    expected = _hex(str(case["signed"]))
    if "note" in case:
        published = parse_signed_fields(expected)
        assert ours.signature.r == published["r"]
        assert ours.signature.s == SECP256K1_ORDER - published["s"]
        assert ours.v == 0x1C
        assert published["v"] == 0x1B
        note = str(case["note"])
        low_s_hex = note.split("instead of 0x1b: ")[1].split(" ")[0]
        prefix, suffix = low_s_hex.split("...")
        assert encode_signed(ours).hex().startswith(prefix)
        assert encode_signed(ours).hex().endswith(suffix)
        with pytest.raises(SignatureAssemblyError) as info:
            parse_transaction(expected)
        assert info.value.field == "s"
    else:
        assert encode_signed(ours) == expected
        assert parse_transaction(expected) == ours
        assert recover_sender(ours) == address_from_public_key(test_only_public_key(key))


def parse_signed_fields(raw: bytes) -> dict[str, int]:
    """Read v, r, s of a legacy transaction without our signature checks (via rlp)."""
    import rlp

    items = rlp.decode(raw)
    return {name: int.from_bytes(items[i], "big") for name, i in (("v", 6), ("r", 7), ("s", 8))}


def test_eth_account_recover_transaction() -> None:
    """eth-account recover_transaction: the sender of a raw signed transaction."""
    for case in load_vector("ethereum/eth-account-vectors.json")["recover_transaction"]:
        parsed = parse_transaction(_hex(case["raw_tx"]))
        assert isinstance(parsed, SignedTransaction)
        assert recover_sender(parsed).checksummed == case["expected_sender"]


def test_eth_account_personal_sign() -> None:
    """eth-account EIP-191 personal_sign: digest, v/r/s and the 65-byte signature."""
    vectors = load_vector("ethereum/eth-account-vectors.json")
    for case in vectors["personal_sign_eip191"]:
        digest = personal_message_hash(case["message_utf8"].encode())
        assert digest == _hex(case["eip191_v0x45_hash"])
        key = _hex(case["private_key"])
        r, s, y = test_only_sign_digest(key, digest)
        assert (r, s, 27 + y) == (int(case["r_dec"]), int(case["s_dec"]), case["v"])
        from shardvault.chains.ethereum import Signature

        assert encode_message_signature(Signature(r, s, y)) == _hex(case["signature"])
        signature = decode_message_signature(_hex(case["signature"]))
        signer = recover_message_signer(digest, signature)
        assert signer == address_from_public_key(test_only_public_key(key))
    for case in vectors["personal_sign_recover"]:
        digest = personal_message_hash(case["message_utf8"].encode())
        signature = decode_message_signature(_hex(case["r"]) + _hex(case["s"]) + bytes([case["v"]]))
        assert recover_message_signer(digest, signature).checksummed == case["expected_signer"]


def test_eth_account_eip191_hashes() -> None:
    """eth-account encode_defunct + hash: text (as UTF-8, even when it looks like hex)
    and raw bytes."""
    vectors = load_vector("ethereum/eth-account-vectors.json")
    for case in vectors["eip191_hash_message_text"]:
        digest = personal_message_hash(case["message_utf8"].encode("utf-8"))
        assert digest == _hex(case["eip191_hash"])
    for case in vectors["eip191_hash_message_hexbytes"]:
        assert personal_message_hash(_hex(case["message_hex_bytes"])) == _hex(case["eip191_hash"])


def test_eip712_mail_example_every_intermediate() -> None:
    """EIP-712 Mail example: encodeType, typeHash, encodeData, hashStruct, domain
    separator, signing hash, and the signature by keccak256("cow")."""
    vector = load_vector("ethereum/eip712-spec-mail-example.json")
    typed = parse_typed_data(vector["typed_data"])
    assert encode_type("Mail", typed.types) == vector["encodeType_Mail"]
    assert type_hash("Mail", typed.types) == _hex(vector["typeHash_Mail"])
    assert encode_data(typed) == _hex(vector["encodeData_Mail_message"])
    assert hash_struct(typed) == _hex(vector["hashStruct_message"])
    assert domain_separator(typed) == _hex(vector["domainSeparator"])
    digest = typed_data_hash(typed)
    assert digest == _hex(vector["signing_hash"])
    key = _hex(vector["private_key"])
    r, s, y = test_only_sign_digest(key, digest)
    assert (r, s, 27 + y) == (int(vector["r"], 16), int(vector["s"], 16), vector["v"])
    from shardvault.chains.ethereum import Signature

    assert encode_message_signature(Signature(r, s, y)) == _hex(vector["signature"])
    signer = recover_message_signer(digest, decode_message_signature(_hex(vector["signature"])))
    assert signer.checksummed.lower() == vector["signer_address"]
