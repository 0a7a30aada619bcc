"""The complaint building blocks: the DLEQ proof and the share encryption (issue #19)."""

import secrets

import pytest

from shardvault.crypto.errors import EncodingError, MisuseError, VerificationError
from shardvault.crypto.group import ED25519, SECP256K1
from shardvault.crypto.protocols.common import PartyId, SessionId
from shardvault.crypto.protocols.complaints import (
    Complaint,
    ComplaintKey,
    EncryptedShare,
    ShareContext,
    check_structure,
    decrypt_share,
    encrypt_share,
    judge,
    make_complaint,
)
from shardvault.crypto.zk import dleq

RNG = secrets.token_bytes
CONTEXT = ShareContext("test/protocol", SessionId(bytes(32)), PartyId(2), PartyId(1))


@pytest.mark.parametrize("group", [SECP256K1, ED25519], ids=lambda g: g.name)
def test_dleq_proves_and_refuses_every_change(group) -> None:  # type: ignore[no-untyped-def]
    x, r = group.random_scalar(RNG), group.random_scalar(RNG)
    base = group.base_multiply(r)
    public, shared = group.base_multiply(x), base * x
    proof = dleq.prove(group, b"ctx", x, base, RNG)
    dleq.verify(group, b"ctx", public, base, shared, proof)
    assert dleq.DleqProof.from_bytes(group, proof.to_bytes()) == proof
    other = group.base_multiply(group.random_scalar(RNG))
    bad = [
        (b"other ctx", public, base, shared, proof),
        (b"ctx", other, base, shared, proof),
        (b"ctx", public, other, shared, proof),
        (b"ctx", public, base, other, proof),
        (b"ctx", public, base, shared, dleq.DleqProof(proof.challenge + 1, proof.response)),
        (b"ctx", public, base, shared, dleq.DleqProof(proof.challenge, proof.response + 1)),
    ]
    for context, y, b, s, p in bad:
        with pytest.raises(VerificationError):
            dleq.verify(group, context, y, b, s, p)
    # A prover that does not know a common logarithm cannot answer: S = x'·R, x' != x.
    wrong = base * (x + 1)
    with pytest.raises(VerificationError):
        dleq.verify(group, b"ctx", public, base, wrong, proof)


def test_dleq_encoding_and_misuse() -> None:
    with pytest.raises(EncodingError):
        dleq.DleqProof.from_bytes(SECP256K1, bytes(63))
    with pytest.raises(EncodingError):
        dleq.DleqProof.from_bytes(SECP256K1, SECP256K1.order.to_bytes(32, "big") + bytes(32))
    with pytest.raises(MisuseError):
        dleq.prove(SECP256K1, b"", SECP256K1.scalar(0), SECP256K1.generator(), RNG)
    with pytest.raises(MisuseError):
        dleq.prove(SECP256K1, b"", SECP256K1.scalar(1), SECP256K1.identity(), RNG)


def test_share_round_trip_and_binding_to_its_context() -> None:
    key = ComplaintKey(RNG)
    assert "redacted" in repr(key)
    share = encrypt_share(CONTEXT, key.public, b"s" * 32, RNG)
    check_structure(share, 32)
    assert decrypt_share(CONTEXT, key, share) == b"s" * 32
    # Another dealer, recipient, session or protocol, or another key, does not open it.
    for other in (
        ShareContext("test/protocol", SessionId(bytes(32)), PartyId(3), PartyId(1)),
        ShareContext("test/protocol", SessionId(bytes(32)), PartyId(2), PartyId(3)),
        ShareContext("test/protocol", SessionId(b"\x01" * 32), PartyId(2), PartyId(1)),
        ShareContext("other/protocol", SessionId(bytes(32)), PartyId(2), PartyId(1)),
    ):
        assert decrypt_share(other, key, share) is None
    assert decrypt_share(CONTEXT, ComplaintKey(RNG), share) is None
    # Fresh randomness every time.
    again = encrypt_share(CONTEXT, key.public, b"s" * 32, RNG)
    assert again.ephemeral_key != share.ephemeral_key


def test_structure_checks() -> None:
    key = ComplaintKey(RNG)
    share = encrypt_share(CONTEXT, key.public, b"s" * 32, RNG)
    with pytest.raises(EncodingError):
        check_structure(EncryptedShare(b"\x02" + bytes(32), share.ciphertext), 32)
    with pytest.raises(EncodingError):
        check_structure(EncryptedShare(share.ephemeral_key, share.ciphertext[:-1]), 32)
    with pytest.raises(EncodingError):
        Complaint.from_wire({"accused": 1})
    with pytest.raises(EncodingError):
        Complaint.from_wire([1, 2])
    complaint = make_complaint(CONTEXT, key, share, RNG)
    assert Complaint.from_wire(complaint.to_wire()) == complaint


def test_judge_from_public_data_only() -> None:
    key = ComplaintKey(RNG)

    def valid(plaintext: bytes) -> bool:
        return plaintext == b"good" * 8

    good = encrypt_share(CONTEXT, key.public, b"good" * 8, RNG)
    bad = encrypt_share(CONTEXT, key.public, b"bad!" * 8, RNG)
    garbage = EncryptedShare(good.ephemeral_key, bytes(48))
    for share, culprit in ((good, (1,)), (bad, (2,)), (garbage, (2,))):
        complaint = make_complaint(CONTEXT, key, share, RNG)
        assert judge(CONTEXT, complaint, key.public, share, valid) == culprit
    # The proof is checked against the complainer's published key: another key fails it.
    complaint = make_complaint(CONTEXT, key, bad, RNG)
    assert judge(CONTEXT, complaint, ComplaintKey(RNG).public, bad, valid) == (1,)
    # A complaint about another ciphertext than the one we received names both.
    assert judge(CONTEXT, complaint, key.public, good, valid) == (1, 2)
