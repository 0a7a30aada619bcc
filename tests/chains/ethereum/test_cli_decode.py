"""``shardvault chain decode``: one JSON object on success, one stderr line on refusal.

The signed example is eth-account's EIP-1559 vector from ethereum/eth-account
tests/core/test_accounts.py (via tests/vectors/ethereum/eth-account-vectors.json).
"""

from __future__ import annotations

import json
import sys
import types

import pytest
from click.testing import CliRunner

from shardvault.chains.amounts import Wei
from shardvault.chains.ethereum import (
    FeeParameters,
    address_from_public_key,
    encode_unsigned,
    erc20_transfer,
    signing_hash,
)
from shardvault.cli.main import cli
from tests.chains.ethereum.helpers import test_only_public_key
from tests.vectors import load_vector


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["chain", "decode", *args])
    return result.exit_code, result.stdout, result.stderr


def test_decode_signed_fee_market_transaction() -> None:
    case = load_vector("ethereum/eth-account-vectors.json")["sign_transaction_from_ethereum_tests"][
        "cases"
    ][4]
    code, out, err = _run("--chain", "ethereum", case["signed"])
    assert code == 0, err
    decoded = json.loads(out)
    key = bytes.fromhex(case["key"])
    assert decoded["type"] == 2
    assert decoded["chain_id"] == int(case["chainId"], 16)
    assert decoded["nonce"] == int(case["nonce"], 16)
    assert decoded["to"] == case["to"]
    assert decoded["value"] == str(int(case["value"], 16))
    assert decoded["data"] == case["data"]
    assert decoded["max_fee_per_gas"] == str(int(case["maxFeePerGas"], 16))
    assert decoded["max_priority_fee_per_gas"] == str(int(case["maxPriorityFeePerGas"], 16))
    assert decoded["gas_limit"] == int(case["gas"], 16)
    assert decoded["signed"] is True
    assert decoded["from"] == address_from_public_key(test_only_public_key(key)).checksummed
    assert decoded["hash"].startswith("0x")
    assert len(decoded["hash"]) == 66
    assert decoded["signing_hash"].startswith("0x")


def test_decode_unsigned_erc20_transfer_shows_the_summary() -> None:
    tx = erc20_transfer(
        chain_id=1,
        nonce=7,
        token="0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        to="0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        amount="2.5",
        decimals=6,
        fees=FeeParameters(Wei(3), Wei(1), 65000),
    )
    code, out, err = _run("--chain", "ethereum", encode_unsigned(tx).hex())
    assert code == 0, err
    decoded = json.loads(out)
    assert decoded["signed"] is False
    assert decoded["hash"] is None
    assert "from" not in decoded
    assert decoded["signing_hash"] == "0x" + signing_hash(tx).hex()
    assert decoded["summary"]["kind"] == "token_transfer"
    assert decoded["summary"]["recipient"] == "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
    assert decoded["summary"]["amount"] == "2500000"
    assert decoded["summary"]["method"] == "transfer(address,uint256)"


def test_decode_typed_data() -> None:
    vector = load_vector("ethereum/eip712-spec-mail-example.json")
    code, out, err = _run("--chain", "ethereum", json.dumps(vector["typed_data"]))
    assert code == 0, err
    decoded = json.loads(out)
    assert decoded["signing_hash"] == vector["signing_hash"]
    assert decoded["domain_separator"] == vector["domainSeparator"]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ("0xzz", "not valid hex"),
        ("0x02c0", "fee"),
        ("0x03c0", "type"),
        ("{not json", "not valid JSON"),
        ("0x", "empty"),
    ],
)
def test_invalid_input_is_one_stderr_line(data: str, needle: str) -> None:
    code, out, err = _run("--chain", "ethereum", data)
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: ")
    if needle != "fee":
        assert needle in err


def test_missing_chain_module_is_reported_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chain whose module lacks ``describe`` (or is absent) is 'not available'."""
    monkeypatch.setitem(sys.modules, "shardvault.chains.solana", types.ModuleType("stub"))
    code, out, err = _run("--chain", "solana", "abc")
    assert code == 1
    assert out == ""
    assert "not available" in err
    monkeypatch.setitem(sys.modules, "shardvault.chains.solana", None)
    code, out, err = _run("--chain", "solana", "abc")
    assert code == 1
    assert "not available" in err


def test_data_from_stdin() -> None:
    tx_hex = load_vector("ethereum/eip155-spec-example.json")["signed_tx"]
    result = CliRunner().invoke(cli, ["chain", "decode", "--chain", "ethereum", "-"], input=tx_hex)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["from"] == "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"
