"""Looking at the processes a test's server started (shared by the CLI tests)."""

from __future__ import annotations

from pathlib import Path


def cosigner_pids(home: Path) -> list[int]:
    """The running co-signer processes serving directories under ``home``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"cosigner\0run" in command and str(home).encode() in command:
                pids.append(int(entry.name))
    return pids
