"""Where the published test vectors live: ``../shared/vectors`` beside the checkout.

See ``../shared/vectors/SOURCES.md`` for the source of every file.
"""

import json
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"


def load_vector(relative: str) -> Any:
    """Load one JSON vector file, failing (not skipping) when it is absent."""
    path = VECTORS / relative
    if not path.is_file():
        pytest.fail(f"test vector file {path} is missing (see shared/vectors/SOURCES.md)")
    return json.loads(path.read_text())
