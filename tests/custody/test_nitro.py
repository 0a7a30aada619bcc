"""The Nitro attestation verifier against real AWS Nitro Enclaves documents.

Source: ``tests/vectors/aws-nitro/`` (see ``tests/vectors/SOURCES.md``): three real attestation
documents from the public test suites of evervault/attestation-doc-validation
(``test-data/beta/``, 2022-10-12 debug and 2022-10-13 non-debug) and hf/nitrite
(``nitrite_test.go``, 2021-10-28 debug), the AWS Nitro Enclaves root G1 certificate,
and ``attestation-samples.json`` with their decoded fields.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from shardvault.custody.attestation.nitro import (
    AWS_NITRO_ROOT_G1_PEM,
    AWS_NITRO_ROOT_G1_SHA256,
    NitroVerifier,
    PcrPolicy,
    decode_document,
    load_document_bytes,
)
from shardvault.custody.errors import (
    AttestationChainError,
    AttestationDebugError,
    AttestationError,
    AttestationExpiredError,
    AttestationFormatError,
    AttestationNonceError,
    AttestationPcrError,
    AttestationRootError,
    AttestationSignatureError,
    AttestationStaleError,
)
from tests.vectors import load_vector, vector_path


def _nitro(name: str) -> Path:
    """A file of the Nitro vectors (``tests/vectors/aws-nitro/``); missing fails the test."""
    return vector_path(f"aws-nitro/{name}")


@cache
def _manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = load_vector("aws-nitro/attestation-samples.json")
    return loaded


def _samples() -> list[dict[str, Any]]:
    return list(_manifest()["samples"])


SAMPLE_NAMES = [s["name"] for s in _samples()]


def _sample(name: str) -> tuple[bytes, dict[str, Any]]:
    entry = next(s for s in _samples() if s["name"] == name)
    raw = load_document_bytes(_nitro(entry["file"]).read_bytes())
    return raw, entry["decoded"]


def _at(decoded: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(decoded["timestamp_ms"] / 1000, UTC)


ALLOW_DEBUG = PcrPolicy(allow_debug=True)


def test_embedded_root_is_the_published_aws_root() -> None:
    pinned = x509.load_pem_x509_certificate(AWS_NITRO_ROOT_G1_PEM)
    published = x509.load_pem_x509_certificate(
        _nitro("aws-nitro-enclaves-root-G1.pem").read_bytes()
    )
    assert pinned == published
    from cryptography.hazmat.primitives.serialization import Encoding

    fingerprint = hashlib.sha256(pinned.public_bytes(Encoding.DER)).hexdigest().upper()
    assert (
        fingerprint
        == AWS_NITRO_ROOT_G1_SHA256
        == _manifest()["root_certificate"]["sha256_fingerprint_der"]
    )


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_real_document_verifies_at_its_own_timestamp(name: str) -> None:
    raw, decoded = _sample(name)
    assert hashlib.sha256(raw).hexdigest() == decoded["sha256"]
    doc = NitroVerifier().verify(raw, at=_at(decoded), policy=ALLOW_DEBUG)
    # Every decoded field the manifest lists is reproduced.
    assert doc.module_id == decoded["module_id"]
    assert doc.timestamp_ms == decoded["timestamp_ms"]
    assert {str(i): v.hex() for i, v in doc.pcrs.items()} == decoded["pcrs"]
    assert len(doc.cabundle) == decoded["cabundle_len"]
    assert (doc.public_key.hex() if doc.public_key else None) == decoded["public_key_hex"]
    assert (doc.user_data.hex() if doc.user_data else None) == decoded["user_data_hex"]
    assert (doc.nonce.hex() if doc.nonce else None) == decoded["nonce_hex"]
    assert doc.debug_mode == ("debug" in name and "nondebug" not in name)
    leaf = x509.load_der_x509_certificate(doc.certificate)
    assert leaf.not_valid_after_utc.isoformat() == decoded["leaf_not_after"]


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_real_document_is_expired_today(name: str) -> None:
    raw, _ = _sample(name)
    with pytest.raises(AttestationExpiredError) as info:
        NitroVerifier().verify(raw, policy=ALLOW_DEBUG)
    assert info.value.reason == "expired"


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_expired_just_after_the_leaf_certificate(name: str) -> None:
    raw, decoded = _sample(name)
    after = datetime.fromisoformat(decoded["leaf_not_after"]) + timedelta(seconds=1)
    verifier = NitroVerifier(max_age=timedelta(days=1))
    with pytest.raises(AttestationExpiredError):
        verifier.verify(raw, at=after, policy=ALLOW_DEBUG)


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_stale_document_is_refused_while_certificates_are_valid(name: str) -> None:
    raw, decoded = _sample(name)
    later = _at(decoded) + timedelta(minutes=10)
    with pytest.raises(AttestationStaleError):
        NitroVerifier(max_age=timedelta(minutes=5)).verify(raw, at=later, policy=ALLOW_DEBUG)
    earlier = _at(decoded) - timedelta(minutes=5)
    with pytest.raises((AttestationStaleError, AttestationExpiredError)):
        NitroVerifier().verify(raw, at=earlier, policy=ALLOW_DEBUG)


@pytest.mark.parametrize("name", ["evervault-2022-10-12-debug", "hf-nitrite-2021-10-28-debug"])
def test_debug_documents_are_refused_by_default_and_under_a_pcr_policy(name: str) -> None:
    raw, decoded = _sample(name)
    with pytest.raises(AttestationDebugError):
        NitroVerifier().verify(raw, at=_at(decoded))
    production_pcr0 = bytes.fromhex(_sample("evervault-2022-10-13-nondebug")[1]["pcrs"]["0"])
    with pytest.raises(AttestationPcrError):
        NitroVerifier().verify(
            raw,
            at=_at(decoded),
            policy=PcrPolicy(expected={0: production_pcr0}, allow_debug=True),
        )


def test_pcr_policy_on_the_production_document() -> None:
    raw, decoded = _sample("evervault-2022-10-13-nondebug")
    expected = {i: bytes.fromhex(decoded["pcrs"][str(i)]) for i in (0, 1, 2, 3, 8)}
    doc = NitroVerifier().verify(raw, at=_at(decoded), policy=PcrPolicy(expected=expected))
    assert doc.pcrs[8] == expected[8]
    for index in (0, 1, 2, 3, 8):
        wrong = dict(expected)
        wrong[index] = bytes(48)
        with pytest.raises(AttestationPcrError, match=f"PCR{index}"):
            NitroVerifier().verify(raw, at=_at(decoded), policy=PcrPolicy(expected=wrong))
    with pytest.raises(AttestationPcrError, match="PCR20"):
        NitroVerifier().verify(raw, at=_at(decoded), policy=PcrPolicy(expected={20: bytes(48)}))


def test_nonce_must_match_when_issued() -> None:
    raw, decoded = _sample("evervault-2022-10-13-nondebug")
    nonce = bytes.fromhex(decoded["nonce_hex"])
    NitroVerifier().verify(raw, at=_at(decoded), expected_nonce=nonce)
    with pytest.raises(AttestationNonceError):
        NitroVerifier().verify(raw, at=_at(decoded), expected_nonce=nonce[:-1] + b"\x00")
    raw_debug, decoded_debug = _sample("evervault-2022-10-12-debug")  # carries no nonce
    with pytest.raises(AttestationNonceError):
        NitroVerifier().verify(
            raw_debug, at=_at(decoded_debug), policy=ALLOW_DEBUG, expected_nonce=nonce
        )


def test_another_root_is_refused() -> None:
    raw, decoded = _sample("evervault-2022-10-13-nondebug")
    doc = decode_document(raw)
    # Pin the document's own intermediate: the bundle no longer starts at the pin.
    intermediate = x509.load_der_x509_certificate(doc.cabundle[1])
    from cryptography.hazmat.primitives.serialization import Encoding

    verifier = NitroVerifier(intermediate.public_bytes(Encoding.PEM))
    with pytest.raises(AttestationRootError):
        verifier.verify(raw, at=_at(decoded))


def _regions(raw: bytes) -> dict[str, tuple[int, int]]:
    """Byte ranges of the parts of a document inside its raw encoding."""
    outer = cbor2.loads(raw)
    payload = outer[2]
    doc = cbor2.loads(payload)
    p_start = raw.index(payload)
    cert_start = raw.index(doc["certificate"])
    pcr_start = raw.index(doc["pcrs"][0] if any(doc["pcrs"][0]) else doc["pcrs"][4])
    bundle_start = raw.index(doc["cabundle"][2])
    return {
        "protected": (raw.index(outer[0]), raw.index(outer[0]) + len(outer[0])),
        "payload": (p_start, p_start + len(payload)),
        "pcr": (pcr_start, pcr_start + 48),
        "certificate": (cert_start, cert_start + len(doc["certificate"])),
        "cabundle": (bundle_start, bundle_start + len(doc["cabundle"][2])),
        "signature": (len(raw) - 96, len(raw)),
    }


@pytest.mark.parametrize("region", ["protected", "payload", "pcr", "certificate", "cabundle",
                                    "signature"])  # fmt: skip
@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_any_single_byte_change_is_rejected(name: str, region: str) -> None:
    raw, decoded = _sample(name)
    verifier = NitroVerifier()
    at = _at(decoded)
    start, end = _regions(raw)[region]
    # Every byte of the small regions; an evenly spread sample of the large ones.
    step = 1 if end - start <= 128 else max(1, (end - start) // 96)
    positions = sorted({*range(start, end, step), end - 1})
    for position in positions:
        for delta in (0x01, 0x80):
            mutated = bytearray(raw)
            mutated[position] ^= delta
            with pytest.raises(AttestationError):
                verifier.verify(bytes(mutated), at=at, policy=ALLOW_DEBUG)


def test_error_categories_of_targeted_changes() -> None:
    raw, decoded = _sample("evervault-2022-10-13-nondebug")
    at = _at(decoded)
    regions = _regions(raw)
    verifier = NitroVerifier()
    sig = bytearray(raw)
    sig[regions["signature"][0] + 10] ^= 1
    with pytest.raises(AttestationSignatureError):
        verifier.verify(bytes(sig), at=at)
    pcr = bytearray(raw)
    pcr[regions["pcr"][0] + 5] ^= 1
    with pytest.raises(AttestationSignatureError):
        verifier.verify(bytes(pcr), at=at)
    # A certificate's signature bytes (its last bytes) changed: the chain breaks.
    cert = bytearray(raw)
    cert[regions["cabundle"][1] - 3] ^= 1
    with pytest.raises((AttestationChainError, AttestationFormatError)):
        verifier.verify(bytes(cert), at=at)


def _reencode(raw: bytes, mutate: Any) -> bytes:
    outer = cbor2.loads(raw)
    doc = cbor2.loads(outer[2])
    mutate(doc)
    outer[2] = cbor2.dumps(doc)
    return cbor2.dumps(outer)


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\x84",
        b"not base64 and not cbor \xff",
        cbor2.dumps([1, 2, 3]),
        cbor2.dumps(cbor2.CBORTag(98, [b"", {}, b"", b""])),
        cbor2.dumps([cbor2.dumps({1: -7}), {}, b"", bytes(96)]),
        cbor2.dumps([cbor2.dumps({1: -35}), {}, cbor2.dumps({"module_id": "x"}), bytes(96)]),
        cbor2.dumps([cbor2.dumps({1: -35}), {}, b"\xff", bytes(96)]),
        cbor2.dumps([cbor2.dumps({1: -35}), [], b"", bytes(96)]),
        cbor2.dumps([cbor2.dumps({1: -35}), {}, b"", bytes(95)]),
    ],
)
def test_malformed_input_is_a_format_error(bad: bytes) -> None:
    with pytest.raises(AttestationFormatError):
        NitroVerifier().verify(load_document_bytes(bad) if bad else bad)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("digest", "SHA256"),
        ("timestamp", -1),
        ("timestamp", "now"),
        ("timestamp", 2**63),
        ("timestamp", 253_402_300_800_000),
        ("module_id", ""),
        ("pcrs", {}),
        ("pcrs", {0: b"short"}),
        ("pcrs", {40: bytes(48)}),
        ("cabundle", []),
        ("cabundle", ["text"]),
        ("certificate", b""),
        ("user_data", b"x" * 513),
        ("nonce", 5),
        ("public_key", b"x" * 1025),
    ],
)
def test_payload_field_rules(field: str, value: object) -> None:
    raw, _ = _sample("evervault-2022-10-13-nondebug")
    bad = _reencode(raw, lambda d: d.__setitem__(field, value))
    with pytest.raises(AttestationFormatError, match=field if field != "pcrs" else "pcrs"):
        decode_document(bad)


def test_trailing_bytes_are_refused() -> None:
    raw, decoded = _sample("evervault-2022-10-13-nondebug")
    with pytest.raises(AttestationFormatError):
        NitroVerifier().verify(raw + b"\x00", at=_at(decoded))


def test_base64_and_raw_inputs_are_equivalent() -> None:
    entry = _samples()[0]
    text = _nitro(entry["file"]).read_bytes()
    raw = load_document_bytes(text)
    assert load_document_bytes(raw) == raw
    assert (
        load_document_bytes(base64.b64encode(raw)[:40] + b"\n" + base64.b64encode(raw)[40:]) == raw
    )


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_fuzz_mutated_documents_raise_only_attestation_errors(data: st.DataObject) -> None:
    """Random edits (flip, insert, delete, truncate) of a real document: the verifier
    raises AttestationError and nothing else."""
    name = data.draw(st.sampled_from(SAMPLE_NAMES))
    raw, decoded = _sample(name)
    position = data.draw(st.integers(0, len(raw) - 1))
    edit = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
    value = data.draw(st.integers(0, 255))
    if edit == "flip":
        mutated = raw[:position] + bytes([raw[position] ^ (value or 1)]) + raw[position + 1 :]
    elif edit == "insert":
        mutated = raw[:position] + bytes([value]) + raw[position:]
    elif edit == "delete":
        mutated = raw[:position] + raw[position + 1 :]
    else:
        mutated = raw[:position]
    with pytest.raises(AttestationError):
        NitroVerifier().verify(mutated, at=_at(decoded), policy=ALLOW_DEBUG)


@settings(max_examples=200, deadline=None)
@given(blob=st.binary(max_size=512))
def test_fuzz_random_bytes_raise_only_attestation_errors(blob: bytes) -> None:
    with pytest.raises(AttestationError):
        NitroVerifier().verify(blob)
