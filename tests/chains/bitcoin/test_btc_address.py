"""Bech32/bech32m and segwit addresses against the BIP173 and BIP350 test vectors.

Vectors: ``data/bech32_vectors.json``, transcribed from bitcoin/bips ``bip-0173.mediawiki``
and ``bip-0350.mediawiki`` ("Test vectors"). Addresses of keys are cross-checked with
python-bitcointx's own address encoder.
"""

import json
from pathlib import Path

import pytest
from bitcointx import ChainParams
from bitcointx.core.script import CScript
from bitcointx.wallet import CCoinAddress
from coincurve import PublicKeyXOnly
from hypothesis import given
from hypothesis import strategies as st

from shardvault.chains.bitcoin import (
    Network,
    decode_segwit_address,
    encode_segwit_address,
    output_key,
    p2wpkh_script,
    script_pubkey_for_address,
)
from shardvault.chains.bitcoin.address import (
    Bech32Variant,
    address_from_script,
    bech32_decode,
    bech32_encode,
)
from shardvault.chains.errors import InvalidAddressError

from .helpers import make_key

VECTORS = json.loads((Path(__file__).parent / "data" / "bech32_vectors.json").read_text())
HRP_NETWORK = {"bc": Network.MAINNET, "tb": Network.TESTNET}
ALL_NETWORKS = list(Network)


@pytest.mark.parametrize(
    ("text", "variant"),
    [(t, Bech32Variant.BECH32) for t in VECTORS["bech32_valid"]]
    + [(t, Bech32Variant.BECH32M) for t in VECTORS["bech32m_valid"]],
)
def test_valid_bech32_strings(text: str, variant: Bech32Variant) -> None:
    hrp, data, found = bech32_decode(text)
    assert found is variant
    assert bech32_encode(hrp, data, variant) == text.lower()


@pytest.mark.parametrize(("text", "reason"), VECTORS["bech32_invalid"] + VECTORS["bech32m_invalid"])
def test_invalid_bech32_strings(text: str, reason: str) -> None:
    with pytest.raises(InvalidAddressError) as exc:
        bech32_decode(text)
    assert exc.value.field == "address", reason


@pytest.mark.parametrize(("address", "script_hex"), VECTORS["segwit_valid_bip350"])
def test_valid_segwit_addresses(address: str, script_hex: str) -> None:
    network = HRP_NETWORK[address[:2].lower()]
    decoded = decode_segwit_address(address, network)
    assert decoded.script_pubkey.hex() == script_hex
    assert str(decoded) == address.lower()
    assert script_pubkey_for_address(address, network).hex() == script_hex
    assert address_from_script(bytes.fromhex(script_hex), network) == address.lower()


@pytest.mark.parametrize(
    ("address", "reason"),
    VECTORS["segwit_invalid_bip350"]
    + VECTORS["segwit_invalid_bip173"]
    + VECTORS["bip173_v1plus_bech32_now_invalid"],
)
@pytest.mark.parametrize("network", ALL_NETWORKS, ids=lambda n: n.name.lower())
def test_invalid_segwit_addresses(address: str, reason: str, network: Network) -> None:
    with pytest.raises(InvalidAddressError) as exc:
        decode_segwit_address(address, network, field="to")
    assert exc.value.field == "to", reason


def test_checksum_variant_mix_up_is_named() -> None:
    # BIP350: a v1 program under a bech32 checksum, and v0 under bech32m.
    with pytest.raises(InvalidAddressError, match="bech32m checksum, not bech32"):
        decode_segwit_address(
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd", Network.MAINNET
        )
    with pytest.raises(InvalidAddressError, match="bech32 checksum, not bech32m"):
        decode_segwit_address("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh", Network.MAINNET)


def test_wrong_network_is_refused() -> None:
    mainnet = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    for network in (Network.TESTNET, Network.SIGNET, Network.REGTEST):
        with pytest.raises(InvalidAddressError, match="is for prefix 'bc'"):
            decode_segwit_address(mainnet, network)
        with pytest.raises(InvalidAddressError):
            script_pubkey_for_address(mainnet, network)


@pytest.mark.parametrize(
    ("network", "chain"),
    [
        (Network.MAINNET, "bitcoin/mainnet"),
        (Network.TESTNET, "bitcoin/testnet"),
        (Network.SIGNET, "bitcoin/signet"),
        (Network.REGTEST, "bitcoin/regtest"),
    ],
)
def test_key_addresses_match_bitcointx(network: Network, chain: str) -> None:
    key = make_key("address")
    p2wpkh = encode_segwit_address(network, 0, p2wpkh_script(key.public_key.format())[2:])
    internal = PublicKeyXOnly.from_secret(key.secret).format()
    p2tr = output_key(internal).address(network)
    with ChainParams(chain):
        theirs_wpkh = str(
            CCoinAddress.from_scriptPubKey(CScript(p2wpkh_script(key.public_key.format())))
        )
        theirs_tr = str(CCoinAddress.from_scriptPubKey(CScript(output_key(internal).script_pubkey)))
    assert p2wpkh == theirs_wpkh
    assert p2tr == theirs_tr
    assert p2tr.startswith(network.hrp + "1p")


def test_legacy_base58_addresses() -> None:
    # P2PKH and P2SH addresses round-trip through their scripts, per network version byte.
    p2pkh = bytes.fromhex("76a914d0c59903c5bac2868760e90fd521a4665aa7652088ac")
    p2sh = bytes.fromhex("a9143545e6e33b832c47050f24d3eeb93c9c03948bc787")
    for network in ALL_NETWORKS:
        for script in (p2pkh, p2sh):
            address = address_from_script(script, network)
            assert address is not None
            assert script_pubkey_for_address(address, network) == script
    good = address_from_script(p2pkh, Network.MAINNET)
    assert good is not None
    corrupted = good[:-1] + ("2" if good[-1] != "2" else "3")
    with pytest.raises(InvalidAddressError, match="checksum"):
        script_pubkey_for_address(corrupted, Network.MAINNET)
    with pytest.raises(InvalidAddressError, match="version byte"):
        script_pubkey_for_address(good, Network.TESTNET)
    for bad in ("", "0OIl", "1" * 100):
        with pytest.raises(InvalidAddressError) as exc:
            script_pubkey_for_address(bad, Network.MAINNET, field="destination")
        assert exc.value.field == "destination"


def test_unknown_network_name() -> None:
    assert Network.from_name("Signet") is Network.SIGNET
    with pytest.raises(InvalidAddressError) as exc:
        Network.from_name("litecoin")
    assert exc.value.field == "network"


@given(
    network=st.sampled_from(ALL_NETWORKS),
    version=st.integers(0, 16),
    program=st.binary(min_size=2, max_size=40),
)
def test_segwit_round_trip(network: Network, version: int, program: bytes) -> None:
    if version == 0 and len(program) not in (20, 32):
        with pytest.raises(InvalidAddressError):
            encode_segwit_address(network, version, program)
        return
    address = encode_segwit_address(network, version, program)
    decoded = decode_segwit_address(address, network)
    assert (decoded.witness_version, decoded.program) == (version, program)
    assert decode_segwit_address(address.upper(), network) == decoded


@given(st.text(max_size=120))
def test_address_fuzz_only_typed_errors(text: str) -> None:
    for network in (Network.MAINNET, Network.REGTEST):
        try:
            script_pubkey_for_address(text, network)
        except InvalidAddressError:
            pass


@given(
    program=st.binary(min_size=20, max_size=20),
    position=st.integers(min_value=4, max_value=41),
    replacement=st.sampled_from("qpzry9x8gf2tvdw0s3jn54khce6mua7l"),
)
def test_single_character_substitution_is_detected(
    program: bytes, position: int, replacement: str
) -> None:
    # BIP173 "Checksum design": every error of up to 4 characters is detected.
    address = encode_segwit_address(Network.MAINNET, 0, program)
    if address[position] == replacement:
        return
    mutated = address[:position] + replacement + address[position + 1 :]
    with pytest.raises(InvalidAddressError):
        decode_segwit_address(mutated, Network.MAINNET)


def test_key_and_script_validation() -> None:
    from shardvault.chains.bitcoin import p2tr_script, taproot_tweak
    from shardvault.chains.bitcoin.script import ScriptType, classify, is_witness_program
    from shardvault.chains.bitcoin.taproot import p2tr_address

    not_a_point = b"\xff" * 32
    for bad_key, field in ((bytes(31), "internal_key"), (not_a_point, "internal_key")):
        with pytest.raises(InvalidAddressError) as exc:
            taproot_tweak(bad_key)
        assert exc.value.field == field
    internal = PublicKeyXOnly.from_secret(make_key("address").secret).format()
    with pytest.raises(InvalidAddressError) as exc:
        taproot_tweak(internal, bytes(31))
    assert exc.value.field == "merkle_root"
    assert p2tr_address(internal, Network.SIGNET) == output_key(internal).address(Network.SIGNET)
    with pytest.raises(InvalidAddressError):
        p2tr_script(bytes(33))
    for bad_pub in (bytes(33), b"\x04" + bytes(32), b"\x02" + not_a_point):
        with pytest.raises(InvalidAddressError) as exc:
            p2wpkh_script(bad_pub)
        assert exc.value.field == "pubkey"
    assert classify(b"\x6a\x04abcd") is ScriptType.NULL_DATA
    assert classify(b"\x52\x02\x00\x00") is ScriptType.WITNESS_UNKNOWN
    assert classify(b"\xac") is ScriptType.NONSTANDARD
    assert is_witness_program(b"\x00\x14" + bytes(20))
    assert not is_witness_program(b"\x00\x15" + bytes(20))
    assert address_from_script(b"\xac", Network.MAINNET) is None
