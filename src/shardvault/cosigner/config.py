"""The co-signer's configuration file, signed under its own identity, and private files.

``cosigner.json`` holds everything a co-signer trusts besides its sealed secrets: its
party id and workspace, the pinned admin set, the pinned directory of peer identities,
how it unlocks its data keys, and optional settings (the customer callback). Anyone who
could rewrite it could swap the admin set or a peer's key, so the file carries an
Ed25519 signature by the co-signer's own identity key (RFC 8032, libsodium via PyNaCl):

    signature = Ed25519-Sign(identity, CONFIG_DOMAIN || canonical JSON of the file
                             without its "signature" field)

Canonical JSON here is ``json.dumps(..., sort_keys=True, separators=(",", ":"),
ensure_ascii=True, allow_nan=False)`` of the parsed document, so whitespace and key order
in the file do not matter but every value does. The identity key is sealed in custody, so
the signature can be checked, and a changed file re-signed, only once the identity is
unsealed (:func:`shardvault.cosigner.state.open_node`); what is read before that (the
unlock settings, the public identity to publish) is read unverified and says so.

Files and directories the co-signer writes are private to its user: files are created
0600 (the mode is given to ``open(2)``, so no other user can open one between creation
and a later ``chmod``), directories 0700, and :func:`check_private_file` refuses a file
that group or others can access.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

from nacl.exceptions import BadSignatureError
from nacl.exceptions import CryptoError as NaclCryptoError
from nacl.signing import VerifyKey

from shardvault.cosigner.errors import ConfigurationError
from shardvault.crypto.channel import PartyIdentity, PublicIdentity

T = TypeVar("T")

CONFIG_FORMAT = "shardvault.cosigner/v2"
"""The ``format`` value of a signed ``cosigner.json``."""

LEGACY_CONFIG_FORMAT = "shardvault.cosigner/v1"
"""The ``format`` of an unsigned configuration written by an earlier release; it is
refused at start until ``shardvault cosigner seal-config`` has checked and signed it."""

CONFIG_DOMAIN = b"shardvault/cosigner/config/v1\x00"
"""Prefix of the bytes the configuration signature covers."""

SIGNATURE_FIELD = "signature"
"""The field of ``cosigner.json`` holding the signature (128 hex characters)."""

PRIVATE_FILE_MODE = 0o600
"""The mode of every file a co-signer creates."""

PRIVATE_DIR_MODE = 0o700
"""The mode of every directory a co-signer creates."""


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        # Two parsers could disagree on which copy counts; the signature covers one.
        raise ValueError("a key appears twice in one object")
    return dict(pairs)


def read_json(path: Path) -> object:
    """Parse a JSON file, refusing an object with a repeated key.

    Raises:
        ConfigurationError: a missing file, or one that is not such JSON.
    """
    try:
        return json.loads(path.read_text("utf-8"), object_pairs_hook=_no_duplicates)
    except FileNotFoundError:
        raise ConfigurationError(f"{path} does not exist") from None
    except (OSError, ValueError):
        raise ConfigurationError(f"{path} cannot be read as JSON") from None


def make_private_dir(directory: Path) -> None:
    """Create ``directory`` (mode 0700) and its missing parents; an existing one is left
    as it is."""
    Path(directory).mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)


def write_private_json(path: Path, document: object, *, durable: bool = True) -> None:
    """Replace ``path`` atomically with ``document``: a temporary file created 0600
    beside it, flushed to disk (unless ``durable`` is false: a crash may then leave the
    previous document), then renamed over it."""
    path = Path(path)
    make_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    # A leftover from a crash may have another mode; O_EXCL creates ours afresh.
    tmp.unlink(missing_ok=True)
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1, sort_keys=True)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def append_private_line(path: Path, line: str) -> None:
    """Append one line to ``path`` (created 0600), flushed to disk."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
    with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


LineParser = Callable[[object, str], tuple[T, Mapping[str, object], bytes]]
"""Parses one line's JSON document (and names it by ``where`` in its errors) into the
item, the fields its signature covers, and the signature."""


def signed_lines(
    path: Path, identity: PublicIdentity, domain: bytes, parse: LineParser[T], what: str
) -> Iterator[tuple[str, bytes, T]]:
    """Each line of a signed JSON-lines file (the record of signatures, the public key
    records) as ``(where, line, item)``, once it is JSON, parses, is in canonical form
    (sorted keys, no spaces, ASCII) and its signature over ``domain`` || the canonical
    JSON of its signed fields verifies under ``identity``.

    Raises:
        ConfigurationError: a file group or others can access, or a line that fails one
            of those checks, naming the line (``what`` names the file in the message).
    """
    check_private_file(path)
    verify = VerifyKey(identity.signing_key)
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ConfigurationError(f"{path} cannot be read: {exc}") from None
    for number, line in enumerate(lines, start=1):
        where = f"{path} line {number}"
        try:
            raw = json.loads(line)
        except ValueError:
            raise ConfigurationError(f"{where}: not JSON (the {what} was changed)") from None
        item, body, signature = parse(raw, where)
        if _canonical_line(raw) != line:
            raise ConfigurationError(f"{where}: not in canonical form (the {what} was changed)")
        try:
            verify.verify(domain + _canonical_line(body), signature)
        except (BadSignatureError, NaclCryptoError, ValueError):
            raise ConfigurationError(
                f"{where}: signature does not verify (the {what} was changed)"
            ) from None
        yield where, line, item


def _canonical_line(document: object) -> bytes:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii")


def check_private_file(path: Path) -> None:
    """Refuse a file that group or others may read, write or execute.

    Raises:
        ConfigurationError: naming the file and its mode.
    """
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        raise ConfigurationError(f"{path} does not exist") from None
    if mode & 0o077:
        raise ConfigurationError(
            f"{path} has mode {mode:04o}: group or others can access it "
            f"(it must be {PRIVATE_FILE_MODE:04o}; chmod 600 it after checking it)"
        )


def canonical_config(config: Mapping[str, object]) -> bytes:
    """The bytes a configuration signature covers: ``CONFIG_DOMAIN`` and the canonical
    JSON of every field but the signature.

    Raises:
        ConfigurationError: a value JSON cannot encode canonically (NaN, infinity).
    """
    body = {key: value for key, value in config.items() if key != SIGNATURE_FIELD}
    try:
        text = json.dumps(
            body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"the configuration cannot be encoded: {exc}") from None
    return CONFIG_DOMAIN + text.encode("ascii")


def sign_config(config: Mapping[str, object], identity: PartyIdentity) -> dict[str, object]:
    """``config`` in the current format, signed by ``identity``.

    Raises:
        ConfigurationError: a value that cannot be encoded canonically.
    """
    body = {key: value for key, value in config.items() if key != SIGNATURE_FIELD}
    body["format"] = CONFIG_FORMAT
    return {**body, SIGNATURE_FIELD: identity.sign(canonical_config(body)).hex()}


def verify_config(path: Path, config: Mapping[str, object], identity: PublicIdentity) -> None:
    """Check that ``config`` (read from ``path``) is signed by ``identity``.

    Raises:
        ConfigurationError: "signature does not verify", naming the file: a missing or
            malformed signature, or one over other contents (the file was changed).
    """
    raw = config.get(SIGNATURE_FIELD)
    refused = ConfigurationError(
        f"{path}: signature does not verify under this co-signer's identity "
        f"({'no signature' if raw is None else 'the file was changed or signed by another key'})"
    )
    if not isinstance(raw, str):
        raise refused
    try:
        signature = bytes.fromhex(raw)
        VerifyKey(identity.signing_key).verify(canonical_config(config), signature)
    except (ValueError, TypeError, BadSignatureError, NaclCryptoError, ConfigurationError):
        raise refused from None
