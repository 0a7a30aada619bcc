"""Co-signer fingerprints given on the command line (``--expect-cosigner``): what an
operator read on each co-signer's own host, which commands check the server's word
against (``policy apply`` the directory it signs, ``wallet address`` the attestations
of an address)."""

import json
from pathlib import Path

from shardvault.cli._output import fail


def expected_cosigners(items: tuple[str, ...]) -> dict[int, str]:
    """``PARTY=FINGERPRINT`` items as ``{party: fingerprint}`` (spacing normalised);
    exits with one line on a malformed item."""
    expected: dict[int, str] = {}
    for item in items:
        party, sep, fingerprint = item.partition("=")
        if not sep or not party.strip().isdigit() or not fingerprint.strip():
            fail(f"--expect-cosigner {item!r}: expected PARTY=FINGERPRINT")
        expected[int(party)] = " ".join(fingerprint.split())
    return expected


def cosigners_file(path: Path) -> dict[int, str]:
    """A JSON file ``{"<party>": "<fingerprint>", ...}`` as ``{party: fingerprint}``;
    exits with one line when it is not one."""
    try:
        document = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"{path}: not a readable JSON file ({type(exc).__name__})")
    if not isinstance(document, dict) or not all(
        isinstance(k, str) and k.isdigit() and isinstance(v, str) and v.strip()
        for k, v in document.items()
    ):
        fail(f'{path}: expected {{"<party>": "<fingerprint>", ...}}')
    return {int(k): " ".join(v.split()) for k, v in document.items()}
