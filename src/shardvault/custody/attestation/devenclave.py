"""A local development enclave that speaks the AWS Nitro attestation format.

So that the whole attest, release, unlock and sign path runs on one machine, this module
plays the part of the Nitro Security Module: it produces COSE_Sign1 (ES384) attestation
documents with the same payload fields as a Nitro enclave (see ``nitro``), signed by a
short-lived P-384 leaf certificate issued by a *development root* generated at set-up.

Measurements stand in for PCRs and are SHA-384 digests of the code actually installed:

- PCR0: every file of the installed ``shardvault`` package (path and content digest);
- PCR1: the Python implementation and version running it;
- PCR2: the files of the packages that handle shares (``custody``, ``cosigner``);
- PCR3: the configured role name (in Nitro, the parent instance's IAM role);
- PCR8: the development root certificate (in Nitro, the image signing certificate).

The development root's common name starts with
:data:`~shardvault.custody.attestation.nitro.DEVELOPMENT_ROOT_MARKER`; a verifier
refuses it unless configured with ``allow_development_root``. It proves nothing about
hardware isolation and must never protect production keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

import shardvault
from shardvault.custody.attestation.nitro import DEVELOPMENT_ROOT_MARKER
from shardvault.custody.envelope import OpenedShare, ShareAddress, open_share_with_data_key
from shardvault.custody.errors import ConfigurationError, CustodyError
from shardvault.custody.secret import SecretBytes

LEAF_LIFETIME = timedelta(hours=3)
"""Nitro leaf certificates live about three hours; the development ones do too."""

_PROTECTED = cbor2.dumps({1: -35})


def _digest_tree(root: Path, only: tuple[str, ...] = ()) -> bytes:
    h = hashlib.sha384(b"shardvault/devenclave/measure/v1\x00")
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or "__pycache__" in rel or rel.endswith((".pyc", ".pyo")):
            continue
        if only and not rel.startswith(only):
            continue
        h.update(rel.encode() + b"\x00" + hashlib.sha384(path.read_bytes()).digest())
    return h.digest()


def measure(
    package_root: Path | None = None, role: str = "development", root_der: bytes = b""
) -> dict[int, bytes]:
    """The PCR-like measurements of the installed package (see the module docstring)."""
    package = package_root or Path(shardvault.__file__).resolve().parent
    runtime = f"{sys.implementation.name} {sys.version}".encode()
    return {
        0: _digest_tree(package),
        1: hashlib.sha384(runtime).digest(),
        2: _digest_tree(package, only=("custody/", "cosigner/")),
        3: hashlib.sha384(role.encode()).digest(),
        8: hashlib.sha384(root_der).digest(),
    }


@dataclass(frozen=True)
class DevelopmentRoot:
    """The self-signed P-384 root that development enclaves chain to.

    Security: ``private_key`` signs every development leaf; it lives in a file readable
    only by its owner. Anyone holding it can forge development attestations, which is
    why production verifiers refuse this root.
    """

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    def __repr__(self) -> str:
        return f"DevelopmentRoot({self.certificate.subject.rfc4514_string()!r})"

    @property
    def pem(self) -> bytes:
        """The root certificate in PEM, to pin in a development verifier."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        """The root certificate in DER (as it appears in ``cabundle``)."""
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @classmethod
    def generate(cls, now: datetime | None = None) -> DevelopmentRoot:
        """A fresh root valid for ten years."""
        now = now or datetime.now(UTC)
        key = ec.generate_private_key(ec.SECP384R1())
        name = x509.Name(
            [
                x509.NameAttribute(
                    NameOID.COMMON_NAME, f"{DEVELOPMENT_ROOT_MARKER} {secrets.token_hex(4)}"
                ),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "shardvault (development only)"),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .sign(key, hashes.SHA384())
        )
        return cls(cert, key)

    def save(self, directory: Path) -> None:
        """Write ``root.pem`` and ``root-key.pem`` (mode 0600) into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "root.pem").write_bytes(self.pem)
        key_path = directory / "root-key.pem"
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(
                self.private_key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )

    @classmethod
    def load(cls, directory: Path) -> DevelopmentRoot:
        """Read a root written by :meth:`save`.

        Raises: ConfigurationError when the files are missing or do not match.
        """
        try:
            cert = x509.load_pem_x509_certificate((directory / "root.pem").read_bytes())
            key = serialization.load_pem_private_key(
                (directory / "root-key.pem").read_bytes(), password=None
            )
        except (OSError, ValueError):
            raise ConfigurationError(f"no development root in {directory}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
            raise ConfigurationError(f"development root key in {directory} does not match")
        return cls(cert, key)


class DevelopmentEnclave:
    """A development stand-in for a Nitro enclave running the co-signer.

    Security: the recipient key (RSA-3072, the document's ``public_key``) never leaves
    this object; data keys released to the enclave are encrypted to it and opened by
    :meth:`open_released`. ``debug`` produces all-zero PCR0-2 as a Nitro debug-mode
    enclave does, for testing refusals.
    """

    def __init__(
        self,
        root: DevelopmentRoot,
        *,
        role: str = "development",
        measurements: Mapping[int, bytes] | None = None,
        debug: bool = False,
        module_id: str | None = None,
    ) -> None:
        self._root = root
        pcrs = dict(measurements or measure(role=role, root_der=root.der))
        if debug:
            for index in (0, 1, 2):
                pcrs[index] = bytes(48)
        self.pcrs: dict[int, bytes] = {i: pcrs.get(i, bytes(48)) for i in range(16)}
        self.module_id = module_id or f"i-dev{secrets.token_hex(8)}-enc{secrets.token_hex(8)}"
        self._recipient = rsa.generate_private_key(public_exponent=65537, key_size=3072)

    def __repr__(self) -> str:
        return f"DevelopmentEnclave({self.module_id!r})"

    @property
    def public_key_der(self) -> bytes:
        """The recipient public key (SubjectPublicKeyInfo DER) put in each document."""
        return self._recipient.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def attest(
        self,
        nonce: bytes | None = None,
        user_data: bytes | None = None,
        *,
        now: datetime | None = None,
        include_public_key: bool = True,
    ) -> bytes:
        """An attestation document (raw COSE_Sign1 bytes) in the Nitro format."""
        now = now or datetime.now(UTC)
        leaf_key = ec.generate_private_key(ec.SECP384R1())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.module_id)]))
            .issuer_name(self._root.certificate.subject)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(seconds=30))
            .not_valid_after(now + LEAF_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self._root.private_key, hashes.SHA384())
        )
        payload = cbor2.dumps(
            {
                "module_id": self.module_id,
                "digest": "SHA384",
                "timestamp": int(now.timestamp() * 1000),
                "pcrs": self.pcrs,
                "certificate": leaf.public_bytes(serialization.Encoding.DER),
                "cabundle": [self._root.der],
                "public_key": self.public_key_der if include_public_key else None,
                "user_data": user_data,
                "nonce": nonce,
            }
        )
        to_be_signed = cbor2.dumps(["Signature1", _PROTECTED, b"", payload])
        r, s = decode_dss_signature(leaf_key.sign(to_be_signed, ec.ECDSA(hashes.SHA384())))
        signature = r.to_bytes(48, "big") + s.to_bytes(48, "big")
        return cbor2.dumps([_PROTECTED, {}, payload, signature])

    def rotate_recipient(self) -> None:
        """Replace the recipient key pair with a fresh one (forward secrecy: a key
        released earlier cannot be opened with the new key). The old private key is
        dropped; Python cannot guarantee that its memory is erased."""
        self._recipient = rsa.generate_private_key(public_exponent=65537, key_size=3072)

    def open_released(self, ciphertext_for_recipient: bytes) -> SecretBytes:
        """Decrypt a data key released to this enclave (RSA-OAEP with SHA-256).

        Raises: ValueError when the ciphertext was not made for this enclave's key.
        """
        return SecretBytes(
            self._recipient.decrypt(
                ciphertext_for_recipient,
                padding.OAEP(
                    mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
                ),
            )
        )


def _address(fields: Mapping[str, str]) -> ShareAddress:
    return ShareAddress(fields["workspace"], fields["vault"], fields["key_id"], fields["party_id"])


class DevelopmentEnclaveProcess:
    """The development enclave as a process: JSON lines on stdin, answers on stdout.

    Requests (one JSON object per line), answers likewise:

    - ``{"op": "attest", "nonce": HEX}`` -> ``{"document": BASE64}``
    - ``{"op": "unlock", "address": {...}, "blob": BASE64, "release": BASE64}`` -> opens
      the share with the released data key and keeps it in memory ->
      ``{"unlocked": ADDRESS, "share_version": N}``
    - ``{"op": "prove", "address": {...}, "challenge": HEX}`` ->
      ``{"mac": HEX}``, HMAC-SHA256 keyed by the share: proves possession, reveals nothing
    - ``{"op": "stop"}``

    Errors are answered as ``{"error": TYPE, "message": TEXT}``; messages never carry a
    share. Security: unlocked shares live only in this process's memory (SecretBytes),
    wiped on ``stop``.
    """

    def __init__(self, enclave: DevelopmentEnclave) -> None:
        self._enclave = enclave
        self._shares: dict[ShareAddress, OpenedShare] = {}

    def handle(self, request: Mapping[str, object]) -> dict[str, object]:
        """Answer one request (see the class docstring)."""
        op = request.get("op")
        if op == "attest":
            nonce_hex = request.get("nonce")
            nonce = bytes.fromhex(nonce_hex) if isinstance(nonce_hex, str) else None
            return {"document": base64.b64encode(self._enclave.attest(nonce)).decode()}
        if op == "unlock":
            address = _address(request["address"])  # type: ignore[arg-type]
            blob = base64.b64decode(str(request["blob"]))
            release = base64.b64decode(str(request["release"]))
            with self._enclave.open_released(release) as data_key:
                opened = open_share_with_data_key(blob, data_key, address)
            previous = self._shares.pop(address, None)
            if previous is not None:
                previous.share.wipe()
            self._shares[address] = opened
            return {"unlocked": str(address), "share_version": opened.slot.share_version}
        if op == "prove":
            address = _address(request["address"])  # type: ignore[arg-type]
            held = self._shares.get(address)
            if held is None:
                return {"error": "NotUnlocked", "message": f"no share unlocked for {address}"}
            challenge = bytes.fromhex(str(request["challenge"]))
            mac = hmac.new(held.share.reveal(), challenge, hashlib.sha256).hexdigest()
            return {"mac": mac}
        if op == "stop":
            for held in self._shares.values():
                held.share.wipe()
            self._shares.clear()
            return {"stopped": True}
        return {"error": "UnknownOp", "message": f"unknown op {op!r}"}

    def serve(self, stdin: TextIO, stdout: TextIO) -> None:
        """Serve requests until ``stop`` or end of input."""
        for line in stdin:
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("request is not an object")
                answer = self.handle(request)
            except (CustodyError, ValueError, KeyError, TypeError) as exc:
                answer = {"error": type(exc).__name__, "message": str(exc)}
            stdout.write(json.dumps(answer) + "\n")
            stdout.flush()
            if answer.get("stopped"):
                return


def main(argv: list[str] | None = None) -> None:
    """``python -m shardvault.custody.attestation.devenclave --root-dir DIR [--role R]``."""
    import argparse

    parser = argparse.ArgumentParser(description="shardvault development enclave process")
    parser.add_argument("--root-dir", type=Path, required=True)
    parser.add_argument("--role", default="development")
    args = parser.parse_args(argv)
    enclave = DevelopmentEnclave(DevelopmentRoot.load(args.root_dir), role=args.role)
    DevelopmentEnclaveProcess(enclave).serve(sys.stdin, sys.stdout)


if __name__ == "__main__":
    main()
