"""The repository stands alone: nothing it ships reads or cites a folder beside the checkout.

Test vectors live in ``tests/vectors/`` (read through ``tests/vectors.py``), the test
environment is described in ``docs/environment.md`` and the peer benchmarks install
themselves from ``bench/peers/``. A path into a ``shared`` folder next to the clone would
work on a developer's machine and break a fresh clone, so every file under ``src/``,
``tests/``, ``bench/`` and ``docs/``, and ``README.md`` and ``Makefile``, is searched for
one. ``CHANGELOG.md`` is history and may name where things used to be.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCANNED_FOLDERS = ("src", "tests", "bench", "docs")
SCANNED_FILES = ("README.md", "Makefile")

SKIPPED_FOLDERS = frozenset(
    {"node_modules", "__pycache__", ".hypothesis", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
)
"""Installed or generated folders (and ``*.egg-info``): not the repository's own files."""

# Built from pieces so that this file does not match itself.
_SHARED = b"shared"
OUTSIDE_REFERENCE = re.compile(
    re.escape(b"../" + _SHARED) + b"|" + re.escape(b"/" + _SHARED + b"/")
)
"""A path into a ``shared`` folder: the parent-relative form or any absolute one."""


def _files(root: Path) -> Iterator[Path]:
    for folder in SCANNED_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            relative = path.relative_to(root).parts
            generated = any(part.endswith(".egg-info") for part in relative)
            if path.is_file() and not generated and not SKIPPED_FOLDERS.intersection(relative):
                yield path
    for name in SCANNED_FILES:
        if (root / name).is_file():
            yield root / name


def outside_references(root: Path) -> list[str]:
    """``path:line`` of every reference to a ``shared`` folder under ``root``."""
    found = []
    for path in _files(root):
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            if OUTSIDE_REFERENCE.search(line):
                found.append(f"{path.relative_to(root)}:{number}")
    return found


def test_no_file_refers_to_a_folder_beside_the_checkout() -> None:
    assert outside_references(REPO) == []


def test_the_scan_finds_a_planted_reference(tmp_path: Path) -> None:
    (tmp_path / "tests" / "deep").mkdir(parents=True)
    (tmp_path / "tests" / "deep" / "t.py").write_bytes(b"ok\nPath('..' '/x')\n" + b"../" + _SHARED)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_bytes(b"see /work/" + _SHARED + b"/notes")
    (tmp_path / "CHANGELOG.md").write_bytes(b"../" + _SHARED + b"/vectors")
    installed = tmp_path / "bench" / "peers" / "node_modules"
    installed.mkdir(parents=True)
    (installed / "x.js").write_bytes(b"../" + _SHARED)
    assert outside_references(tmp_path) == ["tests/deep/t.py:3", "docs/a.md:1"]
