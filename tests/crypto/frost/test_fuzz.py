"""Fuzz the FROST parsers: arbitrary or mutated bytes raise only our typed errors.

Network parsers (messages), key packages and share files are fed random bytes and
single-byte mutations of valid encodings; anything but a ShardvaultError escaping is a bug.
"""

import secrets

from hypothesis import given, settings
from hypothesis import strategies as st

from shardvault.crypto.errors import CryptoError
from shardvault.crypto.protocols.frost import (
    ED25519_SHA512,
    CommitmentMessage,
    DkgRound1,
    DkgRound1Message,
    DkgRound2Message,
    KeyPackage,
    SignatureShareMessage,
)
from shardvault.crypto.protocols.frost.local import run_dkg
from shardvault.crypto.sharefile import ShareFileError, ShareFileHeader, open_sealed, seal
from shardvault.errors import ShardvaultError

PARSERS = [
    DkgRound1Message.from_bytes,
    DkgRound2Message.from_bytes,
    CommitmentMessage.from_bytes,
    SignatureShareMessage.from_bytes,
    KeyPackage.from_bytes,
]
_KEY = run_dkg(ED25519_SHA512, 2, 3, secrets.token_bytes)[0]
_ROUND1 = DkgRound1(ED25519_SHA512, 1, 2, [1, 2, 3], bytes(32), secrets.token_bytes).message
VALID = [_ROUND1.to_bytes(), _KEY.to_bytes()]
_SEALED = seal(
    ShareFileHeader("eddsa-ed25519", 1, 2, 3, "00" * 32), b"test-only", b"pw", secrets.token_bytes
)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600))
def test_random_bytes_raise_only_typed_errors(data: bytes) -> None:
    for parse in PARSERS:
        try:
            parse(data)
        except ShardvaultError:
            pass


@settings(max_examples=300, deadline=None)
@given(
    which=st.integers(0, len(VALID) - 1),
    position=st.integers(0, 10_000),
    value=st.integers(0, 255),
)
def test_mutated_encodings_raise_only_typed_errors(which: int, position: int, value: int) -> None:
    data = bytearray(VALID[which])
    data[position % len(data)] = value
    for parse in PARSERS:
        try:
            parse(bytes(data))
        except CryptoError:
            pass


@settings(max_examples=60, deadline=None)
@given(position=st.integers(0, 10_000), value=st.integers(0, 255))
def test_mutated_share_files_raise_only_typed_errors(position: int, value: int) -> None:
    data = bytearray(_SEALED)
    data[position % len(data)] = value
    try:
        _, secret = open_sealed(bytes(data), b"pw")
    except ShareFileError:
        return
    # A mutation that still opens can only be one JSON parsing ignores (such as white
    # space); the plaintext must be unchanged.
    assert secret == b"test-only"
