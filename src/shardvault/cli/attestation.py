"""``shardvault attestation``: Enclave attestation documents: verify, and the local
development enclave (dev-root, dev-attest); the key-release service (release-service)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from shardvault.cli._output import emit_json
from shardvault.custody.attestation.devenclave import DevelopmentEnclave, DevelopmentRoot
from shardvault.custody.attestation.nitro import (
    NitroVerifier,
    PcrPolicy,
    decode_document,
    load_document_bytes,
)
from shardvault.custody.errors import AttestationError, ConfigurationError


@click.group(name="attestation")
def group() -> None:
    """Enclave attestation documents: verify, and the local development enclave."""


def _parse_pcr(text: str) -> tuple[int, bytes]:
    index_text, sep, value_text = text.partition("=")
    if not sep:
        raise click.BadParameter(f"{text!r} is not N=HEX", param_hint="--pcr")
    try:
        index = int(index_text)
        value = bytes.fromhex(value_text.removeprefix("0x"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not N=HEX", param_hint="--pcr") from None
    if not 0 <= index < 32 or len(value) not in (32, 48, 64):
        raise click.BadParameter(
            f"{text!r}: index must be 0..31 and the value 32, 48 or 64 bytes", param_hint="--pcr"
        )
    return index, value


@group.command(name="verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--root",
    "root",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Pinned root certificate (PEM). Default: the AWS Nitro Enclaves root G1.",
)
@click.option("--at", "at", type=float, help="Verify at this moment (UNIX seconds). Default: now.")
@click.option("--pcr", "pcrs", multiple=True, help="Required PCR value, N=HEX; repeatable.")
@click.option("--allow-debug", is_flag=True, help="Accept debug-mode enclaves (PCR0-2 zero).")
@click.option("--nonce", "nonce_hex", help="Required nonce (hex).")
@click.option(
    "--max-age",
    type=float,
    default=300.0,
    show_default=True,
    help="Maximum age of the document at verification time, in seconds.",
)
@click.option(
    "--allow-development-root",
    is_flag=True,
    help="Accept a shardvault development enclave root given with --root.",
)
def verify(
    file: Path,
    root: Path | None,
    at: float | None,
    pcrs: tuple[str, ...],
    allow_debug: bool,
    nonce_hex: str | None,
    max_age: float,
    allow_development_root: bool,
) -> None:
    """Verify one attestation document FILE (raw CBOR or base64).

    Prints one JSON object: valid, reason (when invalid), module_id, timestamp, pcrs,
    public_key and more. Exit status 0 only when the document is valid.
    """
    policy = PcrPolicy(expected=dict(_parse_pcr(p) for p in pcrs), allow_debug=allow_debug)
    nonce = None
    if nonce_hex is not None:
        try:
            nonce = bytes.fromhex(nonce_hex.removeprefix("0x"))
        except ValueError:
            raise click.BadParameter("not hex", param_hint="--nonce") from None
    when = datetime.fromtimestamp(at, UTC) if at is not None else datetime.now(UTC)
    try:
        verifier = NitroVerifier(
            root.read_bytes() if root else NitroVerifier.DEFAULT_ROOT,
            allow_development_root=allow_development_root,
            max_age=timedelta(seconds=max_age),
        )
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc), param_hint="--root") from None
    result: dict[str, object] = {"valid": False}
    raw = file.read_bytes()
    try:
        data = load_document_bytes(raw)
        try:
            result.update(decode_document(data).summary())
        except AttestationError:
            pass
        doc = verifier.verify(data, at=when, policy=policy, expected_nonce=nonce)
    except AttestationError as exc:
        result = {"valid": False, "reason": exc.reason, "detail": str(exc), **_fields(result)}
        emit_json(result)
        raise SystemExit(1) from None
    emit_json({"valid": True, **doc.summary()})


def _fields(partial: dict[str, object]) -> dict[str, object]:
    keys = ("module_id", "digest", "timestamp", "pcrs", "public_key", "user_data", "nonce",
            "debug_mode")  # fmt: skip
    return {k: partial.get(k) for k in keys}


@group.command(name="dev-root")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True)
def dev_root(out: Path) -> None:
    """Generate a development enclave root in OUT (root.pem, root-key.pem).

    Development only: production verifiers refuse this root.
    """
    root = DevelopmentRoot.generate()
    root.save(out)
    emit_json(
        {
            "root": str(out / "root.pem"),
            "sha256": hashlib.sha256(root.der).hexdigest(),
            "subject": root.certificate.subject.rfc4514_string(),
        }
    )


@group.command(name="dev-attest")
@click.option("--root-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True)  # fmt: skip
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--nonce", "nonce_hex", help="Nonce to embed (hex).")
@click.option("--user-data", "user_data_hex", help="User data to embed (hex).")
@click.option("--role", default="development", show_default=True, help="Role measured as PCR3.")
@click.option("--debug", is_flag=True, help="Report debug mode (PCR0-2 zero).")
def dev_attest(
    root_dir: Path,
    out: Path,
    nonce_hex: str | None,
    user_data_hex: str | None,
    role: str,
    debug: bool,
) -> None:
    """Write a development attestation document (raw CBOR) measuring this installation.

    The document's public key belongs to a throw-away key pair: use it to exercise the
    verifier, not to receive keys.
    """
    try:
        nonce = bytes.fromhex(nonce_hex) if nonce_hex else None
        user_data = bytes.fromhex(user_data_hex) if user_data_hex else None
    except ValueError:
        raise click.BadParameter("--nonce and --user-data take hex") from None
    try:
        root = DevelopmentRoot.load(root_dir)
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc), param_hint="--root-dir") from None
    enclave = DevelopmentEnclave(root, role=role, debug=debug)
    out.write_bytes(enclave.attest(nonce, user_data))
    emit_json(
        {
            "document": str(out),
            "module_id": enclave.module_id,
            "pcrs": {str(i): enclave.pcrs[i].hex() for i in (0, 1, 2, 3, 8)},
        }
    )


@group.command(name="release-service")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="YAML/JSON: backend, attestation, nonce_ttl_seconds, signing_key_env.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True)
def release_service(config_path: Path, host: str, port: int) -> None:
    """Serve the key-release service: data keys only to attested enclaves.

    Prints {"event": "started", "url", "public_key"} (the Ed25519 key co-signers pin
    with `cosigner init --release-key`), serves until SIGTERM or SIGINT, then prints
    {"event": "stopped"}. A development root in the configuration is refused unless
    `allow_development_root: true`.
    """
    import signal
    import socket
    import sys

    import uvicorn

    from shardvault.cli._output import fail_on
    from shardvault.custody.config import load_config_file
    from shardvault.custody.errors import CustodyError
    from shardvault.custody.release_service import create_release_app, release_service_from_config

    try:
        service = release_service_from_config(load_config_file(config_path))
    except CustodyError as exc:
        fail_on(exc)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.bind((host, port))
        # Listen before announcing the URL: a client that connects between the
        # announcement and uvicorn's start then waits in the backlog instead of being
        # refused.
        listener.listen(128)
        server = uvicorn.Server(
            uvicorn.Config(create_release_app(service), log_level="warning", lifespan="off")
        )
        bound_host, bound_port = listener.getsockname()[:2]
        emit_json(
            {
                "event": "started",
                "url": f"http://{bound_host}:{bound_port}",
                "public_key": service.public_key.hex(),
                "backend": service.backend.backend_type,
            }
        )
        sys.stdout.flush()
        # uvicorn handles SIGTERM/SIGINT itself (graceful shutdown) and then re-raises
        # the signal to the handler it found installed; a no-op one lets us exit 0.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: None)
        server.run(sockets=[listener])
    finally:
        listener.close()
        service.close()
    emit_json({"event": "stopped"})
