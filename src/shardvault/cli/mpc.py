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

from shardvault.chains.bitcoin.address import Network
from shardvault.chains.bitcoin.taproot import p2tr_address
from shardvault.chains.solana.models import Pubkey
from shardvault.cli import _mpc_ecdsa as ecdsa
from shardvault.cli._output import emit_json, fail
from shardvault.crypto.errors import CryptoError
from shardvault.crypto.protocols.frost import SUITES, KeyPackage
from shardvault.crypto.protocols.frost.derive import derive_key_package, derive_public_package
from shardvault.crypto.protocols.frost.keys import PublicKeyPackage, signing_view
from shardvault.crypto.protocols.frost.local import run_dkg, run_signing
from shardvault.crypto.rng import system_random
from shardvault.crypto.sharefile import ShareFileHeader, open_sealed, read_header, seal
from shardvault.errors import ShardvaultError

FROST_SCHEMES = ("eddsa-ed25519", "schnorr-bip340")
"""Schemes this tool runs through FROST."""

SCHEMES = (*FROST_SCHEMES, ecdsa.SCHEME)
"""Every scheme ``mpc keygen`` offers."""

_SHARE_NAME = re.compile(r"party-(\d+)\.share\.json")
_MAX_PARTIES = 255
_PASSPHRASE_OPTION = click.option(
    "--passphrase-env",
    default="SHARDVAULT_PASSPHRASE",
    show_default=True,
    help="Environment variable holding the passphrase of the share files.",
)
_SHARES_OPTION = click.option(
    "--shares",
    "shares_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Directory of share files written by `mpc keygen`.",
)


def _share_path(directory: Path, party: int) -> Path:
    return directory / f"party-{party}.share.json"


def _passphrase(env_name: str) -> bytes:
    value = os.environ.get(env_name)
    if not value:
        fail(f"environment variable {env_name} (the share passphrase) is not set or empty")
    return value.encode()


def _progress(text: str) -> None:
    click.echo(f"progress: {text}", err=True)


def _write_all_or_nothing(files: dict[Path, bytes]) -> None:
    """Write every file through a temporary name, then rename; on failure undo the writes.

    Each rename is atomic; a file that already exists is replaced (refresh).
    """
    temporaries: list[Path] = []
    try:
        for path, data in files.items():
            temporary = path.with_name(path.name + ".tmp")
            with open(temporary, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            temporaries.append(temporary)
    except OSError as exc:
        for path in temporaries:
            path.unlink(missing_ok=True)
        fail(f"cannot write share files: {exc.strerror or exc}")
    for path in files:
        os.replace(path.with_name(path.name + ".tmp"), path)
    directory = next(iter(files)).parent
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _seal_all(
    scheme: str,
    min_signers: int,
    max_signers: int,
    public_key: str,
    shares: dict[int, bytes],
    passphrase: bytes,
    out_dir: Path,
) -> dict[Path, bytes]:
    return {
        _share_path(out_dir, party): seal(
            ShareFileHeader(scheme, party, min_signers, max_signers, public_key),
            secret,
            passphrase,
            system_random,
        )
        for party, secret in shares.items()
    }


@click.group(name="mpc")
def group() -> None:
    """Local threshold-key ceremonies: key generation, signing, derivation, refresh.

    Every party runs in this process; each party's share goes to its own file, sealed under
    a passphrase read from an environment variable.
    """


@group.command()
@click.option(
    "--scheme",
    required=True,
    type=click.Choice(SCHEMES),
    help="eddsa-ed25519 (FROST, Solana), schnorr-bip340 (FROST, Bitcoin Taproot) or "
    "ecdsa-secp256k1 (CGGMP21, Ethereum and Bitcoin segwit v0).",
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
@_PASSPHRASE_OPTION
def keygen(
    scheme: str, min_signers: int, max_signers: int, out_dir: Path, passphrase_env: str
) -> None:
    """Run a T-of-N distributed key generation and write one sealed share per party.

    Prints one JSON object: scheme, public_key (hex, as the chain encodes it: 32-byte
    Ed25519 key, 32-byte x-only key, or 33-byte compressed secp256k1 key), min_signers,
    max_signers, party_ids, chain_code, files; for ecdsa-secp256k1 also xpub and address
    (Ethereum). ECDSA key generation searches safe primes for each party's Paillier key,
    which takes a while; progress goes to stderr.
    """
    if not 2 <= max_signers <= _MAX_PARTIES:
        fail(f"--max-signers must be between 2 and {_MAX_PARTIES}")
    if not 2 <= min_signers <= max_signers:
        # With one signer every share would be the whole key.
        fail("--min-signers must be between 2 and --max-signers")
    passphrase = _passphrase(passphrase_env)
    if out_dir.exists() and any(_SHARE_NAME.fullmatch(p.name) for p in out_dir.iterdir()):
        fail(f"{out_dir} already holds share files; refusing to overwrite them")
    try:
        if scheme == ecdsa.SCHEME:
            secrets, summary = ecdsa.keygen_ecdsa(
                min_signers, max_signers, system_random, on_progress=_progress
            )
            public_key = str(summary["public_key"])
            shares = dict(enumerate(secrets, start=1))
        else:
            keys = run_dkg(SUITES[scheme], min_signers, max_signers, system_random)
            public = keys[0].public
            public_key = public.public_key_bytes.hex()
            shares = {int(k.identifier): k.to_bytes() for k in keys}
            summary = {
                "scheme": scheme,
                "public_key": public_key,
                "min_signers": min_signers,
                "max_signers": max_signers,
                "party_ids": [int(p) for p in public.party_ids],
                "chain_code": public.chain_code.hex(),
            }
        files = _seal_all(scheme, min_signers, max_signers, public_key, shares, passphrase, out_dir)
    except ShardvaultError as exc:
        fail(str(exc))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create {out_dir}: {exc.strerror or exc}")
    _write_all_or_nothing(files)
    emit_json({**summary, "files": [str(p) for p in files]})


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


def _share_files(shares_dir: Path) -> dict[int, Path]:
    if not shares_dir.is_dir():
        fail(f"{shares_dir} is not a directory")
    available = {
        int(m.group(1)): p
        for p in shares_dir.iterdir()
        if (m := _SHARE_NAME.fullmatch(p.name)) is not None
    }
    if not available:
        fail(f"{shares_dir} holds no share files")
    return available


def _open_shares(
    shares_dir: Path, parties: list[int] | None, passphrase: bytes
) -> tuple[ShareFileHeader, dict[int, bytes]]:
    """Open the share files of ``parties`` (all when ``None``); checks they form one key."""
    available = _share_files(shares_dir)
    wanted = sorted(available) if parties is None else parties
    unknown = [s for s in wanted if s not in available]
    if unknown:
        fail(f"unknown party {unknown[0]}: no share file for it in {shares_dir}")
    headers = {s: read_header(available[s].read_bytes())[0] for s in wanted}
    first = headers[wanted[0]]
    for party, header in headers.items():
        if (header.scheme, header.public_key) != (first.scheme, first.public_key):
            fail(f"the share of party {party} belongs to another key")
        if header.party_id != party:
            fail(f"share file of party {party} says it is party {header.party_id}")
    secrets = {s: open_sealed(available[s].read_bytes(), passphrase)[1] for s in wanted}
    return first, secrets


def _frost_keys(header: ShareFileHeader, secrets: dict[int, bytes]) -> list[KeyPackage]:
    keys = []
    for party, secret in secrets.items():
        try:
            key = KeyPackage.from_bytes(secret)
        except CryptoError as exc:
            fail(f"share of party {party} is corrupt: {exc}")
        if key.identifier != party or key.public.public_key_bytes.hex() != header.public_key:
            fail(f"share of party {party} does not match its file header")
        keys.append(key)
    return keys


def _parse_hex(option: str, text: str) -> bytes:
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        fail(f"{option} is not hexadecimal")


def _frost_addresses(public: PublicKeyPackage, network: str) -> dict[str, object]:
    """Chain addresses of a FROST key: Solana for Ed25519, key-path P2TR for BIP340."""
    key = public.public_key_bytes
    if public.suite.name == "eddsa-ed25519":
        return {"address": str(Pubkey(key))}
    return {"address": p2tr_address(key, Network.from_name(network)), "network": network}


@group.command()
@_SHARES_OPTION
@click.option("--signers", required=True, help="Comma-separated party ids of the quorum, e.g. 1,3.")
@click.option("--message-hex", "message_hex", default=None, help="FROST: the message, in hex.")
@click.option(
    "--digest-hex", "digest_hex", default=None, help="ecdsa-secp256k1: the 32-byte digest, hex."
)
@click.option("--path", default=None, help="Sign with the non-hardened child key at this path.")
@click.option(
    "--scheme",
    default=None,
    type=click.Choice(SCHEMES),
    help="Refuse unless the shares are of this scheme (they name their scheme anyway).",
)
@click.option(
    "--taproot-merkle-root",
    "merkle_root_hex",
    default=None,
    help="schnorr-bip340 only: sign for the BIP341-tweaked output key; '' for key path only.",
)
@_PASSPHRASE_OPTION
def sign(
    shares_dir: Path,
    signers: str,
    message_hex: str | None,
    digest_hex: str | None,
    path: str | None,
    scheme: str | None,
    merkle_root_hex: str | None,
    passphrase_env: str,
) -> None:
    """Sign with a quorum of shares; every signer checks the result.

    FROST schemes take --message-hex and print scheme, public_key, signers and signature
    (64 bytes hex; with a taproot tweak also output_key). ecdsa-secp256k1 takes
    --digest-hex and prints r, s (low-s), v (recovery id 0/1), signature (65-byte
    r||s||v hex) and public_key (33-byte compressed, of the derived key with --path).
    """
    quorum = _parse_signers(signers)
    passphrase = _passphrase(passphrase_env)
    available = _share_files(shares_dir)
    unknown = [s for s in quorum if s not in available]
    if unknown:
        fail(f"unknown party {unknown[0]}: no share file for it in {shares_dir}")
    header = read_header(available[quorum[0]].read_bytes())[0]
    if scheme is not None and scheme != header.scheme:
        fail(f"the shares are {header.scheme} shares, not {scheme}")
    if len(quorum) < header.min_signers:
        fail(f"too few signers: {len(quorum)} given, this key needs {header.min_signers}")
    if header.scheme == ecdsa.SCHEME:
        if digest_hex is None or message_hex is not None:
            fail("ecdsa-secp256k1 signs a 32-byte digest: give --digest-hex, not --message-hex")
        if merkle_root_hex is not None:
            fail("--taproot-merkle-root applies to schnorr-bip340 keys only")
        digest = _parse_hex("--digest-hex", digest_hex)
        if len(digest) != 32:
            fail("--digest-hex must be 32 bytes")
        try:
            _, secrets = _open_shares(shares_dir, quorum, passphrase)
            emit_json(
                {
                    "scheme": header.scheme,
                    **ecdsa.sign_ecdsa(list(secrets.values()), quorum, digest, path),
                }
            )
        except ShardvaultError as exc:
            fail(str(exc))
        return
    if message_hex is None or digest_hex is not None:
        fail(f"{header.scheme} signs a message: give --message-hex, not --digest-hex")
    message = _parse_hex("--message-hex", message_hex)
    merkle_root = (
        None if merkle_root_hex is None else _parse_hex("--taproot-merkle-root", merkle_root_hex)
    )
    try:
        file_header, secrets = _open_shares(shares_dir, quorum, passphrase)
        keys = _frost_keys(file_header, secrets)
        suite = keys[0].public.suite
        if merkle_root is not None and not suite.x_only:
            fail("--taproot-merkle-root applies to schnorr-bip340 keys only")
        if path is not None:
            keys = [derive_key_package(k, path) for k in keys]
        signature = run_signing(keys, message, system_random, taproot_merkle_root=merkle_root)
    except ShardvaultError as exc:
        fail(str(exc))
    result: dict[str, object] = {
        "scheme": suite.name,
        "public_key": keys[0].public.public_key_bytes.hex(),
        "signers": sorted(quorum),
        "signature": signature.hex(),
    }
    if path is not None:
        result["path"] = path
    if merkle_root is not None:
        view = signing_view(keys[0].public, None, merkle_root)
        result["output_key"] = suite.encode_public_key(view.group_public_key).hex()
    emit_json(result)


@group.command()
@_SHARES_OPTION
@click.option("--path", required=True, help="Non-hardened derivation path, e.g. m/44/60/0/0/7.")
@click.option(
    "--network",
    default="mainnet",
    show_default=True,
    help="schnorr-bip340 only: the Bitcoin network of the printed P2TR address.",
)
@_PASSPHRASE_OPTION
def derive(shares_dir: Path, path: str, network: str, passphrase_env: str) -> None:
    """Print the public key and address of the child key at --path, without signing.

    Opens one share file for the key's public data (chain code, verifying shares). Prints
    scheme, path, public_key, address and, for ecdsa-secp256k1, xpub.
    """
    passphrase = _passphrase(passphrase_env)
    available = _share_files(shares_dir)
    first = sorted(available)[0]
    try:
        header, secrets = _open_shares(shares_dir, [first], passphrase)
        if header.scheme == ecdsa.SCHEME:
            emit_json({"scheme": header.scheme, **ecdsa.derive(secrets[first], path)})
            return
        public = derive_public_package(_frost_keys(header, secrets)[0].public, path)
        emit_json(
            {
                "scheme": header.scheme,
                "path": path,
                "public_key": public.public_key_bytes.hex(),
                **_frost_addresses(public, network),
            }
        )
    except ShardvaultError as exc:
        fail(str(exc))


@group.command()
@_SHARES_OPTION
@_PASSPHRASE_OPTION
def refresh(shares_dir: Path, passphrase_env: str) -> None:
    """Refresh every party's share in place (ecdsa-secp256k1): same public key, new shares,
    new auxiliary info, next epoch. The old shares are overwritten; after a refresh they
    would not combine with the new ones.

    Prints scheme, public_key, epoch and the files rewritten.
    """
    passphrase = _passphrase(passphrase_env)
    try:
        header, secrets = _open_shares(shares_dir, None, passphrase)
        if header.scheme != ecdsa.SCHEME:
            fail(f"refresh is implemented for ecdsa-secp256k1 keys, not {header.scheme}")
        if sorted(secrets) != list(range(1, header.max_signers + 1)):
            fail("a refresh needs the share file of every party")
        fresh = ecdsa.refresh(list(secrets.values()), on_progress=_progress)
        files = _seal_all(
            header.scheme,
            header.min_signers,
            header.max_signers,
            header.public_key,
            dict(enumerate(fresh, start=1)),
            passphrase,
            shares_dir,
        )
        epoch = ecdsa.describe_share(fresh[0])["epoch"]
    except ShardvaultError as exc:
        fail(str(exc))
    _write_all_or_nothing(files)
    emit_json(
        {
            "scheme": header.scheme,
            "public_key": header.public_key,
            "epoch": epoch,
            "files": [str(p) for p in files],
        }
    )
