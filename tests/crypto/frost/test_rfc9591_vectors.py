"""RFC 9591 Appendix E test vectors, every intermediate value.

Source: RFC 9591 Appendix E, as the JSON of cfrg/draft-irtf-cfrg-frost ``poc/`` (commit
4e1c5db8), copied to ``tests/vectors/frost/`` (see ``tests/vectors/SOURCES.md``).
"""

from typing import Any

import pytest

from shardvault.crypto.group import Scalar
from shardvault.crypto.polynomial import Polynomial, lagrange_coefficient
from shardvault.crypto.protocols.common import PartyId
from shardvault.crypto.protocols.frost.ciphersuite import (
    ED25519_SHA512,
    SECP256K1_SHA256,
    Ciphersuite,
)
from shardvault.crypto.protocols.frost.keys import SigningKeyView
from shardvault.crypto.protocols.frost.signing import (
    SigningCommitments,
    SigningNonces,
    _SigningContext,
    binding_factor_inputs,
    nonce_generate,
)
from tests.vectors import load_vector

CASES = [
    ("frost/frost-ed25519-sha512.json", ED25519_SHA512),
    ("frost/frost-secp256k1-sha256.json", SECP256K1_SHA256),
]


def _scalar(suite: Ciphersuite, hex_value: str) -> Scalar:
    return suite.group.decode_scalar(bytes.fromhex(hex_value))


@pytest.mark.parametrize(("path", "suite"), CASES, ids=[c[1].name for c in CASES])
def test_vectors_bit_for_bit(path: str, suite: Ciphersuite) -> None:
    vector: Any = load_vector(path)
    group = suite.group
    inputs = vector["inputs"]
    max_signers = int(vector["config"]["MAX_PARTICIPANTS"])
    min_signers = int(vector["config"]["MIN_PARTICIPANTS"])

    # Key material: the dealer's polynomial gives every share and the group key.
    secret = _scalar(suite, inputs["group_secret_key"])
    coefficients = [secret] + [_scalar(suite, c) for c in inputs["share_polynomial_coefficients"]]
    assert len(coefficients) == min_signers
    polynomial = Polynomial(group, coefficients)
    group_key = group.base_multiply(secret)
    assert group_key.to_bytes().hex() == inputs["group_public_key"]
    shares = {}
    for item in inputs["participant_shares"]:
        identifier = PartyId(item["identifier"])
        assert polynomial.evaluate(identifier).to_bytes().hex() == item["participant_share"]
        shares[identifier] = _scalar(suite, item["participant_share"])
    assert len(shares) == max_signers
    verifying = {i: group.base_multiply(s) for i, s in shares.items()}

    # Round one: nonces from the given randomness, their commitments, binding factors.
    message = bytes.fromhex(inputs["message"])
    signers = [PartyId(i) for i in inputs["participant_list"]]
    nonces: dict[PartyId, SigningNonces] = {}
    for out in vector["round_one_outputs"]["outputs"]:
        identifier = PartyId(out["identifier"])
        hiding = nonce_generate(
            suite, shares[identifier], bytes.fromhex(out["hiding_nonce_randomness"])
        )
        binding = nonce_generate(
            suite, shares[identifier], bytes.fromhex(out["binding_nonce_randomness"])
        )
        assert hiding.to_bytes().hex() == out["hiding_nonce"]
        assert binding.to_bytes().hex() == out["binding_nonce"]
        nonces[identifier] = SigningNonces(identifier, hiding, binding)
        commitments = nonces[identifier].commitments
        assert commitments.hiding.to_bytes().hex() == out["hiding_nonce_commitment"]
        assert commitments.binding.to_bytes().hex() == out["binding_nonce_commitment"]
    commitment_list: list[SigningCommitments] = [nonces[i].commitments for i in signers]
    inputs_by_id = binding_factor_inputs(suite, group_key, commitment_list, message)
    view = SigningKeyView(group_key, verifying, None)
    context = _SigningContext.build(suite, view, commitment_list, message)
    for out in vector["round_one_outputs"]["outputs"]:
        identifier = PartyId(out["identifier"])
        assert inputs_by_id[identifier].hex() == out["binding_factor_input"]
        assert context.binding_factors[identifier].to_bytes().hex() == out["binding_factor"]

    # Round two: signature shares, each verified; then the aggregate.
    sig_shares = {}
    for out in vector["round_two_outputs"]["outputs"]:
        identifier = PartyId(out["identifier"])
        z = context.sign(identifier, nonces[identifier], shares[identifier])
        assert z.to_bytes().hex() == out["sig_share"]
        context.verify_share(identifier, z)
        sig_shares[identifier] = z
    assert context.aggregate(sig_shares).hex() == vector["final_output"]["sig"]

    # Interpolating the quorum's shares recovers the vector's secret (test-only check).
    recovered = sum(
        (lagrange_coefficient(group, i, signers) * shares[i] for i in signers), group.scalar(0)
    )
    assert recovered == secret
