"""Where the published test vectors live: ``tests/vectors/`` in this repository.

This module is the one place that knows that folder; every test reads its vectors through
:func:`vector_path` or :func:`load_vector`. ``tests/vectors/SOURCES.md`` names the
upstream source (repository, commit or version) and the licence of every file there.

A missing vector file fails the test that asked for it, loudly, and never skips it: a
check that silently stops running is worse than one that breaks.
"""

import json
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).resolve().parent / "vectors"
"""The folder of vector files, beside this module."""


def vector_path(relative: str) -> Path:
    """The path of one vector file or folder under ``tests/vectors/``.

    Fails the calling test (``pytest.fail``, not a skip) when nothing is there.
    """
    path = VECTORS / relative
    if not path.exists():
        pytest.fail(f"test vector {path} is missing (see tests/vectors/SOURCES.md)")
    return path


def load_vector(relative: str) -> Any:
    """Load one JSON vector file, failing (not skipping) when it is absent."""
    path = vector_path(relative)
    if not path.is_file():
        pytest.fail(f"test vector {path} is not a file (see tests/vectors/SOURCES.md)")
    return json.loads(path.read_text())
