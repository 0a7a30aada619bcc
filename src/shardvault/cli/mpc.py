"""``shardvault mpc``: local threshold-key ceremonies (keygen, sign, derive, refresh).

Every party of a ceremony runs in this one process and the messages pass in memory; each
party's key share is written to its own file, encrypted under a passphrase read from an
environment variable. This is the tool for development, tests and offline ceremonies;
production parties run the same protocol objects inside separate co-signers.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from shardvault.cli._output import emit_json, fail
from shardvault.crypto.errors import CryptoError
from shardvault.crypto.protocols.frost import SUITES, KeyPackage
from shardvault.crypto.protocols.frost.local import run_dkg, run_signing
from shardvault.crypto.rng import system_random
from shardvault.crypto.sharefile import ShareFileHeader, open_sealed, read_header, seal
from shardvault.errors import ShardvaultError

FROST_SCHEMES = ("eddsa-ed25519", "schnorr-bip340")
"""Schemes this tool runs through FROST."""

_SHARE_NAME = re.compile(r"party-(\d+)\.share\.json")
_MAX_PARTIES = 255


def _share_path(directory: Path, party: int) -> Path:
    return directory / f"party-{party}.share.json"


def _passphrase(env_name: str) -> bytes:
    value = os.environ.get(env_name)
    if not value:
        fail(f"environment variable {env_name} (the share passphrase) is not set or empty")
    return value.encode()


def _write_all_or_nothing(files: dict[Path, bytes]) -> None:
    """Write every file, or none: temporary names first, then renames; undo on failure."""
    temporaries: list[Path] = []
    done: list[Path] = []
    try:
        for path, data in files.items():
            temporary = path.with_name(path.name + ".tmp")
            with open(temporary, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            temporaries.append(temporary)
        for path in files:
            os.replace(path.with_name(path.name + ".tmp"), path)
            done.append(path)
    except OSError as exc:
        for path in [*temporaries, *done]:
            path.unlink(missing_ok=True)
        fail(f"cannot write share files: {exc.strerror or exc}")


@click.group(name="mpc")
def group() -> None:
    """Local threshold-key ceremonies: key generation and signing, all parties in-process."""


@group.command()
@click.option(
    "--scheme",
    required=True,
    type=click.Choice(FROST_SCHEMES),
    help="eddsa-ed25519 (FROST, Solana) or schnorr-bip340 (FROST, Bitcoin Taproot).",
)
@click.option("--min-signers", "min_signers", required=True, type=int, help="Threshold T.")
@click.option("--max-signers", "max_signers", required=True, type=int, help="Parties N.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the N share files (created if missing; existing shares refused).",
)
@click.option(
    "--passphrase-env",
    default="SHARDVAULT_PASSPHRASE",
    show_default=True,
    help="Environment variable holding the passphrase that encrypts each share file.",
)
def keygen(
    scheme: str, min_signers: int, max_signers: int, out_dir: Path, passphrase_env: str
) -> None:
    """Run a T-of-N distributed key generation and write one encrypted share per party.

    Prints one JSON object: scheme, public_key (hex, as the chain encodes it), min_signers,
    max_signers, party_ids, chain_code and the share files written.
    """
    if not 1 <= max_signers <= _MAX_PARTIES:
        fail(f"--max-signers must be between 1 and {_MAX_PARTIES}")
    if not 1 <= min_signers <= max_signers:
        fail("--min-signers must be between 1 and --max-signers")
    passphrase = _passphrase(passphrase_env)
    if out_dir.exists() and any(_SHARE_NAME.fullmatch(p.name) for p in out_dir.iterdir()):
        fail(f"{out_dir} already holds share files; refusing to overwrite them")
    try:
        keys = run_dkg(SUITES[scheme], min_signers, max_signers, system_random)
        public = keys[0].public
        public_key = public.public_key_bytes.hex()
        files = {
            _share_path(out_dir, key.identifier): seal(
                ShareFileHeader(scheme, key.identifier, min_signers, max_signers, public_key),
                key.to_bytes(),
                passphrase,
                system_random,
            )
            for key in keys
        }
    except ShardvaultError as exc:
        fail(str(exc))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create {out_dir}: {exc.strerror or exc}")
    _write_all_or_nothing(files)
    emit_json(
        {
            "scheme": scheme,
            "public_key": public_key,
            "min_signers": min_signers,
            "max_signers": max_signers,
            "party_ids": [int(p) for p in public.party_ids],
            "chain_code": public.chain_code.hex(),
            "files": [str(p) for p in files],
        }
    )


def _parse_signers(text: str) -> list[int]:
    try:
        signers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        fail("--signers must be a comma-separated list of party ids, such as 1,3")
    if not signers:
        fail("--signers names no party")
    if len(set(signers)) != len(signers):
        fail("--signers names a party twice")
    return signers


def _load_shares(shares_dir: Path, signers: list[int], passphrase: bytes) -> list[KeyPackage]:
    if not shares_dir.is_dir():
        fail(f"{shares_dir} is not a directory")
    available = {
        int(m.group(1)): p
        for p in shares_dir.iterdir()
        if (m := _SHARE_NAME.fullmatch(p.name)) is not None
    }
    if not available:
        fail(f"{shares_dir} holds no share files")
    unknown = [s for s in signers if s not in available]
    if unknown:
        fail(f"unknown party {unknown[0]}: no share file for it in {shares_dir}")
    headers = {s: read_header(available[s].read_bytes())[0] for s in signers}
    first = headers[signers[0]]
    for signer, header in headers.items():
        if (header.scheme, header.public_key) != (first.scheme, first.public_key):
            fail(f"the share of party {signer} belongs to another key")
        if header.party_id != signer:
            fail(f"share file of party {signer} says it is party {header.party_id}")
    if len(signers) < first.min_signers:
        fail(f"too few signers: {len(signers)} given, this key needs {first.min_signers}")
    keys = []
    for signer in signers:
        _, secret = open_sealed(available[signer].read_bytes(), passphrase)
        try:
            key = KeyPackage.from_bytes(secret)
        except CryptoError as exc:
            fail(f"share of party {signer} is corrupt: {exc}")
        if key.identifier != signer or key.public.public_key_bytes.hex() != first.public_key:
            fail(f"share of party {signer} does not match its file header")
        keys.append(key)
    return keys


def _parse_hex(option: str, text: str) -> bytes:
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        fail(f"{option} is not hexadecimal")


@group.command()
@click.option(
    "--shares",
    "shares_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Directory of share files written by `mpc keygen`.",
)
@click.option("--signers", required=True, help="Comma-separated party ids of the quorum, e.g. 1,3.")
@click.option("--message-hex", "message_hex", required=True, help="The message to sign, in hex.")
@click.option(
    "--taproot-merkle-root",
    "merkle_root_hex",
    default=None,
    help="schnorr-bip340 only: sign for the BIP341-tweaked output key; '' for key path only.",
)
@click.option(
    "--passphrase-env",
    default="SHARDVAULT_PASSPHRASE",
    show_default=True,
    help="Environment variable holding the share files' passphrase.",
)
def sign(
    shares_dir: Path,
    signers: str,
    message_hex: str,
    merkle_root_hex: str | None,
    passphrase_env: str,
) -> None:
    """Sign a message with a quorum of shares; every signer checks the aggregate.

    Prints one JSON object: scheme, public_key, signers, signature (hex, 64 bytes) and,
    with a taproot tweak, output_key.
    """
    quorum = _parse_signers(signers)
    message = _parse_hex("--message-hex", message_hex)
    merkle_root = (
        None if merkle_root_hex is None else _parse_hex("--taproot-merkle-root", merkle_root_hex)
    )
    passphrase = _passphrase(passphrase_env)
    try:
        keys = _load_shares(shares_dir, quorum, passphrase)
        suite = keys[0].public.suite
        if merkle_root is not None and not suite.x_only:
            fail("--taproot-merkle-root applies to schnorr-bip340 keys only")
        signature = run_signing(keys, message, system_random, taproot_merkle_root=merkle_root)
    except ShardvaultError as exc:
        fail(str(exc))
    result: dict[str, object] = {
        "scheme": suite.name,
        "public_key": keys[0].public.public_key_bytes.hex(),
        "signers": sorted(quorum),
        "signature": signature.hex(),
    }
    if merkle_root is not None:
        from shardvault.crypto.protocols.frost.keys import signing_view

        view = signing_view(keys[0].public, None, merkle_root)
        result["output_key"] = suite.encode_public_key(view.group_public_key).hex()
    emit_json(result)
