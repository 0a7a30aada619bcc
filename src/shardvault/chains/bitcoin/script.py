"""Output scripts shardvault builds and recognises.

P2WPKH is ``OP_0 <20-byte HASH160(pubkey)>`` and P2WSH ``OP_0 <32-byte SHA256(script)>``
(BIP141 "Witness program"); P2TR is ``OP_1 <32-byte x-only output key>`` (BIP341
"Script validation rules"). P2PKH and P2SH are recognised so that PSBTs and transactions
from other wallets describe correctly. The P2WPKH script code signed under BIP143 is the
P2PKH script of the same key hash (BIP143 "Specification", item 5).
"""

from enum import Enum

from coincurve import PublicKey

from shardvault.chains.bitcoin.encoding import hash160
from shardvault.chains.errors import InvalidAddressError


class ScriptType(Enum):
    """The kinds of output script shardvault tells apart."""

    P2PKH = "p2pkh"
    P2SH = "p2sh"
    P2WPKH = "p2wpkh"
    P2WSH = "p2wsh"
    P2TR = "p2tr"
    WITNESS_UNKNOWN = "witness_unknown"
    NULL_DATA = "nulldata"
    NONSTANDARD = "nonstandard"


def check_compressed_pubkey(pubkey: bytes, field: str = "pubkey") -> bytes:
    """Refuse anything but a valid 33-byte compressed secp256k1 point (BIP143 policy).

    Raises:
        InvalidAddressError: wrong length or not a point on the curve.
    """
    if len(pubkey) != 33 or pubkey[0] not in (2, 3):
        raise InvalidAddressError("must be a 33-byte compressed public key", field=field)
    try:
        PublicKey(pubkey)
    except ValueError:
        raise InvalidAddressError("is not a point on secp256k1", field=field) from None
    return pubkey


def p2wpkh_script(pubkey: bytes) -> bytes:
    """The P2WPKH output script of a compressed public key."""
    return b"\x00\x14" + hash160(check_compressed_pubkey(pubkey))


def p2tr_script(output_key: bytes) -> bytes:
    """The P2TR output script of a 32-byte x-only output key (already tweaked)."""
    if len(output_key) != 32:
        raise InvalidAddressError("must be a 32-byte x-only key", field="output_key")
    return b"\x51\x20" + output_key


def p2wpkh_script_code(key_hash: bytes) -> bytes:
    """BIP143 scriptCode of a P2WPKH input: ``OP_DUP OP_HASH160 <hash> OP_EQUALVERIFY
    OP_CHECKSIG`` with its length prefix."""
    return b"\x19\x76\xa9\x14" + key_hash + b"\x88\xac"


def classify(script_pubkey: bytes) -> ScriptType:
    """Recognise the standard output script templates."""
    spk = script_pubkey
    n = len(spk)
    if n == 25 and spk[:3] == b"\x76\xa9\x14" and spk[23:] == b"\x88\xac":
        return ScriptType.P2PKH
    if n == 23 and spk[:2] == b"\xa9\x14" and spk[22] == 0x87:
        return ScriptType.P2SH
    if n == 22 and spk[:2] == b"\x00\x14":
        return ScriptType.P2WPKH
    if n == 34 and spk[:2] == b"\x00\x20":
        return ScriptType.P2WSH
    if n == 34 and spk[:2] == b"\x51\x20":
        return ScriptType.P2TR
    if 4 <= n <= 42 and spk[1] == n - 2 and 0x51 <= spk[0] <= 0x60:
        return ScriptType.WITNESS_UNKNOWN
    if n >= 1 and spk[0] == 0x6A:
        return ScriptType.NULL_DATA
    return ScriptType.NONSTANDARD


def is_witness_program(script: bytes) -> bool:
    """BIP141: a script of one push opcode (OP_0..OP_16) then a 2-40 byte direct push."""
    n = len(script)
    return 4 <= n <= 42 and (script[0] == 0 or 0x51 <= script[0] <= 0x60) and script[1] == n - 2
