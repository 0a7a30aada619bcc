"""Bitcoin transactions: model, serialization with and without witness, txid and wtxid.

The wire format is Bitcoin Core's ``CTransaction`` serialization; the segregated-witness
extension (marker ``0x00``, flag ``0x01``, one witness stack per input after the outputs)
is BIP144, and txid/wtxid, weight and virtual size are BIP141 ("Transaction ID",
"Transaction size calculations"). Parsing follows Core's ``UnserializeTransaction``: an
empty input list followed by a non-zero byte announces the extended format, a witness
flag with only empty witnesses is refused ("superfluous witness record"), and any other
flag is unknown optional data.
"""

from dataclasses import dataclass

from shardvault.chains.amounts import MAX_SATOSHI, Satoshi, parse_decimal_amount
from shardvault.chains.bitcoin.encoding import (
    ByteReader,
    check_size,
    compact_size,
    hash256,
    u32,
    u64,
    var_bytes,
)
from shardvault.chains.errors import DecodeError, InvalidAmountError

BTC_DECIMALS = 8
"""One BTC is 10**8 satoshi."""

SEQUENCE_FINAL = 0xFFFF_FFFF
"""nSequence that disables relative locktime and replace-by-fee signalling."""

SEQUENCE_RBF = 0xFFFF_FFFD
"""The highest nSequence that signals BIP125 replaceability while allowing a locktime."""

WITNESS_SCALE_FACTOR = 4
"""BIP141: a non-witness byte weighs four units, a witness byte one."""


def parse_btc_amount(text: str, *, field: str = "amount") -> Satoshi:
    """Parse a BTC amount such as ``"0.015"`` into satoshi, exactly.

    Raises:
        InvalidAmountError: not a plain non-negative decimal, more than 8 decimals, or
            above 21,000,000 BTC; the error names ``field``.
    """
    return Satoshi(parse_decimal_amount(text, BTC_DECIMALS, maximum=MAX_SATOSHI, field=field))


@dataclass(frozen=True, slots=True)
class OutPoint:
    """A reference to a transaction output: ``txid`` in internal (little-endian) byte order."""

    txid: bytes
    index: int

    def __post_init__(self) -> None:
        if len(self.txid) != 32:
            raise DecodeError("must be 32 bytes", field="outpoint.txid")
        if not 0 <= self.index <= 0xFFFF_FFFF:
            raise DecodeError("must fit in 32 bits", field="outpoint.index")

    @classmethod
    def from_display(cls, txid_hex: str, index: int) -> "OutPoint":
        """Build from the txid as block explorers and RPC show it (big-endian hex)."""
        try:
            raw = bytes.fromhex(txid_hex)
        except ValueError:
            raise DecodeError("is not hex", field="outpoint.txid") from None
        return cls(raw[::-1], index)

    @property
    def txid_hex(self) -> str:
        """The txid as RPC and explorers display it."""
        return self.txid[::-1].hex()

    def serialize(self) -> bytes:
        """36 bytes: txid then the index as a 32-bit little-endian integer."""
        return self.txid + u32(self.index)

    def __str__(self) -> str:
        return f"{self.txid_hex}:{self.index}"


@dataclass(frozen=True, slots=True)
class TxOut:
    """A transaction output: a value in satoshi and the script that locks it."""

    value: Satoshi
    script_pubkey: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.value <= MAX_SATOSHI:
            raise InvalidAmountError("must be between 0 and 21e14 satoshi", field="output.value")

    def serialize(self) -> bytes:
        """8-byte value then the length-prefixed script."""
        return u64(self.value) + var_bytes(self.script_pubkey)


@dataclass(frozen=True, slots=True)
class TxIn:
    """A transaction input: what it spends, its scriptSig, nSequence and witness stack."""

    prevout: OutPoint
    script_sig: bytes = b""
    sequence: int = SEQUENCE_FINAL
    witness: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.sequence <= 0xFFFF_FFFF:
            raise DecodeError("must fit in 32 bits", field="input.sequence")

    def serialize(self) -> bytes:
        """The non-witness part: outpoint, scriptSig, nSequence."""
        return self.prevout.serialize() + var_bytes(self.script_sig) + u32(self.sequence)


def serialize_witness(stack: tuple[bytes, ...]) -> bytes:
    """One input's witness: the item count then each item length-prefixed (BIP144)."""
    return compact_size(len(stack)) + b"".join(var_bytes(item) for item in stack)


@dataclass(frozen=True, slots=True)
class Transaction:
    """A Bitcoin transaction. Immutable: building a signed one makes a new object."""

    version: int
    inputs: tuple[TxIn, ...]
    outputs: tuple[TxOut, ...]
    locktime: int = 0

    def __post_init__(self) -> None:
        if not -(2**31) <= self.version < 2**31:
            raise DecodeError("must fit in a signed 32-bit integer", field="version")
        if not 0 <= self.locktime <= 0xFFFF_FFFF:
            raise DecodeError("must fit in 32 bits", field="locktime")

    @property
    def has_witness(self) -> bool:
        """Whether any input carries a non-empty witness stack."""
        return any(txin.witness for txin in self.inputs)

    def serialize(self, *, include_witness: bool = True) -> bytes:
        """The wire encoding; BIP144 extended format when a witness is present and wanted."""
        with_witness = include_witness and self.has_witness
        parts = [self.version.to_bytes(4, "little", signed=True)]
        if with_witness:
            parts.append(b"\x00\x01")
        parts.append(compact_size(len(self.inputs)))
        parts.extend(txin.serialize() for txin in self.inputs)
        parts.append(compact_size(len(self.outputs)))
        parts.extend(txout.serialize() for txout in self.outputs)
        if with_witness:
            parts.extend(serialize_witness(txin.witness) for txin in self.inputs)
        parts.append(u32(self.locktime))
        return b"".join(parts)

    def txid(self) -> bytes:
        """BIP141 txid: double SHA256 of the serialization without witness, internal order."""
        return hash256(self.serialize(include_witness=False))

    def wtxid(self) -> bytes:
        """BIP141 wtxid: double SHA256 of the serialization with witness, internal order."""
        return hash256(self.serialize())

    @property
    def txid_hex(self) -> str:
        """The txid as RPC and explorers display it (byte-reversed hex)."""
        return self.txid()[::-1].hex()

    @property
    def wtxid_hex(self) -> str:
        """The wtxid as RPC displays it."""
        return self.wtxid()[::-1].hex()

    def weight(self) -> int:
        """BIP141 weight: base size times three plus total size."""
        base = len(self.serialize(include_witness=False))
        total = len(self.serialize())
        return base * (WITNESS_SCALE_FACTOR - 1) + total

    def vsize(self) -> int:
        """BIP141 virtual size: weight divided by four, rounded up."""
        return -(-self.weight() // WITNESS_SCALE_FACTOR)


_MIN_INPUT_SIZE = 41
_MIN_OUTPUT_SIZE = 9


def _read_inputs(reader: ByteReader) -> list[TxIn]:
    count = reader.count("inputs", _MIN_INPUT_SIZE)
    inputs = []
    for i in range(count):
        txid = reader.read(32, f"inputs[{i}].prevout.txid")
        index = reader.u32(f"inputs[{i}].prevout.index")
        script_sig = reader.var_bytes(f"inputs[{i}].script_sig")
        sequence = reader.u32(f"inputs[{i}].sequence")
        inputs.append(TxIn(OutPoint(txid, index), script_sig, sequence))
    return inputs


def _read_outputs(reader: ByteReader) -> list[TxOut]:
    count = reader.count("outputs", _MIN_OUTPUT_SIZE)
    outputs = []
    for i in range(count):
        value = reader.u64(f"outputs[{i}].value")
        if value > MAX_SATOSHI:
            raise InvalidAmountError("exceeds 21e14 satoshi", field=f"outputs[{i}].value")
        outputs.append(TxOut(Satoshi(value), reader.var_bytes(f"outputs[{i}].script_pubkey")))
    return outputs


def read_transaction(reader: ByteReader, *, allow_witness: bool = True) -> Transaction:
    """Read one transaction from ``reader``, leaving the cursor after its locktime.

    Raises:
        DecodeError: truncated data, a non-shortest CompactSize, an unknown or superfluous
            witness flag.
        InvalidAmountError: an output value above the money range.
    """
    version = reader.i32("version")
    flags = 0
    inputs = _read_inputs(reader)
    if not inputs and allow_witness:
        # Core: an empty input list is either a real empty list or the segwit marker.
        flags = reader.u8("flag")
        if flags != 0:
            inputs = _read_inputs(reader)
            outputs = _read_outputs(reader)
        else:
            outputs = []
    else:
        outputs = _read_outputs(reader)
    if flags & 1:
        flags ^= 1
        with_witness = []
        for i, txin in enumerate(inputs):
            n_items = reader.count(f"inputs[{i}].witness", 1)
            stack = tuple(reader.var_bytes(f"inputs[{i}].witness[{j}]") for j in range(n_items))
            with_witness.append(TxIn(txin.prevout, txin.script_sig, txin.sequence, stack))
        inputs = with_witness
        if not any(txin.witness for txin in inputs):
            raise DecodeError("superfluous witness record: every stack is empty", field="witness")
    if flags:
        raise DecodeError(f"unknown optional data flag {flags:#x}", field="flag")
    locktime = reader.u32("locktime")
    return Transaction(version, tuple(inputs), tuple(outputs), locktime)


def parse_transaction(data: bytes, *, allow_witness: bool = True) -> Transaction:
    """Parse a complete serialized transaction; trailing bytes are refused.

    Raises:
        DecodeError: malformed, oversized or trailing data.
        InvalidAmountError: an output value above the money range.
    """
    check_size(data, "transaction")
    reader = ByteReader(data)
    tx = read_transaction(reader, allow_witness=allow_witness)
    reader.expect_end("transaction")
    return tx
