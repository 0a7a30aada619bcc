"""``describe``: the JSON view of PSBTs and raw transactions used by ``chain decode``.

Inputs come from the BIP174 vectors (``tests/vectors/psbt/bip174-cases.json``) and
from PSBTs signed in these tests; every value shown is checked against the parsed object.
"""

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shardvault.chains.bitcoin import Network, extract_transaction, finalize
from shardvault.chains.bitcoin import describe as _describe
from shardvault.chains.errors import ChainError, DecodeError
from tests.vectors import load_vector

from .helpers import p2tr_spend, p2wpkh_spend, sign_p2tr, sign_p2wpkh


def describe(text: str, network: Network = Network.MAINNET) -> Any:
    """The description, typed loosely for indexing in assertions."""
    return _describe(text, network)


BIP174 = load_vector("psbt/bip174-cases.json")["cases"]


def test_describe_signed_psbt_base64_and_hex() -> None:
    psbt, key = p2wpkh_spend()
    signed = sign_p2wpkh(psbt, 0, key)
    out = describe(signed.to_base64(), Network.REGTEST)
    assert out == describe(signed.serialize().hex(), Network.REGTEST)
    json.dumps(out)
    assert out["kind"] == "psbt"
    assert out["fee_sat"] == "10000"
    assert out["input_total_sat"] == "100000"
    assert out["signed_inputs"] == [0]
    assert out["complete"] is False
    (inp,) = out["inputs"]
    assert inp["address"].startswith("bcrt1q")
    assert inp["script_type"] == "p2wpkh"
    (output,) = out["outputs"]
    assert output["amount_sat"] == "90000"
    assert output["amount_btc"] == "0.0009"


def test_describe_unsigned_and_finalized() -> None:
    psbt, key = p2tr_spend()
    assert describe(psbt.to_base64())["signed_inputs"] == []
    final = finalize(sign_p2tr(psbt, 0, key))
    out = describe(final.to_base64())
    assert out["complete"] is True
    assert out["inputs"][0]["finalized"] is True
    assert out["outputs"][0]["address"].startswith("bc1p")


def test_describe_raw_transaction() -> None:
    psbt, key = p2wpkh_spend()
    tx = extract_transaction(finalize(sign_p2wpkh(psbt, 0, key)))
    out = describe(tx.serialize().hex(), Network.TESTNET)
    assert out["kind"] == "transaction"
    assert out["txid"] == tx.txid_hex
    assert out["vsize"] == tx.vsize()
    assert out["inputs"][0]["signed"] is True
    assert out["fee_sat"] is None
    assert out["outputs"][0]["address"].startswith("tb1q")


@pytest.mark.parametrize("case", [c for c in BIP174 if c["expect"] != "invalid"])
def test_describe_every_valid_vector(case: dict[str, str]) -> None:
    out = describe(case["base64"])
    json.dumps(out)
    assert out["kind"] == "psbt"


def test_describe_bad_input() -> None:
    for bad in ("", "zz", "cHNidP8BAAoCAAAAAAAAAAAAAA", "0200"):
        with pytest.raises(ChainError):
            describe(bad)
    with pytest.raises(DecodeError) as exc:
        describe("x" * 8_000_001)
    assert exc.value.field == "data"


@given(st.text(max_size=200))
def test_describe_fuzz_only_typed_errors(text: str) -> None:
    try:
        describe(text)
    except ChainError:
        pass


def test_cli_chain_decode_bitcoin() -> None:
    from click.testing import CliRunner

    from shardvault.cli.main import cli

    psbt, key = p2wpkh_spend()
    signed = sign_p2wpkh(psbt, 0, key)
    result = CliRunner().invoke(cli, ["chain", "decode", "--chain", "bitcoin", signed.to_base64()])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["fee_sat"] == "10000"
    assert out["signed_inputs"] == [0]
    bad = CliRunner().invoke(cli, ["chain", "decode", "--chain", "bitcoin", "cHNidP8BAA=="])
    assert bad.exit_code == 1


def test_vsize_and_fee_rate() -> None:
    psbt, key = p2wpkh_spend()
    unsigned = describe(psbt.to_base64())
    final = finalize(sign_p2wpkh(psbt, 0, key))
    real = extract_transaction(final).vsize()
    assert unsigned["vsize_is_estimate"] is True
    # The estimate assumes a 72-byte signature: never below the real size, at most 1 vB over.
    assert 0 <= unsigned["vsize"] - real <= 1
    complete = describe(final.to_base64())
    assert complete["vsize_is_estimate"] is False
    assert complete["vsize"] == real
    assert complete["fee_rate_sat_per_vb"] == f"{10_000 * 1000 // real / 1000:g}"
    tr, tr_key = p2tr_spend()
    tr_final = finalize(sign_p2tr(tr, 0, tr_key))
    assert describe(tr.to_base64())["vsize"] == extract_transaction(tr_final).vsize()
    # A P2PKH input cannot be sized: no estimate rather than a wrong one.
    vector = next(c for c in BIP174 if c["description"].startswith("PSBT with one P2PKH input."))
    assert describe(vector["base64"])["vsize"] is None
